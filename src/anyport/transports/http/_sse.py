"""Server-Sent Events framing (WHATWG): what the Streamable HTTP app writes on a response stream.

Messages are compact JSON from the codec, which never contains a raw newline, so every event is
a single ``data:`` line. Comment lines (``:``) keep idle connections open through proxies.
"""

from __future__ import annotations

from typing import Any

from anyport.protocol import dumps

__all__ = ["SSE_HEADERS", "comment", "message_event", "named_event"]

#: Response headers of every SSE stream (T-HTTP-48, T-H26-08).
SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


def message_event(message: dict[str, Any] | list[Any], *, event_id: str | None = None) -> bytes:
    """One ``message`` event carrying one JSON-RPC message (or a 2025-03-26 batch of responses)."""
    head = b"event: message\n"
    if event_id is not None:
        if "\n" in event_id or "\r" in event_id:
            raise ValueError("an SSE event id cannot contain a line break")
        head = b"id: " + event_id.encode() + b"\n" + head
    return head + b"data: " + dumps(message) + b"\n\n"


def comment(text: str = "keepalive") -> bytes:
    """A comment line; clients ignore it (T-H26-08)."""
    return b": " + text.replace("\n", " ").encode() + b"\n\n"


def named_event(name: str, data: bytes | str) -> bytes:
    """One event of type ``name`` whose data is a single line (e.g. the legacy ``endpoint`` event)."""
    payload = data.encode() if isinstance(data, str) else data
    if b"\n" in payload or b"\r" in payload or "\n" in name or "\r" in name:
        raise ValueError("an SSE event name or single-line data cannot contain a line break")
    return b"event: " + name.encode() + b"\ndata: " + payload + b"\n\n"
