"""Streamable HTTP server transport: one raw ASGI application serving both protocol eras.

```python
import uvicorn
from anyport.transports.http import create_app

uvicorn.run(create_app(app), host="127.0.0.1", port=8000)   # POST/GET/DELETE /mcp, /healthz, /readyz
```

Legacy sessions get resumable SSE streams (event ids ``<stream>:<seq>`` in an ``EventLog``, a
priming event on 2025-11-25, ``GET`` + ``Last-Event-ID`` to resume) and a standalone ``GET``
stream for server-initiated messages. Each session is a peer of ``server.hub``, so
``await server.notify_list_changed("tools")`` reaches every initialized session and
``await server.notify_resource_updated(uri)`` the sessions subscribed to ``uri``, on whichever
replica holds their GET stream. One session: ``await http_app.notify(session_id, method, params)``
or ``await outlet.session.notify(...)`` from a handler; every connected GET stream:
``await http_app.broadcast(method, params)``. The standalone stream outlives its connection: what
is sent while the client is between two GETs is logged and replayed when it resumes with
``Last-Event-ID`` (T-HTTP-30/31).

The same app serves the deprecated 2024-11-05 HTTP+SSE transport (``GET /sse`` +
``POST /messages/?session_id=...``) unless ``legacy_sse=False``.

Any ASGI server works (uvicorn, hypercorn, granian); the app has no framework underneath.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from anyport.limits import Limits
from anyport.state import Bus, EventLog, SessionStore
from anyport.transports.http._headers import DEFAULT_LOCAL_HOSTS

if TYPE_CHECKING:
    from anyport.runtime import Application
    from anyport.transports.http._app import StreamableHTTPApp
    from anyport.transports.http._serve import run_http_server
    from anyport.transports.http._sessions import HTTPSession, MemorySessionStore

__all__ = [
    "DEFAULT_LOCAL_HOSTS",
    "HTTPSession",
    "MemorySessionStore",
    "SessionStore",
    "StreamableHTTPApp",
    "create_app",
    "run_http_server",
]

#: The server side loads when first named, so the client side (``anyport.transports.http.client``)
#: can be imported without it.
_LAZY = {
    "StreamableHTTPApp": "anyport.transports.http._app",
    "run_http_server": "anyport.transports.http._serve",
    "HTTPSession": "anyport.transports.http._sessions",
    "MemorySessionStore": "anyport.transports.http._sessions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def create_app(
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
) -> StreamableHTTPApp:
    """The MCP endpoint of ``server`` as an ASGI application.

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
      reachable under another name must list it.
    - ``limits`` (an ``anyport.Limits``): every limit that protects the server, with what a client
      sees when it meets one (docs/limits.md): body size and read time, sessions, idle timeout,
      requests in flight, notifications buffered for a slow reader, events kept for resumption.
      ``max_body_bytes``, ``body_timeout``, ``session_idle_timeout`` and ``max_sessions`` may
      also be given on their own (they override ``limits``).
    - ``session_idle_timeout`` (seconds, default 1800) and ``max_sessions`` (10,000) bound the
      legacy sessions kept in memory. A session with no request and no open stream for the idle
      timeout ends on a timer, with its handlers and its logged events. ``session_store`` (an ``anyport.state.SessionStore``), ``event_log`` and ``bus``
      replace the in-memory state: share them between replicas (DESIGN.md §4). Without a
      ``session_store`` the sessions live in this process only and the live session is the only
      copy of its state (no record is written per request). After many sessions end (DELETE or
      expiry) the registry gives their memory back: its tables shrink and glibc's heap is trimmed.
    - ``sse_retry_ms``: a ``retry:`` field (milliseconds) in the priming event of each stream and
      before an early close (T-HTTP-13). ``sse_poll_after``: close a POST's SSE connection that many
      seconds after it opened (``0``: right after the priming event); the stream stays open and the
      client resumes it with GET + ``Last-Event-ID`` (polling, T-HTTP-12). Both only on revisions
      with priming events (2025-11-25); off by default.
    - ``trusted_proxies``: peer addresses of reverse proxies (``"*"``: any) whose
      ``X-Forwarded-Host`` / ``X-Forwarded-Proto`` are believed: the Host check uses the forwarded
      host, and an Origin equal to ``proto://forwarded-host`` counts as same-origin. From any other
      peer those headers are ignored.
    - ``body_timeout``: seconds for a client to send its whole request body (408 after that; default 30).
    - ``get_stream_linger``: seconds a session's standalone stream is still held (and what is sent
      to the session logged) after its GET connection dropped, for the client to resume it with
      ``Last-Event-ID`` (T-HTTP-30/31). Logging starts with the session's first GET; a session that
      never opened one logs nothing. The ``event_log``'s limits apply (in memory: the newest 1000
      events per stream).
    - ``legacy_sse``: also serve the 2024-11-05 HTTP+SSE transport: ``GET sse_path`` opens an event
      stream whose first ``endpoint`` event names ``messages_path?session_id=...``, where the client
      POSTs its messages (202; answers arrive on the stream). One connection per stream, closed
      with it; ``max_sessions`` also bounds the number of open streams.
    """
    from anyport.transports.http._app import StreamableHTTPApp

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
        get_stream_linger=get_stream_linger,
        limits=limits,
    )
