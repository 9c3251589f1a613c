"""ASGI plumbing of the HTTP transports: the callable types and whole-response writers.

Nothing MCP-specific: these only move bytes onto an ASGI ``send``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from anyport.protocol import SSE_HEADERS, dumps, error_message

__all__ = [
    "ASGIMessage", "Receive", "Send", "disconnected", "error_body", "reject", "send_body", "send_empty", "send_json",
    "send_sse_whole",
]

ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]


async def send_body(
    send: Send, status: int, body: bytes, content_type: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """A whole response with ``Content-Length``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_sse_whole(send: Send, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """A whole SSE response, every event in one body: the stream ends with it (T-HTTP-17)."""
    await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(send: Send, status: int, body: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send_body(send, status, dumps(body), b"application/json", headers)


async def send_empty(send: Send, status: int, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0"), *headers]})
    await send({"type": "http.response.body", "body": b""})


def error_body(code: int, message: str, id_: str | int | None = None, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error response; without a readable id the id is omitted (T-HTTP-09, T-HTTP-02)."""
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return error_message(id_, err)


async def reject(
    send: Send, status: int, code: int, message: str, *, id_: str | int | None = None, data: Any = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Refuse a request: an HTTP status with a JSON-RPC error body."""
    await send_json(send, status, error_body(code, message, id_, data), headers)


async def disconnected(receive: Receive) -> None:
    """Returns when the client closed the connection (of a stream we only write to)."""
    with contextlib.suppress(OSError):
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                return
