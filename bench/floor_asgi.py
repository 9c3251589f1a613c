"""The raw floor for the HTTP benchmark: a bare ASGI app that answers the echo, on uvicorn.

No framework, no validation, no sessions, no tasks: read the POST body, parse it with orjson,
and answer ``tools/call`` with the echo result (the request's id and text put into a fixed
result shape), ``initialize`` with a fixed result plus an ``Mcp-Session-Id`` header (the same
id every time; nothing is kept), a notification with 202, and DELETE with 204. Headers such
as ``MCP-Protocol-Version`` or ``Mcp-Session-Id`` are not looked at. ``--sse`` sends each
answer as one ``event: message`` on a ``text/event-stream`` response (chunked, then ended) instead
of an ``application/json`` body.

It runs on uvicorn with the settings ``anyport serve --http`` uses (``run_http_server``: the
default loop and HTTP parser, which pick uvloop and httptools when installed, lifespan on,
websockets off, log level from ``--log-level``), so every Python row pays the same ASGI server
and the difference is the MCP layer.

Run: ``python bench/floor_asgi.py --port N [--sse] [--log-level warning]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

# bench/http.py would shadow the standard library's http package (uvicorn imports it): run
# as a script, this file's directory must not stay first on the import path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import orjson  # noqa: E402

_SERVER_INFO = {"name": "raw-floor", "version": "1.0.0"}
_SESSION_ID = b"0123456789abcdef0123456789abcdef"
_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def answer(msg: Any) -> dict[str, Any] | None:
    """The JSON-RPC response to one decoded request, or None for a notification."""
    if not isinstance(msg, dict) or msg.get("id") is None:
        return None
    method = msg.get("method")
    params = msg.get("params") or {}
    if method == "tools/call":
        text = (params.get("arguments") or {}).get("text", "")
        result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": False}
    elif method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": _SERVER_INFO,
        }
    else:
        return {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "Method not found"}}
    return {"jsonrpc": "2.0", "id": msg["id"], "result": result}


def make_app(sse: bool) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "DELETE":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            msg = orjson.loads(body)
        except orjson.JSONDecodeError:
            msg = None
        reply = answer(msg)
        if reply is None:
            await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = list(_SSE_HEADERS if sse else _JSON_HEADERS)
        if msg.get("method") == "initialize":
            headers.append((b"mcp-session-id", _SESSION_ID))
        data = orjson.dumps(reply)
        if sse:
            data = b"event: message\ndata: " + data + b"\n\n"
        else:
            headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return app


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(description="bare ASGI echo floor on uvicorn")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sse", action="store_true", help="answer with an SSE event instead of a JSON body")
    p.add_argument("--log-level", default="warning")
    args = p.parse_args()
    config = uvicorn.Config(
        make_app(args.sse), host="127.0.0.1", port=args.port, log_level=args.log_level,
        lifespan="on", ws="none", timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
