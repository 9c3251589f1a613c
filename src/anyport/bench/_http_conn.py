"""The HTTP/1.1 client side of the load generator: one keep-alive connection on
``asyncio.Protocol`` (``Conn``), its ``Response``, and reading answers out of it.

``Conn`` parses Content-Length, chunked and until-close bodies; ``sse_events`` and ``SSEStream``
parse Server-Sent Events (a whole body, or a long-lived GET stream fed as it arrives);
``answer_of`` finds the JSON-RPC answer in a JSON or SSE response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from anyport.bench._mcp import ServerDied, WrongAnswer, short

__all__ = ["Conn", "Response", "SSEStream", "answer_of", "sse_events"]

_HEAD, _LEN, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _CHUNK_END, _UNTIL_CLOSE = range(7)


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Conn(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; one request at a time.

    ``request`` returns a future for the whole response. With ``sink`` the body is handed to the
    sink as it arrives instead (a long-lived SSE stream); ``head`` then resolves once the status
    line and headers are in.
    """

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport
        self.buf = bytearray()
        self.state = _HEAD
        self.remaining = 0
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.fut: asyncio.Future[Response] | None = None
        self.head: asyncio.Future[Response] | None = None
        self.sink: Callable[[bytes], None] | None = None
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.state == _UNTIL_CLOSE:
            self._complete()
        for fut in (self.head, self.fut):
            if fut is not None and not fut.done():
                fut.set_exception(ServerDied("the server closed the connection"))

    def request(self, data: bytes, sink: Callable[[bytes], None] | None = None) -> asyncio.Future[Response]:
        if self.closed or self.transport is None:
            raise ServerDied("connection already closed by the server")
        loop = asyncio.get_running_loop()
        self.fut = loop.create_future()
        self.sink = sink
        if sink is not None:
            self.head = loop.create_future()
            self.fut.add_done_callback(_retrieve)  # a stream that ends when we close it is no error
        self.transport.write(data)
        return self.fut

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            fut = self.fut
            if fut is not None and not fut.done():
                fut.set_exception(WrongAnswer(f"malformed HTTP response: {exc}"))
            self.close()

    def _feed(self, part: bytes) -> None:
        if self.sink is not None:
            self.sink(part)
        else:
            self.body += part

    def _complete(self) -> None:
        self.state = _HEAD
        fut, self.fut = self.fut, None
        self.sink = None
        if fut is not None and not fut.done():
            fut.set_result(Response(self.status, self.headers, bytes(self.body)))

    def _parse(self) -> None:
        buf = self.buf
        while buf or (self.state == _LEN and self.remaining == 0):
            state = self.state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = bytes(buf[:end]).split(b"\r\n")
                del buf[: end + 4]
                self.status = status = int(lines[0].split(b" ", 2)[1])
                headers: dict[bytes, bytes] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                self.headers = headers
                self.body = bytearray()
                if self.head is not None and not self.head.done():
                    self.head.set_result(Response(status, headers, b""))
                if status < 200:
                    continue  # 1xx: the real response follows
                if status in (204, 304):
                    self._complete()
                elif b"content-length" in headers:
                    self.remaining = int(headers[b"content-length"])
                    self.state = _LEN
                    if self.remaining == 0:
                        self._complete()
                elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                    self.state = _CHUNK_SIZE
                else:
                    self.state = _UNTIL_CLOSE
            elif state == _LEN or state == _CHUNK_DATA:
                n = min(len(buf), self.remaining)
                self._feed(bytes(buf[:n]))
                del buf[:n]
                self.remaining -= n
                if self.remaining:
                    return
                if state == _LEN:
                    self._complete()
                else:
                    self.state = _CHUNK_CRLF
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";")[0], 16)
                del buf[: end + 2]
                if size:
                    self.remaining, self.state = size, _CHUNK_DATA
                else:
                    self.state = _CHUNK_END
            elif state == _CHUNK_CRLF:
                if len(buf) < 2:
                    return
                del buf[:2]
                self.state = _CHUNK_SIZE
            elif state == _CHUNK_END:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                trailer = bytes(buf[:end])
                del buf[: end + 2]
                if not trailer:
                    self._complete()
            else:  # _UNTIL_CLOSE
                self._feed(bytes(buf))
                buf.clear()


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def sse_events(text: bytes) -> list[tuple[str, bytes]]:
    """(event name, data) of each complete event in an SSE body."""
    out = []
    for block in text.replace(b"\r\n", b"\n").split(b"\n\n"):
        name = "message"
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode()
        if data:
            out.append((name, b"\n".join(data)))
    return out


class SSEStream:
    """The incremental SSE parser of a long-lived GET stream: endpoint event + answers by id."""

    def __init__(self) -> None:
        self.buf = b""
        self.endpoint: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting: dict[Any, asyncio.Future[Any]] = {}

    def feed(self, part: bytes) -> None:
        self.buf += part.replace(b"\r\n", b"\n")
        if b"\n\n" not in self.buf:
            return
        complete, _, self.buf = self.buf.rpartition(b"\n\n")
        for name, data in sse_events(complete):
            if name == "endpoint":
                if not self.endpoint.done():
                    self.endpoint.set_result(data.decode())
                continue
            if name != "message" or not data.strip():
                continue
            msg = orjson.loads(data)
            if isinstance(msg, dict) and "method" not in msg:
                fut = self.waiting.pop(msg.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)


def answer_of(resp: Response, request_id: int, what: str) -> tuple[Any, str]:
    """The JSON-RPC answer to ``request_id`` in a 200 response (JSON or SSE) and its media type."""
    if resp.status != 200:
        raise WrongAnswer(f"{what}: HTTP {resp.status}: {short(resp.body)}")
    ctype = resp.headers.get(b"content-type", b"").split(b";")[0].strip().decode()
    if ctype == "application/json":
        msg = orjson.loads(resp.body)
        if isinstance(msg, dict) and msg.get("id") == request_id:
            return msg, "json"
        raise WrongAnswer(f"{what}: answer to another id: {short(resp.body)}")
    if ctype == "text/event-stream":
        for _name, data in sse_events(resp.body):
            if not data.strip():
                continue
            msg = orjson.loads(data)
            if isinstance(msg, dict) and "method" not in msg and msg.get("id") == request_id:
                return msg, "sse"
        raise WrongAnswer(f"{what}: no answer to id {request_id} in the event stream: {short(resp.body)}")
    raise WrongAnswer(f"{what}: unexpected Content-Type {ctype!r}: {short(resp.body)}")
