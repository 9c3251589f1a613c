"""CORS for browser clients, driven by the same Origin allow-list as the DNS-rebinding defence
(T-HTTP-01/02, T-H26-02, T-SSE-05; ``HTTPOptions.allowed_origins``, ``--allowed-origin``).

- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) to an MCP path is
  answered here, before authentication (a preflight never carries credentials): 403 when the
  Origin/Host check refuses it (it never reaches MCP), else 204 with the methods, the request
  headers MCP needs (``Mcp-*``: session, protocol version, method, name, ``Mcp-Param-*``;
  ``Authorization``, ``DPoP``, ``Last-Event-ID``, trace context), ``Access-Control-Max-Age`` and,
  when asked, ``Access-Control-Allow-Private-Network`` (a public page calling a local server).
- Every other response to a request whose ``Origin`` is on the list says so
  (``Access-Control-Allow-Origin``, ``Vary: Origin``) and exposes ``Mcp-Session-Id``,
  ``MCP-Protocol-Version``, ``WWW-Authenticate`` and ``Retry-After`` to the page.
- Origins named by the operator get ``Access-Control-Allow-Credentials: true`` (cookies, client
  certificates); the wildcard ``*`` is answered with ``*`` and never with credentials; the default
  list (the local hosts) echoes the origin without credentials.

Requests without ``Origin`` (every non-browser client) pay one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from anyport.transports.http._asgi import ASGIMessage, Send, reject, send_empty
from anyport.transports.http._headers import OriginAllowList

if TYPE_CHECKING:
    from anyport.transports.http._gate import HTTPRequest, Rejection

__all__ = ["PREFLIGHT_MAX_AGE", "Cors"]

#: Seconds a browser may cache a preflight answer (Chromium caps it at 7200, Firefox at 86400).
PREFLIGHT_MAX_AGE = 7200

#: Request headers a browser client may send besides the ``mcp-*`` family (checked as a prefix).
_ALLOWED_HEADERS = frozenset(
    {
        "accept", "accept-language", "content-language", "content-type", "authorization", "dpop", "x-api-key", "last-event-id",
        "traceparent", "tracestate", "baggage",
    }
)
_METHODS = b"GET, POST, DELETE"
_EXPOSED = b"Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, Retry-After"
_PREFLIGHT_VARY = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
#: Distinct Origin values whose answer headers are remembered (then forgotten all at once).
_KEPT = 256

Headers = list[tuple[bytes, bytes]]


def allowed_request_headers(requested: str | None) -> str:
    """The names of ``Access-Control-Request-Headers`` this server takes, lower-cased, in order."""
    if not requested:
        return ""
    names = (name.strip().lower() for name in requested.split(","))
    return ", ".join(name for name in names if name and (name.startswith("mcp-") or name in _ALLOWED_HEADERS))


class Cors:
    """The CORS answers of one app (``Gate.cors``): its Origin allow-list, its Origin/Host check
    (``refusal``) and the paths a browser may send a preflight to (``routes``, ``well_known``)."""

    def __init__(
        self, origins: OriginAllowList, refusal: Callable[[HTTPRequest], Rejection | None], *, credentials: bool,
        routes: Collection[str], well_known: bool,
    ) -> None:
        self.origins = origins
        self.refusal = refusal
        #: ``*``: any origin may read, never with credentials.
        self.wildcard = origins.any
        self.credentials = credentials and not origins.any
        self.routes = frozenset(routes)
        self.well_known = well_known
        self._answers: dict[bytes, Headers | None] = {}

    def _allow(self, origin: bytes) -> Headers | None:
        """The headers every answer to ``origin`` carries, or None when it is not on the list."""
        answers = self._answers
        if origin in answers:
            return answers[origin]
        headers: Headers | None = None
        if self.wildcard:
            headers = [(b"access-control-allow-origin", b"*")]
        elif self.origins.allows(origin.decode("latin-1")):
            headers = [(b"access-control-allow-origin", origin)]
            if self.credentials:
                headers.append((b"access-control-allow-credentials", b"true"))
        if len(answers) >= _KEPT:
            answers.clear()
        answers[origin] = headers
        return headers

    async def answered(self, req: HTTPRequest, path: str, send: Send) -> bool:
        """Answer the request when it is a preflight to an MCP path (True); False: serve it."""
        if req.method != "OPTIONS" or b"access-control-request-method" not in req.headers:
            return False
        if path not in self.routes and not (self.well_known and path.startswith("/.well-known/")):
            return False
        await self.preflight(req, req.headers[b"origin"], send)
        return True

    async def preflight(self, req: HTTPRequest, origin: bytes, send: Send) -> None:
        """Answer an ``OPTIONS`` preflight: 403 from the Origin/Host check, else 204."""
        rejection = self.refusal(req)
        if rejection is not None:
            status, code, message, data = rejection
            await reject(send, status, code, message, data=data)
            return
        allow = self._allow(origin) or []  # None: a same-origin request through a trusted proxy
        headers = [
            *allow,
            (b"access-control-allow-methods", _METHODS),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE).encode()),
            (b"vary", _PREFLIGHT_VARY),
        ]
        requested = allowed_request_headers(req.get(b"access-control-request-headers"))
        if requested:
            headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
        if allow and req.headers.get(b"access-control-request-private-network", b"").strip().lower() == b"true":
            # Chromium's Private Network Access: a public page calling a server on a private address.
            headers.append((b"access-control-allow-private-network", b"true"))
        await send_empty(send, 204, headers)

    def wrap(self, origin: bytes, send: Send) -> Send:
        """``send`` with the CORS headers added to the response start, for a request from ``origin``."""
        allow = self._allow(origin)
        if allow is None:
            return send  # not on the list: the Origin check answers 403, and the browser reads nothing
        extra: Headers = [*allow, (b"access-control-expose-headers", _EXPOSED)]
        if not self.wildcard:
            extra.append((b"vary", b"Origin"))

        async def cors_send(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or ())
                # Public documents (the well-known metadata) already say "*" for every origin.
                if not any(name.lower() == b"access-control-allow-origin" for name, _ in headers):
                    message["headers"] = headers + extra
            await send(message)

        return cors_send
