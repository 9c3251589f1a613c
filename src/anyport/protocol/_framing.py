"""Newline-delimited framing for stdio and other byte streams (T-STDIO-02, T-STDIO-17).

Pure: bytes in, complete lines out. A line longer than the limit is dropped as it streams
past (it is never held in memory whole) and reported once as ``Oversized`` with its first
``HEAD_BYTES``, so the reader can answer with an error that carries the request's id
(``head_id``) and go on with the next line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

__all__ = ["HEAD_BYTES", "LineFramer", "Oversized", "head_id"]

#: How much of an oversized line is kept to find its id in.
HEAD_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Oversized:
    size: int
    #: The line's first ``HEAD_BYTES`` (at most): where ``head_id`` looks for the request id.
    head: bytes = field(default=b"", compare=False)


_WS = b" \t\r\n"
_ID_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_ID_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?=[\s,}])")


def head_id(head: bytes) -> str | int | None:
    """The top-level ``"id"`` of a JSON object whose text begins with ``head``, or None.

    For an oversized message, which is never parsed whole: its error can still name its request
    (J-08). Only a member of the outermost object counts (an ``"id"`` inside ``params`` does not),
    and only a string or integer that ends within ``head``.
    """
    n = len(head)
    i = _skip_ws(head, 0)
    if i >= n or head[i] != 0x7B:  # {
        return None
    i += 1
    depth = 1
    expect_key = True
    while i < n:
        c = head[i]
        if c == 0x22:  # "
            m = _ID_STRING.match(head, i)
            if m is None:
                return None  # the string runs past the head
            i = m.end()
            if depth == 1 and expect_key:
                expect_key = False
                i = _skip_ws(head, i)
                if i >= n or head[i] != 0x3A:  # :
                    return None
                i = _skip_ws(head, i + 1)
                if m.group() == b'"id"':
                    return _id_value(head, i)
            continue
        if c == 0x7B or c == 0x5B:  # { [
            depth += 1
        elif c == 0x7D or c == 0x5D:  # } ]
            depth -= 1
            if depth <= 0:
                return None
        elif c == 0x2C and depth == 1:  # ,
            expect_key = True
        i += 1
    return None


def _skip_ws(data: bytes, i: int) -> int:
    n = len(data)
    while i < n and data[i] in _WS:
        i += 1
    return i


def _id_value(head: bytes, i: int) -> str | int | None:
    m = _ID_STRING.match(head, i)
    if m is not None:
        try:
            value = orjson.loads(m.group())
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, str) else None
    m = _ID_NUMBER.match(head, i)
    if m is not None:
        number = int(m.group())
        # JSON integers that orjson would read (64 bits); a longer one cannot be an id we echo.
        return number if -(2**63) <= number < 2**64 else None
    return None


class LineFramer:
    __slots__ = ("_buf", "_discarding", "_dropped", "_head", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buf = bytearray()
        self._discarding = False
        self._dropped = 0
        self._head = b""

    def feed(self, data: bytes) -> list[bytes | Oversized]:
        out: list[bytes | Oversized] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            chunk = data[start:nl]
            start = nl + 1
            if self._discarding:
                out.append(Oversized(self._dropped + len(chunk), self._head))
                self._discarding = False
                self._dropped = 0
                self._head = b""
                continue
            if self._buf:
                self._buf += chunk
                line = bytes(self._buf)
                self._buf.clear()
            else:
                line = chunk
            if len(line) > self.limit:
                out.append(Oversized(len(line), bytes(line[:HEAD_BYTES])))
                continue
            line = line.rstrip(b"\r")  # accept \r\n defensively (T-STDIO-02)
            if line.strip():
                out.append(line)
        rest = data[start:]
        if self._discarding:
            self._dropped += len(rest)
        elif rest:
            self._buf += rest
            if len(self._buf) > self.limit:
                self._dropped = len(self._buf)
                self._head = bytes(self._buf[:HEAD_BYTES])
                self._buf.clear()
                self._discarding = True
        return out

    def pending(self) -> bytes:
        """A final unterminated line at EOF."""
        if self._discarding:
            return b""
        line = bytes(self._buf).strip()
        self._buf.clear()
        return line
