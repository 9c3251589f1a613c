"""Serve any stdio MCP server (any language) over Streamable HTTP, both eras, and HTTP+SSE.

```python
from anyport.bridge import Bridge, BridgeOptions, bridge_app

bridge = Bridge(BridgeOptions(command=("npx", "-y", "@modelcontextprotocol/server-everything")))
app = bridge_app(bridge)          # an ASGI app: uvicorn.run(app, port=8000)
```

``anyport bridge -- COMMAND ARGS...`` does the same from the shell (docs/bridge.md);
``MultiBridge({"files": bridge_app(files, path="/files/mcp", ...), ...})`` serves several at their
own paths (``[bridge.servers.NAME]`` in anyport.toml).
"""

from anyport.bridge._app import Bridge
from anyport.bridge._asgi import BridgeASGI, bridge_app
from anyport.bridge._child import Child, ChildGone
from anyport.bridge._multi import MultiBridge
from anyport.bridge._pool import BridgeOptions, ChildStartError, PoolExhausted
from anyport.bridge._spawn import DEFAULT_ENV

__all__ = [
    "DEFAULT_ENV",
    "Bridge",
    "BridgeASGI",
    "BridgeOptions",
    "Child",
    "ChildGone",
    "ChildStartError",
    "MultiBridge",
    "PoolExhausted",
    "bridge_app",
]
