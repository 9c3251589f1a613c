"""Several stdio servers behind one HTTP port (``anyport bridge`` with ``[bridge.servers.NAME]``).

``MultiBridge`` routes each request by its path to the ``BridgeASGI`` of one server: its Streamable
HTTP endpoint (``/NAME/mcp``), its HTTP+SSE endpoints beside it (``/NAME/sse``, ``/NAME/messages/``)
and its protected-resource metadata (``/.well-known/oauth-protected-resource/NAME/mcp``). Each
server keeps everything of its own (children, sessions, limits, auth chain); the router adds:

- a lifespan that starts every server at once and fails, naming the server, if one cannot start
  (the others are stopped then);
- ``/healthz``, ``/readyz`` (every server ready, else 503 with each server's reason) and
  ``/NAME/readyz`` (that server's own readiness);
- a 404 for any other path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from anyport._exceptions import INVALID_REQUEST
from anyport.bridge._asgi import BridgeASGI, _json
from anyport.protocol import error_message

__all__ = ["MultiBridge", "beside"]

log = logging.getLogger("anyport.bridge")

#: A server's name: one path segment.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
#: RFC 9728's well-known prefix; a server's document is at this prefix + its endpoint's path (A-07).
PRM_PATH = "/.well-known/oauth-protected-resource"
#: RFC 8414's document of the authorization server, served at the origin for 2025-03-26 clients (A-04).
AS_METADATA_PATH = "/.well-known/oauth-authorization-server"

Scope = dict[str, Any]


def beside(path: str) -> tuple[str, str]:
    """The HTTP+SSE paths of the server whose Streamable HTTP endpoint is ``path``: ``sse`` and
    ``messages/`` in the same directory (``/files/mcp`` -> ``/files/sse``, ``/files/messages/``)."""
    base = path.rstrip("/").rpartition("/")[0]
    return f"{base}/sse", f"{base}/messages/"


def _route(path: str) -> str:
    return path.rstrip("/") or "/"


class MultiBridge:
    """ASGI application: each server of ``servers`` (name -> its ``BridgeASGI``) at its own paths."""

    def __init__(self, servers: Mapping[str, BridgeASGI]) -> None:
        if not servers:
            raise ValueError("a MultiBridge needs at least one server")
        self.servers = dict(servers)
        #: Why start-up failed (``server 'NAME': ...``), for the command line to say in one line.
        self.startup_error: str | None = None
        self._routes: dict[str, str] = {}
        self._as_metadata: str | None = None  # the server answering AS_METADATA_PATH (the first with auth)
        for name, app in self.servers.items():
            if not SAFE_NAME.match(name):
                raise ValueError(f"server name {name!r}: letters, digits, '-' and '_' only (it is a path segment)")
            http = app.http
            routes = [http.path, PRM_PATH + http.path]
            auth = http.options.auth
            if auth is not None:
                routes.append(PRM_PATH + _route(getattr(auth, "path", http.path)))  # the resource URL's own path
                self._as_metadata = self._as_metadata or name
            if http.legacy is not None:
                routes += [_route(http.legacy.sse_path), _route(http.legacy.messages_path)]
            for route in routes:
                other = self._routes.get(route)
                if route in ("/healthz", "/readyz") or (other is not None and other != name):
                    raise ValueError(f"server {name!r}: {route} is taken by {f'server {other!r}' if other else 'the bridge'}")
                self._routes[route] = name
        self._share_gauges()

    def _share_gauges(self) -> None:
        """Servers observed with one ``MCPMetrics``: its session and stream gauges count them all
        (each HTTP app registers its own count, and the last one would win)."""
        apps: dict[int, tuple[Any, list[Any]]] = {}
        for app in self.servers.values():
            metrics = app.http.metrics
            if metrics is not None and hasattr(metrics, "track"):
                apps.setdefault(id(metrics), (metrics, []))[1].append(app.http)
        for metrics, https in apps.values():
            if len(https) > 1:
                metrics.track("sessions", lambda https=https: sum(len(h.sessions) for h in https))
                metrics.track("streams", lambda https=https: sum(
                    len(h.get_streams) + (len(h.legacy.connections) if h.legacy is not None else 0) for h in https))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind != "http":
            return
        path = _route(scope.get("path", ""))
        if path == "/healthz":
            await _json(send, 200, {"status": "ok"})
            return
        if path == "/readyz":
            await self._readyz(send)
            return
        name = self._routes.get(path)
        if name is None and path == AS_METADATA_PATH:
            name = self._as_metadata
        if name is None:
            head, _, tail = path[1:].partition("/")
            if tail == "readyz" and head in self.servers:  # /NAME/readyz: that server's /readyz
                name, scope = head, {**scope, "path": "/readyz", "raw_path": b"/readyz"}
        if name is None:
            await _json(send, 404, error_message(None, {"code": INVALID_REQUEST, "message": f"Not Found: {scope.get('path', '')}"}))
            return
        await self.servers[name](scope, receive, send)

    async def readiness(self) -> dict[str, tuple[bool, str]]:
        """Each server's readiness and its reason."""
        out: dict[str, tuple[bool, str]] = {}
        for name, app in self.servers.items():
            ready, reason = app.bridge.readiness()
            if not app.bridge.started and app.startup_error is not None:
                reason = app.startup_error
            elif ready and not app.http.ready:
                ready, reason = False, "shutting down"
            auth = app.http.options.auth
            if ready and auth is not None:
                failure = await auth.unready()
                if failure is not None:
                    ready, reason = False, failure
            out[name] = (ready, reason)
        return out

    async def _readyz(self, send: Any) -> None:
        report = await self.readiness()
        ready = all(ok for ok, _ in report.values())
        body = {"status": "ready" if ready else "unavailable",
                "servers": {name: {"ready": ok, "reason": reason} for name, (ok, reason) in report.items()}}
        await _json(send, 200 if ready else 503, body, retry_after=not ready)

    async def _lifespan(self, scope: Scope, receive: Any, send: Any) -> None:
        lives = {name: _Life(app, scope) for name, app in self.servers.items()}
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                failures = await asyncio.gather(*(life.start() for life in lives.values()))
                failed = [(name, why) for name, why in zip(lives, failures, strict=True) if why is not None]
                if failed:
                    self.startup_error = "; ".join(f"server {name!r}: {why}" for name, why in failed)
                    log.error("anyport bridge: %s", self.startup_error)
                    await asyncio.gather(*(life.stop() for life in lives.values()))
                    await send({"type": "lifespan.startup.failed", "message": self.startup_error})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.gather(*(life.stop() for life in lives.values()))
                await send({"type": "lifespan.shutdown.complete"})
                return


class _Life:
    """The lifespan of one server's app, driven by the router's own."""

    def __init__(self, app: BridgeASGI, scope: Scope) -> None:
        self.app = app
        self.scope = scope
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> str | None:
        """Start the server: None, or why it could not start."""
        self.task = asyncio.get_running_loop().create_task(self.app(self.scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self._next()
        if message["type"] == "lifespan.startup.complete":
            return None
        return str(message.get("message") or "its start-up failed")

    async def stop(self) -> None:
        task = self.task
        if task is None or task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self._next()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, 10)

    async def _next(self) -> MutableMapping[str, Any]:
        assert self.task is not None
        getter = asyncio.ensure_future(self.outbox.get())
        await asyncio.wait({getter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        error = self.task.exception() if not self.task.cancelled() else None
        return {"type": "lifespan.startup.failed", "message": str(error) if error else "its lifespan ended"}
