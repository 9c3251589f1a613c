"""The official Python SDK's interop fixture server over HTTP, with the options the benchmark needs.

``tests/interop/peers/python/sdk_server.py --http PORT`` serves the fixture on the SDK's default
Streamable HTTP settings (stateful, SSE replies). The benchmark also needs its stateless and
JSON-reply settings and its 2024-11-05 HTTP+SSE transport, so this file imports that same
server object (the same ``MCPServer`` with the same tools) and calls ``MCPServer.run`` with the
SDK's own options. Nothing else changes: uvicorn is started by the SDK, with its own settings.

Run: ``python bench/pysdk_http_server.py --port N [--stateless] [--json-response] [--sse]``
(``--sse``: the HTTP+SSE transport at ``/sse`` + ``/messages/`` instead of Streamable HTTP).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# bench/http.py would shadow the standard library's http package (uvicorn imports it): run
# as a script, this file's directory must not stay first on the import path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

PEER_DIR = Path(__file__).resolve().parent.parent / "tests" / "interop" / "peers" / "python"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--stateless", action="store_true", help="stateless_http=True")
    p.add_argument("--json-response", action="store_true", help="json_response=True")
    p.add_argument("--sse", action="store_true", help="serve the 2024-11-05 HTTP+SSE transport instead")
    args = p.parse_args()
    sys.path.insert(0, str(PEER_DIR))
    from sdk_server import mcp  # the fixture's MCPServer (its __main__ block does not run on import)

    if args.sse:
        mcp.run("sse", host="127.0.0.1", port=args.port)
    else:
        mcp.run(
            "streamable-http", host="127.0.0.1", port=args.port, streamable_http_path="/mcp",
            stateless_http=args.stateless, json_response=args.json_response,
        )


if __name__ == "__main__":
    main()
