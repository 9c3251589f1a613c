"""Streamable HTTP server transport: one raw ASGI application serving both protocol eras.

```python
import uvicorn
from anyport.transports.http import create_app

uvicorn.run(create_app(app), host="127.0.0.1", port=8000)   # POST/GET/DELETE /mcp, /healthz, /readyz
```

Legacy sessions get resumable SSE streams (event ids ``<stream>:<seq>`` in an ``EventLog``, a
priming event on 2025-11-25, ``GET`` + ``Last-Event-ID`` to resume) and a standalone ``GET``
stream for server-initiated notifications: ``await http_app.notify(session_id, method, params)``,
``await http_app.broadcast(method, params)``, or ``await outlet.session.notify(...)`` from a handler.

The same app serves the deprecated 2024-11-05 HTTP+SSE transport (``GET /sse`` +
``POST /messages/?session_id=...``) unless ``legacy_sse=False``.

Any ASGI server works (uvicorn, hypercorn, granian); the app has no framework underneath.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from anyport.state import Bus, EventLog, SessionStore
from anyport.transports.http._app import StreamableHTTPApp
from anyport.transports.http._headers import DEFAULT_LOCAL_HOSTS
from anyport.transports.http._serve import run_http_server
from anyport.transports.http._sessions import HTTPSession, MemorySessionStore

if TYPE_CHECKING:
    from anyport.server import Server

__all__ = [
    "DEFAULT_LOCAL_HOSTS",
    "HTTPSession",
    "MemorySessionStore",
    "SessionStore",
    "StreamableHTTPApp",
    "create_app",
    "run_http_server",
]


def create_app(
    server: Server,
    *,
    path: str = "/mcp",
    stateless: bool = False,
    json_response: bool = False,
    allowed_origins: Iterable[str] | None = None,
    allowed_hosts: Iterable[str] | None = None,
    max_body_bytes: int = 4 * 1024 * 1024,
    session_idle_timeout: float = 1800,
    max_sessions: int = 10_000,
    session_store: SessionStore | None = None,
    legacy_sse: bool = True,
    sse_path: str = "/sse",
    messages_path: str = "/messages/",
    event_log: EventLog | None = None,
    bus: Bus | None = None,
    sse_retry_ms: int | None = None,
    sse_poll_after: float | None = None,
    trusted_proxies: Iterable[str] | None = None,
    body_timeout: float = 30.0,
) -> StreamableHTTPApp:
    """The MCP endpoint of ``server`` as an ASGI application.

    - ``stateless``: no legacy sessions; legacy requests are served without ``initialize``
      (as 2025-03-26 unless ``MCP-Protocol-Version`` says otherwise). 2026-07-28 requests are
      stateless either way.
    - ``json_response``: answer requests with ``application/json`` instead of an SSE stream
      (then notifications during a request are dropped and server->client requests fail).
    - ``allowed_origins`` / ``allowed_hosts``: DNS-rebinding defence. ``None`` allows only
      ``localhost``, ``127.0.0.1`` and ``[::1]`` (any port); ``"*"`` allows anything. A server
      reachable under another name must list it.
    - ``session_idle_timeout`` (seconds) and ``max_sessions`` bound the legacy sessions kept in
      memory. ``session_store`` (an ``anyport.state.SessionStore``), ``event_log`` and ``bus``
      replace the in-memory state: share them between replicas (DESIGN.md §4).
    - ``sse_retry_ms``: a ``retry:`` field (milliseconds) in the priming event of each stream and
      before an early close (T-HTTP-13). ``sse_poll_after``: close a POST's SSE connection that many
      seconds after it opened (``0``: right after the priming event); the stream stays open and the
      client resumes it with GET + ``Last-Event-ID`` (polling, T-HTTP-12). Both only on revisions
      with priming events (2025-11-25); off by default.
    - ``trusted_proxies``: peer addresses of reverse proxies (``"*"``: any) whose
      ``X-Forwarded-Host`` / ``X-Forwarded-Proto`` are believed: the Host check uses the forwarded
      host, and an Origin equal to ``proto://forwarded-host`` counts as same-origin. From any other
      peer those headers are ignored.
    - ``body_timeout``: seconds for a client to send its whole request body (408 after that).
    - ``legacy_sse``: also serve the 2024-11-05 HTTP+SSE transport: ``GET sse_path`` opens an event
      stream whose first ``endpoint`` event names ``messages_path?session_id=...``, where the client
      POSTs its messages (202; answers arrive on the stream). One connection per stream, closed
      with it; ``max_sessions`` also bounds the number of open streams.
    """
    return StreamableHTTPApp(
        server,
        path=path,
        stateless=stateless,
        json_response=json_response,
        allowed_origins=allowed_origins,
        allowed_hosts=allowed_hosts,
        max_body_bytes=max_body_bytes,
        session_idle_timeout=session_idle_timeout,
        max_sessions=max_sessions,
        session_store=session_store,
        legacy_sse=legacy_sse,
        sse_path=sse_path,
        messages_path=messages_path,
        event_log=event_log,
        bus=bus,
        sse_retry_ms=sse_retry_ms,
        trusted_proxies=trusted_proxies,
        body_timeout=body_timeout,
        sse_poll_after=sse_poll_after,
    )
