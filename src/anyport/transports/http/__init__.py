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
from typing import TYPE_CHECKING, Any

from anyport.state import SessionStore
from anyport.transports.http._headers import DEFAULT_LOCAL_HOSTS
from anyport.transports.http._options import HTTPOptions

if TYPE_CHECKING:
    from anyport.runtime import Application
    from anyport.transports.http._app import StreamableHTTPApp
    from anyport.transports.http._registry import LiveSessions
    from anyport.transports.http._serve import run_http_server
    from anyport.transports.http._sessions import HTTPSession

__all__ = [
    "DEFAULT_LOCAL_HOSTS",
    "HTTPOptions",
    "HTTPSession",
    "LiveSessions",
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
    "LiveSessions": "anyport.transports.http._registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def create_app(server: Application, options: HTTPOptions | None = None, /, **changes: Any) -> StreamableHTTPApp:
    """The MCP endpoint of ``server`` as an ASGI application.

    Options: an ``HTTPOptions`` and/or any of its fields as keywords (see ``HTTPOptions`` for each:
    ``path``, ``stateless``, ``json_response``, ``allowed_origins``, ``allowed_hosts``,
    ``trusted_proxies``, ``limits``, ``session_store``, ``event_log``, ``bus``, ``request_timeout``,
    ``keepalive_interval``, ``get_stream_linger``, ``sse_retry_ms``, ``sse_poll_after``,
    ``legacy_sse``, ``sse_path``, ``messages_path``). ``max_body_bytes``, ``body_timeout``,
    ``session_idle_timeout`` and ``max_sessions`` may also be given on their own (they override
    ``limits``). An unknown keyword is a ``TypeError``.
    """
    from anyport.transports.http._app import StreamableHTTPApp

    return StreamableHTTPApp(server, options, **changes)
