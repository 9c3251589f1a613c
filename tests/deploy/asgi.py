"""Driving an ASGI application directly, the way serverless adapters do: a lifespan
startup/shutdown cycle around each request (Mangum, Cloudflare's workers-py), and one HTTP request
whose body arrives whole before the app runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]

MODERN = "2026-07-28"
LEGACY = "2025-11-25"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks: list[bytes] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)

    def messages(self) -> list[dict[str, Any]]:
        """The JSON-RPC messages of a JSON or SSE body."""
        if self.headers.get("content-type", "").startswith("application/json"):
            value = self.json()
            return value if isinstance(value, list) else [value]
        out: list[dict[str, Any]] = []
        for block in self.body.decode().replace("\r\n", "\n").split("\n\n"):
            data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
            if data and "".join(data):
                out.append(json.loads("\n".join(data)))
        return out


class Lifespan:
    """One lifespan cycle of ``app``: ``await startup()``, then ``await shutdown()``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self.event.set()

    async def _next(self, timeout: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                if self.sent:
                    return self.sent.pop(0)
                self.event.clear()
                await self.event.wait()

    async def startup(self, timeout: float = 10.0) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self.app({"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}, self.inbox.get, self._send)
        )
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self._next(timeout)
        assert message["type"] == "lifespan.startup.complete", message

    async def shutdown(self, timeout: float = 10.0) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        message = await self._next(timeout)
        assert message["type"] == "lifespan.shutdown.complete", message
        assert self.task is not None
        async with asyncio.timeout(timeout):
            await self.task


async def request(
    app: ASGIApp, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
    host: str = "127.0.0.1", timeout: float = 10.0,
) -> Response:
    """One HTTP request through ``app``; the body is delivered whole, then ``http.disconnect`` only
    once the response is complete (as Cloudflare's adapter does)."""
    raw = {"host": host, **(headers or {})}
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": method,
        "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in raw.items()],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 443),
    }
    done = asyncio.Event()
    delivered = False
    status = 0
    out_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update({k.decode("latin-1"): v.decode("latin-1") for k, v in message.get("headers", [])})
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    async with asyncio.timeout(timeout):
        await app(scope, receive, send)
    assert done.is_set(), "the app returned before the end of its response"
    return Response(status, out_headers, b"".join(chunks), chunks)


def modern_call(
    id_: int, method: str, params: dict[str, Any] | None = None, name: str | None = None, caps: dict[str, Any] | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a 2026-07-28 POST (SEP-2243 header mirroring included)."""
    p = dict(params or {})
    p["_meta"] = {
        **p.get("_meta", {}), "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": caps or {},
    }
    headers = {
        "accept": "application/json, text/event-stream", "content-type": "application/json",
        "mcp-protocol-version": MODERN, "mcp-method": method,
    }
    if name is not None:
        headers["mcp-name"] = name
    return headers, json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": p}).encode()
