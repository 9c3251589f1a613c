"""The Streamable HTTP endpoint as one raw ASGI application (no framework underneath).

Every request passes the checks in one fixed order, so status codes are deterministic
(DIGEST §21): Origin/Host -> method -> Accept/Content-Type -> session -> protocol version -> body.
A GET (legacy sessions only: standalone stream and ``Last-Event-ID`` resumption, see ``_streams``)
goes Origin/Host -> method (405 when stateless or for a 2026-07-28 version header) -> Accept ->
session -> protocol version -> ``Last-Event-ID``.
The era of a POST is decided from its ``MCP-Protocol-Version`` header and its body: a request whose
``_meta`` names a protocol version (or whose header names a 2026-07-28-era version) is served
statelessly; everything else follows the legacy session rules (T-HTTP-*).

With ``legacy_sse`` the same app also serves the 2024-11-05 HTTP+SSE transport (``GET /sse`` and
``POST /messages/``, see ``_legacy_sse``), behind the same Origin/Host checks and body limit.

The app knows nothing of tools: it asks the protocol core and talks to the application only through
``anyport.runtime.Application``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
from collections.abc import Awaitable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from anyport._exceptions import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    ParseError,
)
from anyport.limits import Limits
from anyport.protocol import (
    META_PROTOCOL_VERSION,
    REVISIONS,
    IncomingRequest,
    ParamHeader,
    Received,
    Reply,
    ServerConnection,
    accepts_json_and_sse,
    accepts_sse,
    bounded,
    brief,
    carries_request,
    error_message,
    is_initialize,
    is_json_content_type,
    is_modern_post,
    loads,
    meta_version,
    metadata_mismatch,
    notification,
    param_mismatch,
    readable_id,
    scan_param_headers,
)
from anyport.runtime import _inline, answer_inline
from anyport.runtime._heap import Releaser, trim_heap
from anyport.state import Bus, EventLog, MemoryBus, MemoryEventLog, SessionRecord, SessionStore
from anyport.transports.http._exchange import (
    ASGIMessage,
    Exchange,
    ExchangeOutlet,
    Receive,
    Send,
    StreamOptions,
    answer_at_once,
    resumable,
    send_json,
)
from anyport.transports.http._headers import HostAllowList, OriginAllowList
from anyport.transports.http._legacy_sse import LegacySSE
from anyport.transports.http._sessions import BROADCAST_KEY, BusFanout, HTTPSession, MemorySessionStore, session_key
from anyport.transports.http._streams import GetStreams

if TYPE_CHECKING:
    from anyport.runtime import Application

__all__ = ["StreamableHTTPApp"]

log = logging.getLogger("anyport.http")

Scope = ASGIMessage
Headers = list[tuple[bytes, bytes]]

#: T-HTTP-44: without a header and without a session that knows better, assume this revision.
ASSUMED_LEGACY_VERSION = "2025-03-26"
SESSION_HEADER = b"mcp-session-id"


class _Request:
    """The parts of an ASGI HTTP scope the endpoint looks at; header names are lower-case."""

    __slots__ = ("headers", "method", "path", "scope")

    def __init__(self, scope: Scope) -> None:
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


def _error_body(code: int, message: str, id_: str | int | None = None, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return error_message(id_, err)  # no readable id: the id is omitted (T-HTTP-09, T-HTTP-02)


async def _send_empty(send: Send, status: int, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0"), *headers]})
    await send({"type": "http.response.body", "body": b""})


async def _reject(send: Send, status: int, code: int, message: str, *, id_: str | int | None = None, data: Any = None, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send_json(send, status, _error_body(code, message, id_, data), headers)


#: Why a request is refused: (HTTP status, JSON-RPC code, message, error data or None).
_Rejection = tuple[int, int, str, Any]

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


async def _send_rejection(send: Send, rejection: _Rejection) -> None:
    status, code, message, data = rejection
    await _reject(send, status, code, message, data=data)

_NO_SESSION_ID = "Bad Request: Mcp-Session-Id header is required"
_UNKNOWN_SESSION = "Not Found: unknown or terminated session"


class _SlowClient(Exception):
    """The client sent its body too slowly (answered 408)."""


class _ClientGone(Exception):
    """The client disconnected while we read its body."""


class StreamableHTTPApp:
    """ASGI app: the MCP endpoint at ``path`` (both eras), plus ``/healthz`` and ``/readyz``,
    and (``legacy_sse``) the 2024-11-05 HTTP+SSE endpoints at ``sse_path`` and ``messages_path``."""

    def __init__(
        self,
        server: Application,
        *,
        path: str = "/mcp",
        stateless: bool = False,
        json_response: bool = False,
        allowed_origins: Iterable[str] | None = None,
        allowed_hosts: Iterable[str] | None = None,
        max_body_bytes: int | None = None,
        session_idle_timeout: float | None = None,
        max_sessions: int | None = None,
        session_store: SessionStore | None = None,
        request_timeout: float | None = 300.0,
        keepalive_interval: float = 15.0,
        legacy_sse: bool = True,
        sse_path: str = "/sse",
        messages_path: str = "/messages/",
        event_log: EventLog | None = None,
        bus: Bus | None = None,
        sse_retry_ms: int | None = None,
        sse_poll_after: float | None = None,
        trusted_proxies: Iterable[str] | None = None,
        body_timeout: float | None = None,
        get_stream_linger: float = 300.0,
        limits: Limits | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        # The four limits that are also keywords of their own override ``limits`` (ValueError when invalid).
        given: dict[str, Any] = {
            "max_body_bytes": max_body_bytes, "session_idle_timeout": session_idle_timeout,
            "max_sessions": max_sessions, "body_timeout": body_timeout,
        }
        self.limits = limits = dataclasses.replace(limits or Limits(), **{k: v for k, v in given.items() if v is not None})
        self.legacy: LegacySSE | None = None
        if legacy_sse:
            self.legacy = LegacySSE(
                server, sse_path=sse_path, messages_path=messages_path, max_connections=limits.max_sessions,
                keepalive_interval=keepalive_interval, request_timeout=request_timeout,
                max_inflight=limits.max_inflight, max_buffered=limits.max_buffered_events,
            )
            routes = {path.rstrip("/") or "/", sse_path.rstrip("/") or "/", messages_path.rstrip("/") or "/"}
            if len(routes) != 3:
                raise ValueError("path, sse_path and messages_path must differ")
        self.server = server
        self.path = path.rstrip("/") or "/"
        #: tool name -> (its input schema, its x-mcp-header declarations), for T-H26-21.
        self._param_decls: dict[str, tuple[dict[str, Any], list[ParamHeader] | str]] = {}
        self.stateless = stateless
        self.json_response = json_response
        self.origins = OriginAllowList(allowed_origins)
        self.hosts = HostAllowList(allowed_hosts)
        # Behind a reverse proxy the Host the client used arrives as X-Forwarded-Host; it is believed
        # only from these peer addresses ("*": any), never from clients themselves.
        self.trusted_proxies = frozenset(trusted_proxies or ())
        self.body_timeout = limits.body_timeout
        self.max_body_bytes = limits.max_body_bytes
        if sse_retry_ms is not None and sse_retry_ms < 0:
            raise ValueError("sse_retry_ms must be >= 0")
        self.events: EventLog = event_log if event_log is not None else MemoryEventLog(
            max_events=limits.max_events_per_stream, max_streams=limits.max_streams_per_session,
        )
        self.bus: Bus = bus if bus is not None else MemoryBus()
        self.stream_options = StreamOptions(self.events, self.bus, retry_ms=sse_retry_ms, poll_after=sse_poll_after)
        # Legacy sessions are peers of server.hub; list_changed and resources/updated reach them all
        # through one fanout on the Bus (every GET stream of every replica sharing it), see _sessions.
        self.fanout: BusFanout | None = None if stateless else BusFanout(self.bus)
        self.sessions = MemorySessionStore(
            idle_timeout=limits.session_idle_timeout, max_sessions=limits.max_sessions, records=session_store,
            restore=self._restore, bus=self.bus, events=self.events, hub=server.hub, fanout=self.fanout,
            sweep_every=min(limits.session_idle_timeout, 60.0),
        )
        if self.fanout is not None:
            server.hub.add_fanout(self.fanout)
        self.get_streams = GetStreams(
            self.stream_options, keepalive_interval=keepalive_interval, linger=get_stream_linger,
            max_buffered=limits.max_buffered_events,
        )
        self.request_timeout = request_timeout
        self.keepalive_interval = keepalive_interval
        self.ready = True
        #: Ends idle sessions on a timer (``_reap``): started with the app's first request or lifespan.
        self._reaper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: After a burst of handlers ended (or the last one), their memory goes back (``anyport.runtime._heap``).
        self._releaser = Releaser(trim_heap)
        self._origin_host_verdicts: dict[tuple[bytes | None, bytes | None], _Rejection | None] = {}
        self._media_verdicts: dict[tuple[bytes | None, bytes | None], _Rejection | None] = {}

    # -- ASGI entry ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return  # websockets are not part of MCP; the server closes the handshake
        if self._reaper is None:
            self._start_reaper()
        req = _Request(scope)
        path = req.path.rstrip("/") or "/"
        if path == "/healthz":
            await send_json(send, 200, {"status": "ok"})
            return
        if path == "/readyz":
            await send_json(send, 200 if self.ready else 503, {"status": "ready" if self.ready else "shutting down"})
            return
        try:
            if path == self.path:
                await self._endpoint(req, receive, send)
            elif self.legacy is not None and path == (self.legacy.sse_path.rstrip("/") or "/"):
                await self._legacy_stream(req, receive, send)
            elif self.legacy is not None and path == (self.legacy.messages_path.rstrip("/") or "/"):
                await self._legacy_post(req, receive, send)
            else:
                await _reject(send, 404, INVALID_REQUEST, f"Not Found: {req.path}")
        except _ClientGone:
            return
        except _SlowClient:
            await _reject(send, 408, INVALID_REQUEST, f"Request Timeout: the body did not arrive within {self.body_timeout:g} s")
        except Exception:
            # A bug of ours, never the client's input (the fuzzers check that no input gets here):
            # a JSON-RPC error rather than the ASGI server's plain-text 500, when nothing was sent yet.
            log.exception("internal error while serving %s %s", req.method, req.path)
            with contextlib.suppress(Exception):
                await _reject(send, 500, INTERNAL_ERROR, "Internal error")

    def _forwarded(self, req: _Request) -> tuple[str | None, str | None]:
        """(host, proto) the client used: X-Forwarded-* from a trusted proxy, else the request's own Host."""
        if self.trusted_proxies and ("*" in self.trusted_proxies or req.client in self.trusted_proxies):
            fwd_host = req.get(b"x-forwarded-host")
            fwd_proto = req.get(b"x-forwarded-proto")
            if fwd_host:
                # The first entry is the one the client sent to the outermost proxy.
                return fwd_host.split(",")[0].strip(), fwd_proto.split(",")[0].strip().lower() if fwd_proto else None
        return req.get(b"host"), None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.ready = True
                self._start_reaper()
                if self.fanout is not None:
                    self.server.hub.add_fanout(self.fanout)  # again, after an earlier shutdown
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def begin_shutdown(self) -> None:
        """Not ready any more, and end the long-lived HTTP+SSE streams so the ASGI server can drain.

        Call it on the event loop when shutdown starts (``anyport serve`` does, on SIGTERM/SIGINT):
        ASGI servers wait for open responses before the lifespan shutdown reaches ``aclose``.
        """
        self.ready = False
        self.get_streams.close_all()
        if self.legacy is not None:
            self.legacy.close_all()

    async def aclose(self) -> None:
        """Stop serving: end every session and every handler still running."""
        self.ready = False
        self._releaser.cancel()
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.cancel()
        if self.fanout is not None:
            self.server.hub.remove_fanout(self.fanout)
        await self.get_streams.aclose()
        if self.legacy is not None:
            await self.legacy.aclose()
        await self.sessions.aclose()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def _start_reaper(self) -> None:
        if self._reaper is None and not self.stateless:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """End idle sessions (and with them their handlers, streams and logged events) on a timer,
        with no traffic needed: at most a quarter of the idle timeout (10 s at most) late."""
        interval = min(max(self.sessions.idle_timeout / 4, 0.05), 10.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sessions.sweep()
            except Exception:
                log.exception("could not end idle sessions")

    # -- server-initiated messages (legacy sessions) ---------------------------------------------

    async def notify(self, session_id: str, method: str, params: dict[str, Any] | None = None) -> bool:
        """Send a notification to one session's standalone GET stream, wherever it is held.

        Goes over the Bus (DESIGN.md §4), so it works for a session served by another replica. The
        stream outlives its connection: a client between two GETs gets it when it resumes with
        ``Last-Event-ID`` (T-HTTP-30/31). False when nobody holds a standalone stream of the
        session (it never opened a GET, or its last one ended long ago): nothing was delivered.

        ``server.notify_list_changed`` / ``notify_resource_updated`` reach every session (the ones
        initialized / subscribed) without naming them: sessions are peers of ``server.hub``.
        """
        return await self.bus.publish(session_key(session_id), {"message": notification(method, params)}) > 0

    async def broadcast(self, method: str, params: dict[str, Any] | None = None) -> int:
        """Send a notification to every standalone GET stream with a connection attached, of every
        replica sharing the Bus; returns how many streams got it. A client between two GETs misses
        it; ``server.notify_list_changed`` reaches those too (logged for their resuming GET), but
        only sessions already initialized."""
        return await self.bus.publish(BROADCAST_KEY, {"message": notification(method, params)})

    def _restore(self, record: SessionRecord) -> ServerConnection | None:
        """The protocol state of a session begun elsewhere, from its record."""
        if record.version is None or record.version not in self.server.legacy_versions:
            return None
        conn = self.server.open_connection(assume_initialized=REVISIONS[record.version])
        conn.max_inflight = self.limits.max_inflight
        conn.client_capabilities = dict(record.client_capabilities)
        conn.client_info = record.client_info
        conn.log_level = record.log_level
        conn.initialized = record.initialized
        return conn

    def _spawn(self, coro: Coroutine[Any, Any, dict[str, Any]], context: contextvars.Context | None = None) -> asyncio.Task[dict[str, Any]]:
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._handler_done)
        return task

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._releaser.ended(last=not self._tasks)

    # -- the MCP endpoint ----------------------------------------------------------------------

    def _refusal(self, req: _Request) -> _Rejection | None:
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

    def _check_origin_host(self, req: _Request) -> _Rejection | None:
        host, proto = self._forwarded(req)
        origin = req.get(b"origin")
        same_origin = proto is not None and host is not None and origin is not None and origin.rstrip("/").lower() == f"{proto}://{host}".lower()
        if origin is not None and not same_origin and not self.origins.allows(origin):
            return 403, INVALID_REQUEST, "Forbidden: Origin not allowed", None
        if not self.hosts.allows(host):
            return 403, INVALID_REQUEST, "Forbidden: Host not allowed", None
        return None

    async def _forbidden(self, req: _Request, send: Send) -> bool:
        """Answers 403 when ``_refusal`` says so."""
        rejection = self._refusal(req)
        if rejection is None:
            return False
        await _send_rejection(send, rejection)
        return True

    def _media_refusal(self, req: _Request) -> _Rejection | None:
        """3. Accept / Content-Type of a POST (T-HTTP-06, T-H26-03), remembered per pair of values."""
        headers = req.headers
        key = (headers.get(b"accept"), headers.get(b"content-type"))
        verdicts = self._media_verdicts
        if key in verdicts:
            return verdicts[key]
        verdict: _Rejection | None = None
        if not accepts_json_and_sse(req.get(b"accept")):
            verdict = 406, INVALID_REQUEST, "Not Acceptable: Accept must list application/json and text/event-stream", None
        elif not is_json_content_type(req.get(b"content-type")):
            verdict = 415, INVALID_REQUEST, "Unsupported Media Type: Content-Type must be application/json", None
        return _kept(verdicts, key, verdict)

    async def _endpoint(self, req: _Request, receive: Receive, send: Send) -> None:
        rejection = self._refusal(req)
        if rejection is not None:
            await _send_rejection(send, rejection)
            return
        # 2. Method.
        if req.method == "POST":
            await self._post(req, receive, send)
        elif req.method == "DELETE" and not self.stateless:
            await self._delete(req, send)
        elif req.method == "GET" and not self.stateless and self._version_header(req) not in self.server.modern_versions:
            await self._get(req, receive, send)
        else:
            # GET streams and DELETE exist only with legacy sessions (T-HTTP-21, T-H26-24).
            allow = b"POST" if self.stateless else b"GET, POST, DELETE"
            await _reject(send, 405, INVALID_REQUEST, f"Method Not Allowed: {req.method}", headers=[(b"allow", allow)])

    async def _get(self, req: _Request, receive: Receive, send: Send) -> None:
        """The standalone stream, or a stream resumed with ``Last-Event-ID`` (T-HTTP-19..32)."""
        # 3. Accept (T-HTTP-20).
        if not accepts_sse(req.get(b"accept")):
            await _reject(send, 406, INVALID_REQUEST, "Not Acceptable: Accept must allow text/event-stream")
            return
        # 4. Session.
        session = await self._required_session(req, send)
        if session is None:
            return
        # 5. Protocol version.
        if not await self._check_legacy_version(send, self._version_header(req)):
            return
        if not self.ready:
            await _reject(send, 503, INVALID_REQUEST, "Service Unavailable: shutting down", headers=[(b"retry-after", b"5")])
            return
        # 6. Last-Event-ID: only ids of this session's own streams (T-HTTP-32).
        raw = req.get(b"last-event-id")
        last = raw.strip(" \t") if raw is not None else None
        if not await self.get_streams.serve(session, last or None, receive, send):
            await _reject(send, 400, INVALID_REQUEST, "Bad Request: Last-Event-ID does not name a stream of this session")

    # -- 2024-11-05 HTTP+SSE (T-SSE-*) -----------------------------------------------------------

    async def _legacy_stream(self, req: _Request, receive: Receive, send: Send) -> None:
        assert self.legacy is not None
        if await self._forbidden(req, send):
            return
        if req.method != "GET":
            await _reject(send, 405, INVALID_REQUEST, f"Method Not Allowed: {req.method}", headers=[(b"allow", b"GET")])
            return
        if not accepts_sse(req.get(b"accept")):
            await _reject(send, 406, INVALID_REQUEST, "Not Acceptable: Accept must allow text/event-stream")
            return
        if not self.ready:
            await _reject(send, 503, INVALID_REQUEST, "Service Unavailable: shutting down", headers=[(b"retry-after", b"5")])
            return
        await self.legacy.stream(req.root_path, receive, send)

    async def _legacy_post(self, req: _Request, receive: Receive, send: Send) -> None:
        assert self.legacy is not None
        if await self._forbidden(req, send):
            return
        if req.method != "POST":
            await _reject(send, 405, INVALID_REQUEST, f"Method Not Allowed: {req.method}", headers=[(b"allow", b"POST")])
            return

        async def read_body() -> bytes | None:
            return await self._read_body(req, receive)

        await self.legacy.post(req.query, req.get(b"content-type"), read_body, send, max_body_bytes=self.max_body_bytes)

    def _version_header(self, req: _Request) -> str | None:
        raw = req.get(b"mcp-protocol-version")
        return None if raw is None else raw.strip(" \t")

    def _legacy_version_refusal(self, version: str | None) -> _Rejection | None:
        """T-HTTP-45: an invalid or unsupported header is a 400."""
        if version is None or version in self.server.legacy_versions:
            return None
        return (
            400, INVALID_REQUEST, f"Bad Request: unsupported MCP-Protocol-Version {brief(version)}",
            {"supported": list(self.server.legacy_versions), "requested": bounded(version)},
        )

    async def _check_legacy_version(self, send: Send, version: str | None) -> bool:
        """Answers 400 when ``_legacy_version_refusal`` says so; True when the request may go on."""
        rejection = self._legacy_version_refusal(version)
        if rejection is None:
            return True
        await _send_rejection(send, rejection)
        return False

    async def _required_session(self, req: _Request, send: Send) -> HTTPSession | None:
        """The request's live session, or None after answering 400 (no header, T-HTTP-38) or 404 (T-HTTP-39)."""
        sid = req.get(b"mcp-session-id")
        if sid is None:
            await _reject(send, 400, INVALID_REQUEST, _NO_SESSION_ID)
            return None
        session = await self.sessions.get(sid.strip())
        if session is None:
            await _reject(send, 404, INVALID_REQUEST, _UNKNOWN_SESSION)
        return session

    async def _delete(self, req: _Request, send: Send) -> None:
        session = await self._required_session(req, send)
        if session is None:
            return
        if not await self._check_legacy_version(send, self._version_header(req)):
            return
        await self.sessions.delete(session.id)  # T-HTTP-42: 2xx now, 404 afterwards
        await _send_empty(send, 204)

    async def _read_body(self, req: _Request, receive: Receive) -> bytes | None:
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
                        raise _ClientGone
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
            raise _SlowClient from None

    async def _post(self, req: _Request, receive: Receive, send: Send) -> None:
        # 3. Accept / Content-Type (T-HTTP-06, T-H26-03).
        rejection = self._media_refusal(req)
        if rejection is not None:
            await _send_rejection(send, rejection)
            return
        body = await self._read_body(req, receive)
        parsed: Any = None
        parse_error: ParseError | None = None
        if body is not None:
            try:
                parsed = loads(body)
            except ParseError as exc:
                parse_error = exc
        version = self._version_header(req)
        if is_modern_post(version, parsed, self.server.modern_versions):
            await self._post_modern(req, receive, send, body, parsed, parse_error, version)
        else:
            await self._post_legacy(req, receive, send, body, parsed, parse_error, version)

    def _body_refusal(self, body: bytes | None, parse_error: ParseError | None) -> _Rejection | None:
        """6. The body itself: size (413) and JSON (400 + -32700, J-02)."""
        if body is None:
            return 413, INVALID_REQUEST, f"Payload Too Large: the limit is {self.max_body_bytes} bytes", None
        if parse_error is not None:
            return 400, PARSE_ERROR, parse_error.message, None
        return None

    # -- legacy era (2025-03-26 .. 2025-11-25) ---------------------------------------------------

    async def _post_legacy(
        self, req: _Request, receive: Receive, send: Send,
        body: bytes | None, parsed: Any, parse_error: ParseError | None, version: str | None,
    ) -> None:
        # 4. Session (T-HTTP-37..39).
        session: HTTPSession | None = None
        initialize = is_initialize(parsed)
        if not self.stateless:
            sid = req.get(b"mcp-session-id")
            if sid is not None:
                session = await self.sessions.get(sid.strip())
                if session is None:
                    await _reject(send, 404, INVALID_REQUEST, _UNKNOWN_SESSION)
                    return
            elif not initialize and body is not None and parse_error is None:
                await _reject(send, 400, INVALID_REQUEST, _NO_SESSION_ID)
                return
        # 5. Protocol version header (T-HTTP-43..45), 6. the body.
        rejection = self._legacy_version_refusal(version) or self._body_refusal(body, parse_error)
        if rejection is not None:
            await _send_rejection(send, rejection)
            return

        conn: ServerConnection
        if session is not None:
            conn = session.conn
        elif initialize:
            conn = self.server.open_connection()
            conn.max_inflight = self.limits.max_inflight  # it becomes the session's connection
        else:
            # Stateless: a throwaway connection that is already initialized (T-HTTP-44 decides the revision).
            conn = self.server.open_connection(assume_initialized=REVISIONS[version or ASSUMED_LEGACY_VERSION])
        received = conn.receive_obj(parsed)
        if session is not None:
            await self.sessions.save(session)  # log level, initialized: the record follows
        if not carries_request(parsed):
            # Only notifications and responses: 202 with no body (T-HTTP-08), or 400 for what was refused.
            exchange = self._exchange(conn, session, modern=False, batch=received.batch)
            exchange.start(received.events)
            errors = [ev.message for ev in received.events if isinstance(ev, Reply)]
            if errors:
                await send_json(send, 400, errors if received.batch else errors[0])
            else:
                await _send_empty(send, 202)
            return

        headers: Headers = []
        if initialize and session is None and not self.stateless:
            reply = received.events[0] if received.events else None
            if isinstance(reply, Reply) and "result" in reply.message:
                session = await self.sessions.create(conn)
                if session is None:
                    await _reject(send, 503, INVALID_REQUEST, "Service Unavailable: too many sessions", headers=[(b"retry-after", b"5")])
                    return
                headers.append((SESSION_HEADER, session.id.encode()))  # T-HTTP-33: on this response only
                log.debug("session %s opened (%s)", session.id[:8], conn.revision.version if conn.revision else "?")
        await self._answer(conn, session, received, receive, send, headers, modern=False)

    async def _answer(
        self, conn: ServerConnection, session: HTTPSession | None, received: Received,
        receive: Receive, send: Send, headers: Headers, *, modern: bool,
    ) -> None:
        """Run the POST's requests and write their response."""
        events = received.events
        if len(events) == 1 and not received.batch:
            req = events[0]
            if type(req) is IncomingRequest:
                # The common case (one request, a handler that never waits): no Exchange.
                answer = answer_inline(self.server, req, ExchangeOutlet(None, session))
                if answer is not None:
                    stream = self.stream_options if resumable(session, modern=modern, json_response=self.json_response) else None
                    await answer_at_once(
                        conn, req, answer, session, send, headers, modern=modern, json_response=self.json_response, stream=stream,
                    )
                    return
        exchange = self._exchange(conn, session, modern=modern, batch=received.batch)
        exchange.start(events)
        await exchange.respond(receive, send, headers)

    def _exchange(self, conn: ServerConnection, session: HTTPSession | None, *, modern: bool, batch: bool) -> Exchange:
        return Exchange(
            self.server, conn, session, modern=modern, batch=batch, json_response=self.json_response,
            request_timeout=self.request_timeout, keepalive=self.keepalive_interval, spawn=self._spawn,
            stream=self.stream_options, max_buffered=self.limits.max_buffered_events,
        )

    # -- 2026-07-28 ------------------------------------------------------------------------------

    async def _post_modern(
        self, req: _Request, receive: Receive, send: Send,
        body: bytes | None, parsed: Any, parse_error: ParseError | None, version: str | None,
    ) -> None:
        # 4. Session: none on 2026-07-28; Mcp-Session-Id is ignored (T-H26-24).
        # 5./6. The version header is compared with the body, so the body comes first here.
        rejection = self._body_refusal(body, parse_error)
        if rejection is not None:
            await _send_rejection(send, rejection)
            return
        if not isinstance(parsed, dict):
            await _reject(send, 400, INVALID_REQUEST, "Invalid Request: 2026-07-28 takes one JSON-RPC message per POST")
            return
        conn = self.server.open_connection()
        if "method" not in parsed or "id" not in parsed:
            # A notification (202, T-H26-04); clients never send responses on 2026-07-28 (T-H26-03).
            if "method" not in parsed:
                await _reject(send, 400, INVALID_REQUEST, "Invalid Request: 2026-07-28 clients do not send responses")
                return
            received = conn.receive_obj(parsed)
            errors = [ev.message for ev in received.events if isinstance(ev, Reply)]
            if errors:
                await send_json(send, 400, errors[0])
            else:
                await _send_empty(send, 202)
            return
        id_ = readable_id(parsed)
        if meta_version(parsed) is None:
            # The body is not a 2026-07-28 request although the header says so: these are the core's
            # errors, not header mismatches. initialize no longer exists (404 + -32601, T-H26-13);
            # anything else lacks its required _meta (400 + -32602, M-04).
            if parsed.get("method") == "initialize":
                await send_json(send, 404, _error_body(METHOD_NOT_FOUND, "Method not found: initialize (removed in 2026-07-28)", id_))
            else:
                await send_json(send, 400, _error_body(INVALID_PARAMS, f"Missing required _meta field {META_PROTOCOL_VERSION!r}", id_))
            return
        mismatch = metadata_mismatch(req.get, parsed, version) or self._param_mismatch(req, parsed)
        if mismatch is not None:
            message, data = mismatch
            await send_json(send, 400, _error_body(HEADER_MISMATCH, message, id_, data))
            return
        await self._answer(conn, None, conn.receive_obj(parsed), receive, send, [], modern=True)

    def _param_mismatch(self, req: _Request, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """T-H26-21 for a ``tools/call`` of a tool with ``x-mcp-header`` arguments."""
        if body.get("method") != "tools/call":
            return None
        params = body.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        schema = self.server.tool_input_schema(name) if isinstance(name, str) else None
        if schema is None or not isinstance(name, str):
            return None  # unknown tools are the dispatcher's error (-32602)
        cached = self._param_decls.get(name)
        if cached is None or cached[0] is not schema:
            # Scanned once per tool schema, not per request (a tool re-registered gets a new one).
            cached = self._param_decls[name] = (schema, scan_param_headers(schema))
        decls = cached[1]
        if isinstance(decls, str) or not decls:
            return None
        return param_mismatch(req.get, params.get("arguments") if isinstance(params, dict) else None, decls)
