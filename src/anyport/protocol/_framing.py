"""Newline-delimited framing for stdio and other byte streams (T-STDIO-02, T-STDIO-17).

Pure: bytes in, complete lines out. A line longer than the limit is dropped as it streams
past (it is never held in memory whole) and reported once as ``Oversized``, so the reader can
answer with an error and go on with the next line.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LineFramer", "Oversized"]


@dataclass(frozen=True, slots=True)
class Oversized:
    size: int


class LineFramer:
    __slots__ = ("_buf", "_discarding", "_dropped", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buf = bytearray()
        self._discarding = False
        self._dropped = 0

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
                out.append(Oversized(self._dropped + len(chunk)))
                self._discarding = False
                self._dropped = 0
                continue
            if self._buf:
                self._buf += chunk
                line = bytes(self._buf)
                self._buf.clear()
            else:
                line = chunk
            if len(line) > self.limit:
                out.append(Oversized(len(line)))
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
