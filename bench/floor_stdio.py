"""The raw floor for the stdio benchmark: the least a Python process can do to answer echo.

A bare loop: read one line from stdin, parse it with orjson, answer ``initialize`` and
``tools/call echo`` with a correct JSON-RPC result, write the answer and flush. No validation,
no schema, no asyncio, no tasks. Anything else that carries an id gets -32601; notifications
and responses are ignored. It exists only to show what the pipe plus JSON round trip costs, so
every real server can be read as "floor plus framework".

Run: ``python bench/floor_stdio.py`` (stdout is the protocol channel). Exits on stdin EOF.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

_NL = orjson.OPT_APPEND_NEWLINE
_SERVER_INFO = {"name": "raw-floor", "version": "1.0.0"}


def answer(msg: Any) -> dict[str, Any] | None:
    """The response to one decoded message, or None when nothing is to be sent."""
    if not isinstance(msg, dict) or "method" not in msg or msg.get("id") is None:
        return None
    method = msg["method"]
    params = msg.get("params") or {}
    if method == "tools/call" and params.get("name") == "echo":
        text = (params.get("arguments") or {}).get("text", "")
        result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": False}
    elif method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": _SERVER_INFO,
        }
    else:
        return {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": f"Method not found: {method}"}}
    return {"jsonrpc": "2.0", "id": msg["id"], "result": result}


def main() -> None:
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    for line in stdin:
        if not line.strip():
            continue
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError:
            reply: dict[str, Any] | None = {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}}
        else:
            reply = answer(msg)
        if reply is not None:
            stdout.write(orjson.dumps(reply, option=_NL))
            stdout.flush()


if __name__ == "__main__":
    main()
