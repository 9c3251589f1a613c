"""The checks every HTTP request passes before anything runs, in their fixed order (DIGEST §21):
Origin/Host (DNS-rebinding defence), Accept/Content-Type, the protocol version header, the body
(size, read time, JSON). Each check gives a ``Rejection`` (HTTP status, JSON-RPC code, message,
error data) or None; the verdicts of the header checks are remembered per distinct header values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar, cast

from anyport._exceptions import INVALID_REQUEST, PARSE_ERROR, ParseError
from anyport.protocol import accepts_json_and_sse, bounded, brief, is_json_content_type
from anyport.runtime import PRINCIPAL, _inline
from anyport.transports.http._asgi import ASGIMessage, Receive, Send, reject, send_body
from anyport.transports.http._cors import Cors
from anyport.transports.http._headers import HostAllowList, OriginAllowList
from anyport.transports.http._options import HTTPOptions, RequestAuth

__all__ = [
    "NO_SESSION_ID", "UNKNOWN_SESSION", "ClientGone", "Gate", "HTTPRequest", "Rejection", "SlowClient", "authenticated",
    "send_rejection", "serve_well_known",
]


class HTTPRequest:
    """The parts of an ASGI HTTP scope the endpoint looks at; header names are lower-case."""

    __slots__ = ("headers", "method", "path", "scope")

    def __init__(self, scope: ASGIMessage) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        raw = scope.get("headers") or ()
        if not isinstance(raw, (list, tuple)):
            raw = list(raw)
        # Values are decoded when asked for: a request carries a dozen headers, we read a few.
        headers: dict[bytes, bytes] = dict(raw)
        if len(headers) != len(raw) or not b"".join(headers).islower():
            # Repeated fields, or a server that did not lower-case the names.
            headers = {}
            for name, value in raw:
                key = bytes(name).lower()
                headers[key] = headers[key] + b", " + value if key in headers else value  # RFC 9110 §5.3
        self.headers = headers

    @property
    def client(self) -> str | None:
        """The peer's address."""
        client = self.scope.get("client")
        return client[0] if client else None

    @property
    def query(self) -> bytes:
        return self.scope.get("query_string", b"")  # type: ignore[no-any-return]

    @property
    def root_path(self) -> str:
        return self.scope.get("root_path", "")  # type: ignore[no-any-return]

    def get(self, name: bytes) -> str | None:
        """A header by lower-case name, repeated fields joined with ", "; None when absent."""
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")


#: Why a request is refused: (HTTP status, JSON-RPC code, message, error data or None).
Rejection = tuple[int, int, str, Any]

#: Remembered verdicts of the Origin/Host and Accept/Content-Type checks, per distinct header values.
_VERDICTS_KEPT = 256

_K = TypeVar("_K")
_V = TypeVar("_V")


def _kept(verdicts: dict[_K, _V], key: _K, verdict: _V) -> _V:
    """Remember ``verdict`` for ``key`` (forgetting them all when the table is full); returns it."""
    if len(verdicts) >= _VERDICTS_KEPT:
        verdicts.clear()
    verdicts[key] = verdict
    return verdict


async def send_rejection(send: Send, rejection: Rejection) -> None:
    status, code, message, data = rejection
    await reject(send, status, code, message, data=data)


async def authenticated(
    gate: Gate, auth: RequestAuth | None, req: HTTPRequest, receive: Receive, send: Send,
    serve: Callable[[HTTPRequest, Receive, Send], Awaitable[None]],
) -> None:
    """1. Origin/Host, 2. authentication (A-31, A-37: every request, sessions are never credentials),
    then ``serve`` with the principal set for its handlers (``ctx.principal``)."""
    rejection = gate.refusal(req)
    if rejection is not None:
        await send_rejection(send, rejection)
        return
    if auth is None:
        await serve(req, receive, send)
        return
    principal = auth.cached(req.headers)
    if principal is None:
        principal, refusal = await auth.admit(req.scope, req.headers)
        if refusal is not None:
            await reject(send, refusal.status, INVALID_REQUEST, refusal.message, headers=refusal.headers)
            return
    token = PRINCIPAL.set(principal)
    try:
        await serve(req, receive, send)
    finally:
        PRINCIPAL.reset(token)


async def serve_well_known(auth: RequestAuth, req: HTTPRequest, path: str, send: Send) -> None:
    """The protected-resource metadata (RFC 9728, A-05, A-07) and, for 2025-03-26 clients, the
    authorization server's metadata (A-04): public documents, readable from any origin."""
    readable = req.method in ("GET", "HEAD")
    document = await auth.well_known(path) if readable else None
    if document is None:
        await reject(send, 404 if readable else 405, INVALID_REQUEST, f"Not Found: {req.path}")
        return
    await send_body(send, 200, document, b"application/json", [(b"access-control-allow-origin", b"*")])


NO_SESSION_ID = "Bad Request: Mcp-Session-Id header is required"
UNKNOWN_SESSION = "Not Found: unknown or terminated session"


class SlowClient(Exception):
    """The client sent its body too slowly (answered 408)."""


class ClientGone(Exception):
    """The client disconnected while we read its body."""


class Gate:
    """The refusal checks of one app, with its allow-lists, limits and remembered verdicts."""

    def __init__(self, options: HTTPOptions, legacy_versions: Collection[str]) -> None:
        self.origins = OriginAllowList(options.allowed_origins)
        self.hosts = HostAllowList(options.allowed_hosts)
        # Behind a reverse proxy the Host the client used arrives as X-Forwarded-Host; it is believed
        # only from these peer addresses ("*": any), never from clients themselves.
        self.trusted_proxies = frozenset(options.trusted_proxies or ())
        self.legacy_versions = tuple(legacy_versions)
        self.max_body_bytes = options.limits.max_body_bytes
        self.body_timeout = options.limits.body_timeout
        self._origin_host_verdicts: dict[tuple[bytes | None, bytes | None], Rejection | None] = {}
        self._media_verdicts: dict[tuple[bytes | None, bytes | None], Rejection | None] = {}
        routes = [options.route, *((options.sse_path, options.messages_path) if options.legacy_sse else ())]
        #: Browsers (CORS): the same allow-list; credentials only for origins the operator named.
        self.cors = Cors(
            self.origins, self.refusal, credentials=options.allowed_origins is not None,
            routes=[r.rstrip("/") or "/" for r in routes], well_known=options.auth is not None,
        )

    def forwarded(self, req: HTTPRequest) -> tuple[str | None, str | None]:
        """(host, proto) the client used: X-Forwarded-* from a trusted proxy, else the request's own Host."""
        if self.trusted_proxies and ("*" in self.trusted_proxies or req.client in self.trusted_proxies):
            fwd_host = req.get(b"x-forwarded-host")
            fwd_proto = req.get(b"x-forwarded-proto")
            if fwd_host:
                # The first entry is the one the client sent to the outermost proxy.
                return fwd_host.split(",")[0].strip(), fwd_proto.split(",")[0].strip().lower() if fwd_proto else None
        return req.get(b"host"), None

    def client_key(self, req: HTTPRequest) -> str:
        """Who sends the request, for rate limits: the first ``X-Forwarded-For`` entry when a trusted
        proxy passed it on, else the peer address."""
        if self.trusted_proxies and ("*" in self.trusted_proxies or req.client in self.trusted_proxies):
            forwarded = req.get(b"x-forwarded-for")
            if forwarded:
                return forwarded.split(",")[0].strip()
        return req.client or "unknown"

    def refusal(self, req: HTTPRequest) -> Rejection | None:
        """1. Origin / Host: DNS-rebinding defence before anything else (T-HTTP-01, T-HTTP-02, T-H26-02,
        T-SSE-05): a 403, or None when the request may go on.

        Clients send the same Host and Origin on every request: the verdict is remembered per pair
        (bounded), unless X-Forwarded-* from a trusted proxy take part in it.
        """
        if self.trusted_proxies:
            return self._check_origin_host(req)
        headers = req.headers
        key = (headers.get(b"host"), headers.get(b"origin"))
        verdicts = self._origin_host_verdicts
        if key in verdicts:
            return verdicts[key]
        return _kept(verdicts, key, self._check_origin_host(req))

    def _check_origin_host(self, req: HTTPRequest) -> Rejection | None:
        host, proto = self.forwarded(req)
        origin = req.get(b"origin")
        same_origin = proto is not None and host is not None and origin is not None and origin.rstrip("/").lower() == f"{proto}://{host}".lower()
        if origin is not None and not same_origin and not self.origins.allows(origin):
            return 403, INVALID_REQUEST, "Forbidden: Origin not allowed", None
        if not self.hosts.allows(host):
            return 403, INVALID_REQUEST, "Forbidden: Host not allowed", None
        return None

    async def forbidden(self, req: HTTPRequest, send: Send) -> bool:
        """Answers 403 when ``refusal`` says so."""
        rejection = self.refusal(req)
        if rejection is None:
            return False
        await send_rejection(send, rejection)
        return True

    def media_refusal(self, req: HTTPRequest) -> Rejection | None:
        """3. Accept / Content-Type of a POST (T-HTTP-06, T-H26-03), remembered per pair of values."""
        headers = req.headers
        key = (headers.get(b"accept"), headers.get(b"content-type"))
        verdicts = self._media_verdicts
        if key in verdicts:
            return verdicts[key]
        verdict: Rejection | None = None
        if not accepts_json_and_sse(req.get(b"accept")):
            verdict = 406, INVALID_REQUEST, "Not Acceptable: Accept must list application/json and text/event-stream", None
        elif not is_json_content_type(req.get(b"content-type")):
            verdict = 415, INVALID_REQUEST, "Unsupported Media Type: Content-Type must be application/json", None
        return _kept(verdicts, key, verdict)

    @staticmethod
    def version_header(req: HTTPRequest) -> str | None:
        """The ``MCP-Protocol-Version`` header, without surrounding whitespace."""
        raw = req.get(b"mcp-protocol-version")
        return None if raw is None else raw.strip(" \t")

    def legacy_version_refusal(self, version: str | None) -> Rejection | None:
        """T-HTTP-45: an invalid or unsupported header is a 400."""
        if version is None or version in self.legacy_versions:
            return None
        return (
            400, INVALID_REQUEST, f"Bad Request: unsupported MCP-Protocol-Version {brief(version)}",
            {"supported": list(self.legacy_versions), "requested": bounded(version)},
        )

    async def check_legacy_version(self, send: Send, version: str | None) -> bool:
        """Answers 400 when ``legacy_version_refusal`` says so; True when the request may go on."""
        rejection = self.legacy_version_refusal(version)
        if rejection is None:
            return True
        await send_rejection(send, rejection)
        return False

    def body_refusal(self, body: bytes | None, parse_error: ParseError | None) -> Rejection | None:
        """6. The body itself: size (413) and JSON (400 + -32700, J-02)."""
        if body is None:
            return 413, INVALID_REQUEST, f"Payload Too Large: the limit is {self.max_body_bytes} bytes", None
        if parse_error is not None:
            return 400, PARSE_ERROR, parse_error.message, None
        return None

    async def read_body(self, req: HTTPRequest, receive: Receive) -> bytes | None:
        """The whole body, or None when it exceeds ``max_body_bytes`` (then it is not read on)."""
        length = req.headers.get(b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_body_bytes:
            return None
        # Usually the whole body is already in: take it without arming a timer.
        done, first = _inline.here(receive())
        ready: ASGIMessage | None = None
        pending: Awaitable[ASGIMessage] | None = None
        if done:
            ready = cast("ASGIMessage", first)
            if ready["type"] == "http.request" and not ready.get("more_body", False):
                body: bytes = ready.get("body", b"")
                return body if len(body) <= self.max_body_bytes else None
        else:
            pending = cast("Awaitable[ASGIMessage]", first)
        chunks: list[bytes] = []
        size = 0
        try:
            # A slow-loris client must not hold a request open: the whole body has a deadline.
            async with asyncio.timeout(self.body_timeout):
                while True:
                    if ready is not None:
                        message, ready = ready, None
                    elif pending is not None:
                        message, pending = await pending, None
                    else:
                        message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGone
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        return None
                    if not message.get("more_body", False):
                        if not chunks:
                            return chunk
                        chunks.append(chunk)
                        return b"".join(chunks)
                    chunks.append(chunk)
        except TimeoutError:
            raise SlowClient from None
