"""Group commit of the SSE streams stored behind their answers (``RedisEventLog.store_behind``).

A legacy session's answer written in one piece is sent first; its stream (for a client that lost the
response and resumes with ``Last-Event-ID``) is stored behind it. One Redis command costs redis-py
about 60-80 µs of CPU whatever it carries, so storing each stream with a command of its own cost an
SSE answer more than the rest of the request. ``StoreBehind`` waits ``delay`` for others to join and
stores a batch with one command: the answers of every concurrent request in one script call.

Bounds: a batch holds at most ``batch`` streams; past ``limit`` streams waiting, ``add`` hands back a
future the caller awaits before it answers (backpressure, so a replica under more load than Redis
takes does not queue without bound). A batch that fails (Redis down) costs those streams their
resumability, logged at most once per ``quiet`` seconds; the answers themselves went out already.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["StoreBehind", "WholeStream"]

log = logging.getLogger("anyport.state")


@dataclass(slots=True)
class WholeStream:
    """A stream to store whole: its session, name, messages (JSON), priming event; ``live``: only
    while the session's record exists (a write that lost the race with DELETE leaves no key)."""

    session_id: str
    name: str
    payloads: list[bytes]
    priming: bool
    live: bool = False


class StoreBehind:
    """Whole streams stored in batches, ``delay`` seconds behind the first of each batch."""

    def __init__(
        self, store: Callable[[list[WholeStream]], Awaitable[None]], *, delay: float = 0.002, batch: int = 64,
        limit: int = 1024, quiet: float = 5.0,
    ) -> None:
        self._store = store
        self.delay = delay
        self.batch = batch
        self.limit = limit
        self.quiet = quiet
        self._pending: list[WholeStream] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._failed = 0
        self._logged_at = -quiet

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, stream: WholeStream) -> asyncio.Future[None] | None:
        """Queue ``stream``; None, or a future to await first when ``limit`` streams wait already."""
        loop = asyncio.get_running_loop()
        self._pending.append(stream)
        if self._task is None:
            self._task = loop.create_task(self._run())
        if len(self._pending) <= self.limit:
            return None
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        return waiter

    async def flush(self) -> None:
        """Return once everything queued before the call is stored (or failed)."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        try:
            while self._pending:
                if len(self._pending) < self.batch:
                    await asyncio.sleep(self.delay)
                batch = self._pending[: self.batch]
                del self._pending[: self.batch]
                try:
                    await self._store(batch)
                except Exception as exc:
                    self._note_failure(len(batch), exc)
                if len(self._pending) <= self.limit:
                    self._release()
        finally:
            self._task = None
            self._release()

    def _release(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _note_failure(self, count: int, exc: Exception) -> None:
        self._failed += count
        now = time.monotonic()
        if now - self._logged_at >= self.quiet:
            log.warning("%d SSE streams could not be stored for resumption (%s): their answers were sent, "
                        "a client that lost one cannot resume it", self._failed, exc)
            self._failed = 0
            self._logged_at = now
