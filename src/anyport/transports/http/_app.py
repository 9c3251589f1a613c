"""The Streamable HTTP endpoint as one raw ASGI application (no framework underneath).

Every request passes the checks in one fixed order, so status codes are deterministic
(DIGEST §21): Origin/Host -> authentication (``auth``: 401/403 with a challenge, A-31) -> method ->
Accept/Content-Type -> scopes of the tool/resource/prompt (403 ``insufficient_scope``) -> session
(another principal's is unknown: 404) -> protocol version -> body. The well-known metadata
documents and ``/healthz`` / ``/readyz`` are never authenticated. A request with ``Origin`` (a
browser) gets CORS from the same allow-list (``_cors``): a preflight is answered (or refused, 403)
right after ``/healthz`` / ``/readyz``, never authenticated; other answers carry the CORS headers.
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
import functools
import logging
from typing import TYPE_CHECKING, Any

from anyport._exceptions import INTERNAL_ERROR, INVALID_REQUEST, SERVER_BUSY
from anyport.protocol import REVISIONS, ServerConnection, accepts_sse, notification
from anyport.state import (
    Bus,
    EventLog,
    MemoryBus,
    MemoryEventLog,
    MemoryRateLimiter,
    RateLimiter,
    RedisState,
    SessionRecord,
)
from anyport.transports.http._asgi import ASGIMessage, Receive, Send, reject, send_empty, send_json
from anyport.transports.http._exchange import StreamOptions
from anyport.transports.http._gate import (
    NO_SESSION_ID,
    UNKNOWN_SESSION,
    ClientGone,
    Gate,
    HTTPRequest,
    SlowClient,
    authenticated,
    send_rejection,
    serve_well_known,
)
from anyport.transports.http._legacy_sse import LegacySSE
from anyport.transports.http._observing import counting, metrics_of
from anyport.transports.http._options import HTTPOptions
from anyport.transports.http._post import PostHandler, principal_key
from anyport.transports.http._registry import LiveSessions, owns
from anyport.transports.http._sessions import BROADCAST_KEY, BusFanout, BusRelay, HTTPSession, session_key
from anyport.transports.http._shared import close_redis, redis_failure, redis_of
from anyport.transports.http._streams import GetStreams

if TYPE_CHECKING:
    from anyport.runtime import Application

__all__ = ["StreamableHTTPApp"]

log = logging.getLogger("anyport.http")

Scope = ASGIMessage


class StreamableHTTPApp:
    """ASGI app: the MCP endpoint at ``options.path`` (both eras), plus ``/healthz`` and ``/readyz``,
    and (``legacy_sse``) the 2024-11-05 HTTP+SSE endpoints at ``sse_path`` and ``messages_path``.

    Takes an ``HTTPOptions`` and/or its fields as keywords (``HTTPOptions.of``)."""

    def __init__(self, server: Application, options: HTTPOptions | None = None, /, **changes: Any) -> None:
        self.options = options = HTTPOptions.of(options, **changes)
        self.limits = limits = options.limits
        self.server = server
        self.path = options.route
        self.legacy: LegacySSE | None = None
        if options.legacy_sse:
            self.legacy = LegacySSE(
                server, sse_path=options.sse_path, messages_path=options.messages_path, max_connections=limits.max_sessions,
                keepalive_interval=options.keepalive_interval, request_timeout=options.request_timeout,
                max_inflight=limits.max_inflight, max_buffered=limits.max_buffered_events,
            )
        self.gate = Gate(options, server.legacy_versions)
        #: The shared state of every replica (``options.redis``), made and closed by this app.
        self.redis: RedisState | None = redis_of(options, limits)
        self.events: EventLog = (
            options.event_log if options.event_log is not None
            else self.redis.events if self.redis is not None
            else MemoryEventLog(max_events=limits.max_events_per_stream, max_streams=limits.max_streams_per_session)
        )
        self.bus: Bus = options.bus if options.bus is not None else self.redis.bus if self.redis is not None else MemoryBus()
        records = options.session_store if options.session_store is not None else self.redis.sessions if self.redis is not None else None
        self.stream_options = StreamOptions(self.events, self.bus, options.sse_retry_ms, options.sse_poll_after, options.stream_lease_seconds)
        # Legacy sessions are peers of server.hub; list_changed and resources/updated reach them all
        # through one fanout on the Bus (every GET stream of every replica sharing it), see _sessions.
        self.fanout: BusFanout | None = None if options.stateless else BusFanout(self.bus)
        self.sessions = LiveSessions(
            idle_timeout=limits.session_idle_timeout, max_sessions=limits.max_sessions, records=records,
            restore=lambda record: restore_connection(server, options, record), bus=self.bus, events=self.events, hub=server.hub, fanout=self.fanout,
            sweep_every=min(limits.session_idle_timeout, 60.0),
        )
        if self.fanout is not None:
            server.hub.add_fanout(self.fanout)
        #: Shared state: this hub's listeners also get what other replicas' hubs send, and theirs ours
        #: (registered with the hub from the first request or the lifespan start-up on).
        self._shared_bus = options.bus is not None or self.redis is not None
        self.relay: BusRelay | None = None
        self._relaying = False
        self.get_streams = GetStreams(
            self.stream_options, keepalive_interval=options.keepalive_interval, linger=options.get_stream_linger,
            max_buffered=limits.max_buffered_events,
        )
        limiter: RateLimiter | None = None
        if options.rate_limit is not None or options.tool_rate_limits:
            limiter = self.redis.limiter if self.redis is not None else MemoryRateLimiter()
        self.post = PostHandler(server, options, self.gate, self.sessions, self.stream_options, limiter)
        self.ready = True
        #: An observed application's metrics (``anyport.observe``), told of refusals and sessions.
        self.metrics = metrics_of(self)
        #: Ends idle sessions on a timer (``_reap``): started with the app's first request or lifespan.
        self._reaper: asyncio.Task[None] | None = None

    @property
    def stateless(self) -> bool:
        return self.options.stateless

    # -- ASGI entry ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return  # websockets are not part of MCP; the server closes the handshake
        if self._reaper is None and not self._relaying:
            self._start_reaper()
        if self.metrics is not None:
            send = counting(send, self.metrics, self, scope["path"])
        req = HTTPRequest(scope)
        path = req.path.rstrip("/") or "/"
        if path == "/healthz":
            await send_json(send, 200, {"status": "ok"})
            return
        if path == "/readyz":
            await self._readyz(send)
            return
        if b"origin" in req.headers:  # a browser: CORS (_cors), preflights never authenticated
            if await self.gate.cors.answered(req, path, send):
                return
            send = self.gate.cors.wrap(req.headers[b"origin"], send)
        auth = self.options.auth
        if auth is not None and path.startswith("/.well-known/"):
            await serve_well_known(auth, req, path, send)
            return
        try:
            if path == self.path:
                await self._endpoint(req, receive, send)
            elif self.legacy is not None and path == (self.legacy.sse_path.rstrip("/") or "/"):
                await authenticated(self.gate, auth, req, receive, send, self._legacy_stream)
            elif self.legacy is not None and path == (self.legacy.messages_path.rstrip("/") or "/"):
                await authenticated(self.gate, auth, req, receive, send, self._legacy_post)
            else:
                await reject(send, 404, INVALID_REQUEST, f"Not Found: {req.path}")
        except ClientGone:
            return
        except SlowClient:
            await reject(send, 408, INVALID_REQUEST, f"Request Timeout: the body did not arrive within {self.gate.body_timeout:g} s")
        except Exception as exc:
            if self.redis is not None and self.redis.unavailable(exc):
                # The shared state is down (Redis restarting): a clean refusal the client may retry.
                log.warning("Redis unavailable while serving %s %s: %s", req.method, req.path, exc)
                with contextlib.suppress(Exception):
                    await reject(
                        send, 503, SERVER_BUSY, "Service Unavailable: the shared state (Redis) is unreachable",
                        headers=[(b"retry-after", b"1")],
                    )
                return
            # A bug of ours, never the client's input (the fuzzers check that no input gets here):
            # a JSON-RPC error rather than the ASGI server's plain-text 500, when nothing was sent yet.
            log.exception("internal error while serving %s %s", req.method, req.path)
            with contextlib.suppress(Exception):
                await reject(send, 500, INTERNAL_ERROR, "Internal error")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                failure = await redis_failure(self.redis)
                if failure is not None:
                    log.error("anyport: %s", failure)
                    await send({"type": "lifespan.startup.failed", "message": failure})
                    return
                self.ready = True
                self._start_reaper()
                if self.fanout is not None:
                    self.server.hub.add_fanout(self.fanout)  # again, after an earlier shutdown
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _readyz(self, send: Send) -> None:
        if not self.ready:
            await send_json(send, 503, {"status": "shutting down"})
            return
        auth = self.options.auth  # a JWKS never reached: not ready either
        failure = await redis_failure(self.redis) or (await auth.unready() if auth is not None else None)
        if failure is not None:
            await send_json(send, 503, {"status": "unavailable", "reason": failure}, [(b"retry-after", b"5")])
            return
        await send_json(send, 200, {"status": "ready"})

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
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.cancel()
        if self.fanout is not None:
            self.server.hub.remove_fanout(self.fanout)
        if self.relay is not None and self._relaying:
            self._relaying = False
            if self.relay.release():
                self.server.hub.remove_relay(self.relay)
        await self.get_streams.aclose()
        if self.legacy is not None:
            await self.legacy.aclose()
        await self.sessions.aclose()
        await self.post.aclose()
        await close_redis(self.redis)

    def _start_reaper(self) -> None:
        if self._shared_bus and not self._relaying:
            self._relaying = True
            relay = self.server.hub.add_relay(BusRelay(self.bus, self.server.hub))  # one per hub and bus
            self.relay = relay if isinstance(relay, BusRelay) else None
            if self.relay is not None:
                self.relay.acquire()
        if self._reaper is None and not self.options.stateless:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """End idle sessions (their handlers, streams, logged events) on a timer: <= 1/4 idle timeout (10 s) late."""
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

    # -- the MCP endpoint ----------------------------------------------------------------------

    async def _endpoint(self, req: HTTPRequest, receive: Receive, send: Send) -> None:
        if self.options.auth is not None:
            await authenticated(self.gate, self.options.auth, req, receive, send, self.post.handle if req.method == "POST" else self._route)
            return
        rejection = self.gate.refusal(req)
        if rejection is not None:
            await send_rejection(send, rejection)
            return
        if req.method == "POST":
            await self.post.handle(req, receive, send)  # the hot path: no extra coroutine
        else:
            await self._route(req, receive, send)

    async def _route(self, req: HTTPRequest, receive: Receive, send: Send) -> None:
        # 3. Method.
        if req.method == "POST":
            await self.post.handle(req, receive, send)
        elif req.method == "DELETE" and not self.options.stateless:
            await self._delete(req, send)
        elif req.method == "GET" and not self.options.stateless and self.gate.version_header(req) not in self.server.modern_versions:
            await self._get(req, receive, send)
        else:
            # GET streams and DELETE exist only with legacy sessions (T-HTTP-21, T-H26-24).
            allow = b"POST" if self.options.stateless else b"GET, POST, DELETE"
            await reject(send, 405, INVALID_REQUEST, f"Method Not Allowed: {req.method}", headers=[(b"allow", allow)])

    async def _get(self, req: HTTPRequest, receive: Receive, send: Send) -> None:
        """The standalone stream, or a stream resumed with ``Last-Event-ID`` (T-HTTP-19..32)."""
        # 3. Accept (T-HTTP-20).
        if not accepts_sse(req.get(b"accept")):
            await reject(send, 406, INVALID_REQUEST, "Not Acceptable: Accept must allow text/event-stream")
            return
        # 4. Session.
        session = await self._required_session(req, send)
        if session is None:
            return
        # 5. Protocol version.
        if not await self.gate.check_legacy_version(send, self.gate.version_header(req)):
            return
        if not self.ready:
            await reject(send, 503, INVALID_REQUEST, "Service Unavailable: shutting down", headers=[(b"retry-after", b"5")])
            return
        # 6. Last-Event-ID: only ids of this session's own streams (T-HTTP-32).
        raw = req.get(b"last-event-id")
        last = raw.strip(" \t") if raw is not None else None
        if not await self.get_streams.serve(session, last or None, receive, send):
            await reject(send, 400, INVALID_REQUEST, "Bad Request: Last-Event-ID does not name a stream of this session")

    # -- 2024-11-05 HTTP+SSE (T-SSE-*) -----------------------------------------------------------

    async def _legacy_stream(self, req: HTTPRequest, receive: Receive, send: Send) -> None:
        assert self.legacy is not None
        if req.method != "GET":
            await reject(send, 405, INVALID_REQUEST, f"Method Not Allowed: {req.method}", headers=[(b"allow", b"GET")])
            return
        if not accepts_sse(req.get(b"accept")):
            await reject(send, 406, INVALID_REQUEST, "Not Acceptable: Accept must allow text/event-stream")
            return
        if not self.ready:
            await reject(send, 503, INVALID_REQUEST, "Service Unavailable: shutting down", headers=[(b"retry-after", b"5")])
            return
        await self.legacy.stream(req.root_path, receive, send, owner=principal_key())

    async def _legacy_post(self, req: HTTPRequest, receive: Receive, send: Send) -> None:
        assert self.legacy is not None
        if req.method != "POST":
            await reject(send, 405, INVALID_REQUEST, f"Method Not Allowed: {req.method}", headers=[(b"allow", b"POST")])
            return
        if await self.post.limited(req, send):  # the same per-client rate as the Streamable HTTP endpoint
            return

        await self.legacy.post(
            req.query, req.get(b"content-type"), functools.partial(self.gate.read_body, req, receive), send, max_body_bytes=self.gate.max_body_bytes, owner=principal_key(),
            scope_refusal=self.post.scope_refusal, rate_limited=functools.partial(self.post.tools_limited, req),
        )

    async def _required_session(self, req: HTTPRequest, send: Send) -> HTTPSession | None:
        """The request's live session, or None after answering 400 (no header, T-HTTP-38) or 404 (T-HTTP-39)."""
        sid = req.get(b"mcp-session-id")
        if sid is None:
            await reject(send, 400, INVALID_REQUEST, NO_SESSION_ID)
            return None
        session = await self.sessions.get(sid.strip())
        if session is None or not owns(self.sessions, session.id, principal_key()):
            await reject(send, 404, INVALID_REQUEST, UNKNOWN_SESSION)
            return None
        return session

    async def _delete(self, req: HTTPRequest, send: Send) -> None:
        session = await self._required_session(req, send)
        if session is None:
            return
        if not await self.gate.check_legacy_version(send, self.gate.version_header(req)):
            return
        await self.sessions.delete(session.id)  # T-HTTP-42: 2xx now, 404 afterwards
        await send_empty(send, 204)


def restore_connection(server: Application, options: HTTPOptions, record: SessionRecord) -> ServerConnection | None:
    """The protocol state of a session begun elsewhere, from its record."""
    if record.version is None or record.version not in server.legacy_versions:
        return None
    conn = server.open_connection(assume_initialized=REVISIONS[record.version])
    conn.max_inflight = options.limits.max_inflight
    conn.client_capabilities = dict(record.client_capabilities)
    conn.client_info = record.client_info
    conn.log_level = record.log_level
    conn.initialized = record.initialized
    return conn
