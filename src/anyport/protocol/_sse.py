"""Server-Sent Events (WHATWG), both ways: the events a server writes and the parser a client reads
them with (Streamable HTTP response and GET streams, the 2024-11-05 HTTP+SSE transport).

Messages are compact JSON from the codec, which never contains a raw newline, so every event is
a single ``data:`` line. Comment lines (``:``) keep idle connections open through proxies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anyport.protocol._codec import dumps

__all__ = [
    "SSE_HEADERS", "SSEEvent", "SSEParser", "comment", "message_event", "named_event", "priming_event", "retry_field",
]

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


# -- reading (the client side) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event; ``id`` is the last event id in force when it was dispatched."""

    event: str
    data: str
    id: str


class SSEParser:
    """Incremental WHATWG event-stream parser: feed bytes, get whole events.

    Lines end in CRLF, LF or CR (also when a CRLF is split between chunks); ``:`` lines are
    comments; several ``data:`` lines join with ``\\n``; ``id:`` persists until changed (an
    empty one resets it, one containing NUL is ignored); ``retry:`` takes only digits. A block
    with no data is not dispatched (but its ``id`` still counts), and an unterminated event at
    the end of the stream is dropped.
    """

    def __init__(self, last_event_id: str = "") -> None:
        self.last_event_id = last_event_id
        #: The reconnection time in milliseconds, once the server sent a valid ``retry:``.
        self.retry: int | None = None
        self._buf = b""
        self._skip_lf = False
        self._first = True
        self._data: list[str] = []
        self._event = ""
        self._id_buffer = last_event_id

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if self._skip_lf and chunk:
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
            self._skip_lf = False
        buf = self._buf + chunk
        start = 0
        n = len(buf)
        i = 0
        while i < n:
            c = buf[i]
            if c == 0x0A or c == 0x0D:
                line = buf[start:i]
                if c == 0x0D:
                    if i + 1 < n:
                        if buf[i + 1] == 0x0A:
                            i += 1
                    else:
                        self._skip_lf = True  # a LF at the start of the next chunk ends this same line
                start = i + 1
                ev = self._line(line)
                if ev is not None:
                    events.append(ev)
            i += 1
        self._buf = buf[start:]
        return events

    def _line(self, raw: bytes) -> SSEEvent | None:
        line = raw.decode("utf-8", "replace")
        if self._first:
            self._first = False
            if line.startswith("\ufeff"):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id_buffer = value
        elif name == "retry":
            if value and value.isascii() and value.isdigit():
                self.retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        self.last_event_id = self._id_buffer
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SSEEvent(event or "message", "\n".join(data), self.last_event_id)
