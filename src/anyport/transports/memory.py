"""An in-process connected pair of message streams (for tests and embedding)."""

from __future__ import annotations

import asyncio

from anyport._exceptions import ConnectionClosedError

__all__ = ["MemoryStream", "memory_pair"]

_EOF = None


class MemoryStream:
    """One end of a pair; what one end sends, the other receives, in order."""

    def __init__(self, inbox: asyncio.Queue[bytes | None], outbox: asyncio.Queue[bytes | None]) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._closed = False

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionClosedError("this end of the memory pair is closed")
        self._outbox.put_nowait(bytes(data))

    async def receive(self) -> bytes | None:
        if self._closed:
            return None
        item = await self._inbox.get()
        if item is _EOF:
            self._inbox.put_nowait(_EOF)  # stay at EOF for later receivers
        return item

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._outbox.put_nowait(_EOF)
            self._inbox.put_nowait(_EOF)


def memory_pair() -> tuple[MemoryStream, MemoryStream]:
    """Two connected streams: ``(client_end, server_end)``."""
    a: asyncio.Queue[bytes | None] = asyncio.Queue()
    b: asyncio.Queue[bytes | None] = asyncio.Queue()
    return MemoryStream(a, b), MemoryStream(b, a)
