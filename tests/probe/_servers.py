"""Misbehaving MCP servers for the probe tests, written here: each one fails in one known way.

- ``ScriptedHTTP(mode)``: a raw ASGI app speaking just enough legacy Streamable HTTP (discover
  refused with -32601, initialize, tools/list, tools/call), except where ``mode`` says it hangs
  (``hang_handshake``, ``hang_tools_list``, ``hang_tools_call``), answers garbage (``garbage``), or
  offers a protocol version nobody speaks (``old_version``), or answers every POST with one HTTP
  status (``status_503``, ``status_403``). A hang lasts until ``stop()`` (30 s at most).
- ``AuthWall(app, mode)``: 401 + ``WWW-Authenticate: Bearer resource_metadata="..."`` in front of
  ``app`` unless the request carries ``Authorization: Bearer good-token``; serves the protected
  resource metadata (RFC 9728). ``mode="bare"``: a 401 with no challenge at all.
- ``tcp_server(behaviour)``: a plain TCP server that accepts and then stays ``silent`` (so a TLS
  handshake or an HTTP answer never comes) or ``drop``s the connection once the request arrived.
- ``stdio_scripted.py MODE``: the stdio counterparts (garbage, hang, exit, old_version).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TOOLS = [
    {"name": "echo", "description": "Echo.", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {"name": "wipe", "description": "Deletes.", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": False}},
]
TOKEN = "good-token"


async def _body(receive: Any) -> bytes:
    data = b""
    for _ in range(10_000):
        message = await receive()
        data += message.get("body", b"")
        if not message.get("more_body"):
            break
    return data


async def _send(send: Any, status: int, body: bytes, ctype: bytes = b"application/json", extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class ScriptedHTTP:
    """A legacy-era Streamable HTTP server that misbehaves as ``mode`` says (see the module doc)."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    async def _hang(self) -> None:
        for _ in range(300):  # 30 s at most
            if self._stop.is_set():
                return
            await asyncio.sleep(0.1)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["method"] == "DELETE":
            await _send(send, 200, b"")
            return
        if scope["method"] != "POST":
            await _send(send, 405, b"", extra=[(b"allow", b"POST")])
            return
        msg = json.loads(await _body(receive))
        method, id_ = msg.get("method"), msg.get("id")
        if self.mode == "garbage":
            await _send(send, 200, b"<html>hello</html>", b"text/html")
            return
        if self.mode.startswith("status_"):  # e.g. status_503: a proxy whose backend is gone
            await _send(send, int(self.mode[7:]), b"unavailable", b"text/plain")
            return
        if id_ is None:
            await _send(send, 202, b"")
            return
        hang = {"hang_handshake": ("initialize", "server/discover"), "hang_tools_list": ("tools/list",),
                "hang_tools_call": ("tools/call",)}.get(self.mode, ())
        if method in hang:
            await self._hang()
        extra: list[tuple[bytes, bytes]] = []
        if method == "server/discover":
            reply: dict[str, Any] = {"error": {"code": -32601, "message": "Method not found"}}
        elif method == "initialize":
            version = "1999-01-01" if self.mode == "old_version" else "2025-11-25"
            reply = {"result": {"protocolVersion": version, "capabilities": {"tools": {}}, "serverInfo": {"name": "scripted", "version": "0"}}}
            extra = [(b"mcp-session-id", b"s1")]
        elif method == "tools/list":
            reply = {"result": {"tools": TOOLS}}
        elif method == "tools/call":
            reply = {"result": {"content": [{"type": "text", "text": "ok"}]}}
        else:
            reply = {"error": {"code": -32601, "message": "Method not found"}}
        await _send(send, 200, json.dumps({"jsonrpc": "2.0", "id": id_, **reply}).encode(), extra=extra)


class AuthWall:
    """Bearer auth in front of ``app`` (see the module doc); ``base`` is set once the port is known."""

    def __init__(self, app: Any, mode: str = "metadata") -> None:
        self.app = app
        self.mode = mode
        self.base = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/.well-known/oauth-protected-resource/mcp":
            doc = {"resource": f"{self.base}/mcp", "authorization_servers": ["https://auth.invalid"], "scopes_supported": ["mcp"]}
            await _send(send, 200, json.dumps(doc).encode())
            return
        headers = dict(scope["headers"])
        if headers.get(b"authorization") == f"Bearer {TOKEN}".encode():
            await self.app(scope, receive, send)
            return
        await _body(receive)
        challenge = [] if self.mode == "bare" else [
            (b"www-authenticate", f'Bearer resource_metadata="{self.base}/.well-known/oauth-protected-resource/mcp", scope="mcp"'.encode())
        ]
        await _send(send, 401, b'{"error":"unauthorized"}', extra=challenge)


@contextmanager
def tcp_server(behaviour: str) -> Iterator[int]:
    """A loopback TCP server (``silent`` or ``drop``); yields its port; stops within a second."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            if behaviour == "drop":
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                except OSError:
                    pass
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()
