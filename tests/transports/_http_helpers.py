"""A real uvicorn on a free loopback port, in a background thread, for the HTTP transport tests."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

ACCEPT_BOTH = "application/json, text/event-stream"
POST_HEADERS = {"accept": ACCEPT_BOTH, "content-type": "application/json"}
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPS = "io.modelcontextprotocol/clientCapabilities"
MODERN = "2026-07-28"


@contextmanager
def running(app: Any, *, start_timeout: float = 10.0, port: int = 0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (``port``, or one chosen by the kernel); yields the base URL; always stops it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", ws="none", http="h11", loop="asyncio", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


def client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=httpx.Timeout(10.0))


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The JSON payloads of the ``message`` events of a whole SSE body."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
        if data and "".join(data):
            out.append(json.loads("\n".join(data)))
    return out


def initialize(c: httpx.Client, version: str = "2025-11-25", capabilities: dict[str, Any] | None = None) -> dict[str, str]:
    """Open a legacy session; returns the headers every later request carries."""
    body = {
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": capabilities or {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    r = c.post("/mcp", headers=POST_HEADERS, json=body)
    assert r.status_code == 200, r.text
    headers = {**POST_HEADERS, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": version}
    r = c.post("/mcp", headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert r.status_code == 202
    return headers


def modern_body(id_: int | str, method: str, params: dict[str, Any] | None = None, *, caps: dict[str, Any] | None = None, version: str = MODERN) -> dict[str, Any]:
    p = dict(params or {})
    p["_meta"] = {**p.get("_meta", {}), META_VERSION: version, META_CAPS: caps or {}}
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": p}


def modern_headers(method: str, name: str | None = None, version: str = MODERN) -> dict[str, str]:
    h = {**POST_HEADERS, "mcp-protocol-version": version, "mcp-method": method}
    if name is not None:
        h["mcp-name"] = name
    return h


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """``wait_for`` for async tests: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def scripted_request(scope: dict[str, Any], receive: Any, send: Any) -> tuple[bytes, dict[str, str]] | None:
    """For hand-scripted ASGI apps in tests: serve the lifespan protocol (then None), or read the
    request's whole body and its headers (lower-case names)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return None
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return body, {k.decode().lower(): v.decode() for k, v in scope["headers"]}
