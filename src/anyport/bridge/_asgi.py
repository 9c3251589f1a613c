"""The HTTP front of a bridge: anyport's own ASGI app (``create_app``: Streamable HTTP in both eras,
HTTP+SSE, Origin/Host checks, limits, health) around a ``Bridge``, plus what only a bridge knows:

- the lifespan starts the first child before the first request and stops every child at the end;
- ``/readyz`` answers 503 (with the reason) while children cannot be started;
- a POST that would need a new child (no ``Mcp-Session-Id``: a new session or a 2026-07-28
  request) while the pool is exhausted gets 503 with ``Retry-After``, before its body is read;
- a session whose child went idle is ended (its next request gets 404: T-HTTP-39/40).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import MutableMapping
from typing import Any

from anyport._exceptions import SERVER_BUSY
from anyport.bridge._affinity import Affinity
from anyport.bridge._app import PASSED_HEADERS, Bridge
from anyport.bridge._pool import header_env
from anyport.protocol import dumps, error_message
from anyport.state import MemoryBus, MemoryEventLog
from anyport.transports.http import HTTPOptions, create_app

__all__ = ["BridgeASGI", "bridge_app"]

log = logging.getLogger("anyport.bridge")

Scope = dict[str, Any]


class BridgeASGI:
    """ASGI application: ``bridge`` served by anyport's HTTP transport."""

    def __init__(
        self, bridge: Bridge, options: HTTPOptions | None = None, *, application: Any = None, advertise_url: str | None = None,
        **changes: Any,
    ) -> None:
        self.bridge = bridge
        # ``application``: what the HTTP transport serves, when it is not the bridge itself (the
        # bridge wrapped by ``anyport.observe.Observed``, for metrics, spans and the access log).
        self.http = create_app(application if application is not None else bridge, _local_streams(options, advertise_url, changes))
        self.path = self.http.path
        bridge.end_session = self._end_session
        self.startup_error: str | None = None
        self._starting = asyncio.Lock()
        #: Replicas sharing the bridge's Redis: a session's requests go to the replica of its child.
        self.affinity: Affinity | None = Affinity(self, advertise_url) if advertise_url is not None else None

    async def _end_session(self, session_id: str) -> None:
        """End a session whose child went idle: a Streamable HTTP session is deleted, an HTTP+SSE
        connection's stream is closed (its ``session_id`` is the session's id in the hub)."""
        if session_id in self.http.sessions:
            await self.http.sessions.delete(session_id)
        elif self.http.legacy is not None:
            self.http.legacy.end(session_id)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind == "http" and self.affinity is not None:
            await self.affinity.route(scope, receive, send, self.serve)
            return
        await self.serve(scope, receive, send)

    async def serve(self, scope: Scope, receive: Any, send: Any) -> None:
        """Serve a request here (``Affinity`` forwards those of sessions another replica holds)."""
        kind = scope["type"]
        if kind == "http":
            if not self.bridge.started and not await self._start_late():
                await _json(send, 503, {"status": "unavailable", "reason": self.startup_error or "not started"}, retry_after=True)
                return
            path = scope.get("path", "").rstrip("/") or "/"
            if path == "/readyz":
                ready, reason = self.bridge.readiness()
                if not ready:
                    await _json(send, 503, {"status": "unavailable", "reason": reason}, retry_after=True)
                    return
            elif path == self.path and scope.get("method") == "POST" and self.bridge.pool.exhausted():
                headers = dict(scope.get("headers") or ())
                if b"mcp-session-id" not in headers:
                    body = error_message(None, {"code": SERVER_BUSY, "message": "Service Unavailable: every child of the bridge is busy"})
                    await _json(send, 503, body, retry_after=True)
                    return
        passed = self.bridge.options.pass_headers
        if kind == "http" and passed:
            wanted = {h.lower().encode("latin-1"): header_env(h) for h in passed}
            env = {wanted[k]: v.decode("latin-1") for k, v in scope.get("headers") or () if k in wanted}
            token = PASSED_HEADERS.set(env or None)
            try:
                await self.http(scope, receive, send)
            finally:
                PASSED_HEADERS.reset(token)
            return
        await self.http(scope, receive, send)

    async def _start_late(self) -> bool:
        """An ASGI server without lifespan events: the first child starts with the first request."""
        async with self._starting:
            if not self.bridge.started:
                try:
                    await self.bridge.start()
                except Exception as exc:
                    self.startup_error = str(exc)
                    return False
        return True

    async def _lifespan(self, scope: Scope, receive: Any, send: Any) -> None:
        async def receive_() -> Any:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.bridge.start()
                except Exception as exc:
                    self.startup_error = str(exc)
            return message

        async def send_(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete" and self.startup_error is not None:
                log.error("anyport bridge: %s", self.startup_error)
                message = {"type": "lifespan.startup.failed", "message": self.startup_error}
            elif message["type"] == "lifespan.startup.complete" and self.affinity is not None:
                self.affinity.start()
            elif message["type"] == "lifespan.shutdown.complete":
                with contextlib.suppress(Exception):
                    await self.bridge.aclose()
                if self.affinity is not None:
                    await self.affinity.aclose()
            await send(message)

        await self.http(scope, receive_, send_)


def _local_streams(options: HTTPOptions | None, advertise_url: str | None, changes: dict[str, Any]) -> HTTPOptions:
    """The HTTP options; with replica affinity every request of a session is served by the replica of its
    child, so its event log (resumable streams) and bus (GET streams) stay in that process: Redis keeps
    the claims, the session records (a takeover after a crash) and the rate limits."""
    opts = HTTPOptions.of(options, **changes)
    if advertise_url is None or opts.redis is None:
        return opts
    limits = opts.limits
    return dataclasses.replace(
        opts,
        event_log=opts.event_log or MemoryEventLog(max_events=limits.max_events_per_stream, max_streams=limits.max_streams_per_session),
        bus=opts.bus or MemoryBus(),
    )


async def _json(send: Any, status: int, body: dict[str, Any], *, retry_after: bool = False) -> None:
    data = dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if retry_after:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def bridge_app(
    bridge: Bridge, options: HTTPOptions | None = None, *, application: Any = None, advertise_url: str | None = None, **changes: Any,
) -> BridgeASGI:
    """The ASGI app serving ``bridge`` (every option of ``anyport.transports.http.create_app``;
    ``application``: the bridge wrapped, e.g. ``Observed(bridge, metrics=...)``; ``advertise_url``
    with ``redis``: where the other replicas reach this one, to forward the requests of the sessions
    whose children are here, see ``anyport.bridge._affinity``)."""
    return BridgeASGI(bridge, options, application=application, advertise_url=advertise_url, **changes)
