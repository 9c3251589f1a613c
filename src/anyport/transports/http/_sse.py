"""Server-Sent Events framing (WHATWG): what the Streamable HTTP app writes on a response stream.

Messages are compact JSON from the codec, which never contains a raw newline, so every event is
a single ``data:`` line. Comment lines (``:``) keep idle connections open through proxies.
"""

from __future__ import annotations

from typing import Any

from anyport.protocol import dumps

__all__ = ["SSE_HEADERS", "comment", "message_event", "named_event", "priming_event", "retry_field"]

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
        head = b"id: " + _check_id(event_id) + b"\n" + head
    return head + b"data: " + dumps(message) + b"\n\n"


def _check_id(event_id: str) -> bytes:
    if "\n" in event_id or "\r" in event_id:
        raise ValueError("an SSE event id cannot contain a line break")
    return event_id.encode()


def priming_event(event_id: str, *, retry_ms: int | None = None) -> bytes:
    """An event with an id and empty data (T-HTTP-11): the client now has a ``Last-Event-ID``.

    With ``retry_ms`` it also sets the client's reconnection delay (T-HTTP-13).
    """
    head = b"" if retry_ms is None else retry_field(retry_ms)[:-1]
    return head + b"id: " + _check_id(event_id) + b"\ndata: \n\n"


def retry_field(retry_ms: int) -> bytes:
    """A ``retry:`` field on its own (T-HTTP-13): sent before the server closes a stream early."""
    if retry_ms < 0:
        raise ValueError("retry must be >= 0 ms")
    return b"retry: " + str(int(retry_ms)).encode() + b"\n\n"


def comment(text: str = "keepalive") -> bytes:
    """A comment line; clients ignore it (T-H26-08)."""
    return b": " + text.replace("\n", " ").encode() + b"\n\n"


def named_event(name: str, data: bytes | str) -> bytes:
    """One event of type ``name`` whose data is a single line (e.g. the legacy ``endpoint`` event)."""
    payload = data.encode() if isinstance(data, str) else data
    if b"\n" in payload or b"\r" in payload or "\n" in name or "\r" in name:
        raise ValueError("an SSE event name or single-line data cannot contain a line break")
    return b"event: " + name.encode() + b"\ndata: " + payload + b"\n\n"
