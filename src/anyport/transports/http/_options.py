"""Every option of the HTTP transport, in one frozen object.

``create_app``, ``StreamableHTTPApp``, ``run_http_server`` and ``anyport serve --http`` all take
the same options: an ``HTTPOptions`` and/or its fields as keywords (``HTTPOptions.of``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from anyport.limits import Limits
from anyport.state import Bus, EventLog, Rate, SessionStore

__all__ = ["LIMIT_KEYWORDS", "HTTPOptions", "RequestAuth"]

#: Limits that may also be given as keywords of their own; they override ``limits``.
LIMIT_KEYWORDS = ("max_body_bytes", "session_idle_timeout", "max_sessions", "body_timeout")


class RequestAuth(Protocol):
    """What the app needs of ``auth`` (``anyport.auth.AuthChain`` implements it; the transport does
    not import ``anyport.auth``)."""

    def cached(self, headers: Mapping[bytes, bytes]) -> Any:
        """The principal of a credential verified before (the fast path), or None: then ``admit``."""
        ...

    async def admit(self, scope: Any, headers: Mapping[bytes, bytes]) -> tuple[Any, Any]:
        """(principal, None), or (None, a refusal with ``status``, ``headers`` and ``message``)."""
        ...

    def refusal_for_scopes(self, principal: Any, needed: Any) -> Any:
        """None when ``principal`` has every scope of ``needed``, else the 403 refusal."""
        ...

    async def unready(self) -> str | None:
        """Why requests cannot be authenticated now (``/readyz`` says 503 with it); None: ready."""
        ...

    async def well_known(self, path: str) -> bytes | None:
        """The JSON document at a ``/.well-known/`` path (protected-resource metadata), or None."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPOptions:
    """How the MCP endpoint of a server is served over HTTP.

    - ``path``: the Streamable HTTP endpoint (``POST``/``GET``/``DELETE``), default ``/mcp``.
    - ``stateless``: no legacy sessions; legacy requests are served without ``initialize``
      (as 2025-03-26 unless ``MCP-Protocol-Version`` says otherwise). 2026-07-28 requests are
      stateless either way.
    - ``json_response``: answer requests with ``application/json`` instead of an SSE stream. A
      JSON reply carries one message, so what a handler sends about its own request cannot ride
      it: its progress and log notifications are dropped (they relate to that request; the GET
      stream is for messages unrelated to one, T-HTTP-15, T-HTTP-22), and ``ctx.elicit`` /
      ``ctx.sample`` / ``ctx.list_roots`` on a legacy session fail at once with an
      ``InternalError`` naming ``json_response`` (a server->client request belongs on its
      request's stream; 2026-07-28 asks with MRTR and is unaffected). Server-initiated
      notifications unrelated to a request are not affected: ``server.notify_list_changed``,
      ``server.notify_resource_updated``, ``notify`` and ``broadcast`` use the session's GET
      stream in both modes, also when called from inside a handler.
    - ``allowed_origins`` / ``allowed_hosts``: DNS-rebinding defence. ``None`` allows only
      ``localhost``, ``127.0.0.1`` and ``[::1]`` (any port); ``"*"`` allows anything. A server
      reachable under another name must list it. Browsers get CORS from the same list
      (``_cors``): preflights answered, the MCP headers allowed and exposed; credentials only
      for origins named here, never with ``"*"`` (docs/operations.md, "Browsers (CORS)").
    - ``trusted_proxies``: peer addresses of reverse proxies (``"*"``: any) whose
      ``X-Forwarded-Host`` / ``X-Forwarded-Proto`` are believed for the Host and Origin checks.
    - ``limits`` (an ``anyport.Limits``): every limit that protects the server, with what a client
      sees when it meets one (docs/limits.md): body size and read time, sessions, idle timeout,
      requests in flight, notifications buffered for a slow reader, events kept for resumption.
      A session with no request and no open stream for the idle timeout ends on a timer, with its
      handlers and its logged events.
    - ``session_store`` (an ``anyport.state.SessionStore``), ``event_log`` and ``bus`` replace the
      in-memory state: share them between replicas (DESIGN.md §4). Without a ``session_store`` the
      sessions live in this process only and the live session is the only copy of its state.
    - ``request_timeout``: seconds a server->client request (elicitation, sampling, roots) waits
      for the client's answer. ``keepalive_interval``: seconds between SSE comments on a quiet
      stream. ``get_stream_linger``: seconds a standalone GET stream outlives its connection
      (what is sent meanwhile is logged for a resuming GET).
    - ``sse_retry_ms``: a ``retry:`` field (milliseconds) in the priming event of each stream and
      before an early close (T-HTTP-13). ``sse_poll_after``: close a POST's SSE connection that many
      seconds after it opened (``0``: right after the priming event); the stream stays open and the
      client resumes it with GET + ``Last-Event-ID`` (polling, T-HTTP-12). Both only on revisions
      with priming events (2025-11-25); off by default.
    - ``redis``: a Redis URL (``redis://``, ``rediss://`` for TLS, user and password in the URL;
      ``?cluster=1`` for Redis Cluster): the sessions, their events and the bus live there, so any
      number of replicas given the same URL and ``redis_prefix`` serve the same sessions with no
      sticky load balancer (DESIGN.md §4). ``session_store`` / ``event_log`` / ``bus`` given
      explicitly take precedence. The app checks Redis at start-up (lifespan) and in ``/readyz``.
    - ``stream_lease``: seconds a replica holds a resumable stream it writes without renewing its
      claim (default ``ANYPORT_STREAM_LEASE_SECONDS`` or 30; renewed every third of it). With
      ``redis``, a client resuming a stream on another replica after the writing replica died gets
      an error (-32603) for each request it left unanswered about one lease later, and the stream ends.
    - ``rate_limit`` (``"100/minute"``, ``"5/10s"`` or an ``anyport.state.Rate``): requests each
      client may POST to the endpoint; ``tool_rate_limits`` (tool name -> rate): ``tools/call`` of
      that tool per client. A client is its address (the first ``X-Forwarded-For`` entry from a
      ``trusted_proxies`` peer). With ``redis`` the limits are shared by every replica. A refused
      request gets HTTP 429 with ``Retry-After`` and a JSON-RPC error -32029 whose ``data`` has
      ``retryAfter`` (seconds) and ``limit``. stdio is never limited.
    - ``legacy_sse``: also serve the 2024-11-05 HTTP+SSE transport: ``GET sse_path`` opens an event
      stream whose first ``endpoint`` event names ``messages_path?session_id=...``, where the client
      POSTs its messages (202; answers arrive on the stream). One connection per stream, closed
      with it; ``max_sessions`` also bounds the number of open streams.
    - ``auth`` (an ``anyport.auth.AuthChain``, docs/authentication.md): every request to the MCP
      endpoints (Streamable HTTP and HTTP+SSE; never ``/healthz`` / ``/readyz``) is authenticated
      right after the Origin/Host check: 401 with a ``WWW-Authenticate`` challenge naming the
      protected-resource metadata (served at its ``/.well-known/`` paths), 403 ``insufficient_scope``
      for a tool, resource or prompt that needs scopes the caller lacks. Handlers read
      ``ctx.principal``; a legacy session (and an HTTP+SSE connection) belongs to the principal that
      opened it (another one gets 404). None (the default): no authentication.
    """

    path: str = "/mcp"
    stateless: bool = False
    json_response: bool = False
    allowed_origins: Iterable[str] | None = None
    allowed_hosts: Iterable[str] | None = None
    trusted_proxies: Iterable[str] | None = None
    limits: Limits = field(default_factory=Limits)
    session_store: SessionStore | None = None
    event_log: EventLog | None = None
    bus: Bus | None = None
    request_timeout: float | None = 300.0
    keepalive_interval: float = 15.0
    get_stream_linger: float = 300.0
    sse_retry_ms: int | None = None
    sse_poll_after: float | None = None
    redis: str | None = None
    redis_prefix: str = "anyport"
    stream_lease: float | None = None
    rate_limit: Rate | str | None = None
    tool_rate_limits: Mapping[str, Rate | str] = field(default_factory=dict)
    legacy_sse: bool = True
    sse_path: str = "/sse"
    messages_path: str = "/messages/"
    auth: RequestAuth | None = None

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError("path must start with '/'")
        if self.sse_retry_ms is not None and self.sse_retry_ms < 0:
            raise ValueError("sse_retry_ms must be >= 0")
        if self.legacy_sse and len({_route(self.path), _route(self.sse_path), _route(self.messages_path)}) != 3:
            raise ValueError("path, sse_path and messages_path must differ")
        if isinstance(self.rate_limit, str):
            object.__setattr__(self, "rate_limit", Rate.parse(self.rate_limit))
        tools = {name: Rate.parse(r) if isinstance(r, str) else r for name, r in dict(self.tool_rate_limits).items()}
        object.__setattr__(self, "tool_rate_limits", tools)

    @classmethod
    def of(cls, options: HTTPOptions | None = None, /, **changes: Any) -> HTTPOptions:
        """``options`` (or the defaults) with ``changes``: any field, and the limits of
        ``LIMIT_KEYWORDS`` on their own (they override those in ``limits``; None means not given).
        An unknown keyword is a ``TypeError``."""
        base = options or cls()
        overrides = {k: changes.pop(k) for k in LIMIT_KEYWORDS if k in changes}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if overrides:
            changes["limits"] = dataclasses.replace(changes.get("limits") or base.limits, **overrides)
        elif changes.get("limits", base.limits) is None:
            changes["limits"] = Limits()
        return dataclasses.replace(base, **changes) if changes else base

    @property
    def stream_lease_seconds(self) -> float:
        """``stream_lease``, else ``ANYPORT_STREAM_LEASE_SECONDS``, else 30 s."""
        if self.stream_lease is not None:
            return self.stream_lease
        raw = os.environ.get("ANYPORT_STREAM_LEASE_SECONDS", "")
        try:
            value = float(raw) if raw.strip() else 30.0
        except ValueError:
            raise ValueError(f"ANYPORT_STREAM_LEASE_SECONDS must be a number of seconds, not {raw[:40]!r}") from None
        if not value > 0:
            raise ValueError("ANYPORT_STREAM_LEASE_SECONDS must be > 0")
        return value

    @property
    def request_rate(self) -> Rate | None:
        """``rate_limit`` as a ``Rate`` (a string was parsed when the options were made)."""
        return self.rate_limit if isinstance(self.rate_limit, Rate) else None

    @property
    def tool_rates(self) -> Mapping[str, Rate]:
        """``tool_rate_limits`` with every rate a ``Rate``."""
        return {name: rate for name, rate in self.tool_rate_limits.items() if isinstance(rate, Rate)}

    @property
    def route(self) -> str:
        """``path`` as the router compares it (no trailing slash)."""
        return _route(self.path)


def _route(path: str) -> str:
    return path.rstrip("/") or "/"
