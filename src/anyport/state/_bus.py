"""The bus: deliver a message to whoever holds a stream, in this process or (later) another one.

Keys are plain strings (the transport uses ``session:<id>`` for a session's standalone GET stream
and ``stream:<session>:<stream>`` for a stream being resumed); messages are JSON-able dicts.
Delivery is at-most-once to each current subscriber: nobody subscribed, nobody receives it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from anyport.state._clone import clone

__all__ = ["Bus", "MemoryBus", "Subscription"]

log = logging.getLogger("anyport.state")


class Subscription(Protocol):
    async def get(self) -> tuple[str, dict[str, Any]]:
        """The next ``(key, message)``; waits. Raises ``EOFError`` once the subscription is closed."""
        ...

    async def aclose(self) -> None:
        """Stop receiving; a ``get`` waiting ends with ``EOFError``."""
        ...


class Bus(Protocol):
    async def publish(self, key: str, message: dict[str, Any]) -> int:
        """Deliver to every current subscriber of ``key``; returns how many there were (0: nobody)."""
        ...

    async def subscribe(self, *keys: str) -> Subscription:
        """Receive what is published on any of ``keys`` from now on."""
        ...

    async def aclose(self) -> None: ...


_CLOSED: tuple[str, dict[str, Any]] = ("", {})


class _MemorySubscription:
    def __init__(self, bus: MemoryBus, keys: tuple[str, ...], limit: int) -> None:
        self._bus = bus
        self.keys = keys
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._limit = limit
        self.closed = False

    def _put(self, key: str, message: dict[str, Any]) -> bool:
        if self.closed:
            return False
        if self._queue.qsize() >= self._limit:
            log.warning("bus subscriber of %r is %d messages behind: dropping", key, self._limit)
            return False
        self._queue.put_nowait((key, clone(message)))
        return True

    async def get(self) -> tuple[str, dict[str, Any]]:
        if self.closed and self._queue.empty():
            raise EOFError("the subscription is closed")
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)
            raise EOFError("the subscription is closed")
        return item

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._queue.put_nowait(_CLOSED)


class MemoryBus:
    """In-process publish/subscribe over asyncio queues (each subscriber buffers ``limit`` messages)."""

    def __init__(self, *, limit: int = 10_000) -> None:
        self.limit = limit
        self._subs: dict[str, set[_MemorySubscription]] = {}

    def subscribers(self, key: str) -> int:
        return len(self._subs.get(key, ()))

    def __len__(self) -> int:
        """Keys with at least one subscriber."""
        return len(self._subs)

    async def publish(self, key: str, message: dict[str, Any]) -> int:
        return sum(1 for sub in list(self._subs.get(key, ())) if sub._put(key, message))

    async def subscribe(self, *keys: str) -> Subscription:
        if not keys:
            raise ValueError("subscribe needs at least one key")
        sub = _MemorySubscription(self, keys, self.limit)
        for key in keys:
            self._subs.setdefault(key, set()).add(sub)
        return sub

    def _remove(self, sub: _MemorySubscription) -> None:
        for key in sub.keys:
            subs = self._subs.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[key]

    async def aclose(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.aclose()
        self._subs.clear()
