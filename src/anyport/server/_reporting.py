"""Progress and logging for ``Context``: ``report_progress`` / ``log`` and their scheduling point.

``_Reporting`` is a mixin of ``Context``: ``ctx.report_progress`` resolves on the class, with no
extra call or attribute hop on the hot path. Every report or log line is a scheduling point shared fairly by the handlers of one
event loop (``_Turns``); progress is rate-limited per request by a token bucket (U-09).
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from collections.abc import Awaitable
from typing import Any

from anyport.protocol import LOG_LEVELS, brief
from anyport.server._ctxbase import _ContextBase

__all__: list[str] = []


class _Turns:
    """Fair turns at the ``ctx`` scheduling points of one event loop.

    A handler that only reports progress or logs is runnable on every turn of the loop; 500 of them
    make each turn cost 500 handler steps, and everything else the loop does (accepting a connection,
    answering ``/healthz``) waits that long, once per turn (uvloop accepts one connection per turn).
    So at most ``PER_TURN`` handlers pass a scheduling point per turn of the loop; the others queue,
    first come first served, and are released ``PER_TURN`` at a time on the following turns. Queued
    handlers cost nothing while they wait; a loop with few handlers never queues one.
    """

    PER_TURN = 32

    __slots__ = ("_armed", "_loop", "_passed", "_queue")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._passed = 0
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._armed = False

    async def turn(self) -> None:
        if self._passed < self.PER_TURN and not self._queue:
            self._passed += 1
            self._arm()
            await asyncio.sleep(0)
            return
        fut = self._loop.create_future()
        self._queue.append(fut)
        self._arm()
        await fut

    def _arm(self) -> None:
        if not self._armed:
            self._armed = True
            self._loop.call_soon(self._tick)  # runs on the next turn of the loop, before the handlers

    def _tick(self) -> None:
        self._armed = False
        self._passed = 0
        queue = self._queue
        while queue and self._passed < self.PER_TURN:
            fut = queue.popleft()
            if not fut.done():  # a handler cancelled while it waited
                fut.set_result(None)
                self._passed += 1
        if queue or self._passed:
            self._arm()


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = weakref.WeakKeyDictionary()


def _turn() -> Awaitable[None]:
    """The scheduling point of ``report_progress`` and ``log`` (see ``_Turns``)."""
    loop = asyncio.get_running_loop()
    turns = _turns.get(loop)
    if turns is None:
        turns = _turns[loop] = _Turns(loop)
    return turns.turn()


class _Reporting(_ContextBase):
    """``Context``'s progress and logging; its state is declared in ``_ContextBase``."""

    __slots__ = ()

    #: U-09 (rate-limit progress): a burst of this many progress notifications goes out at once ...
    PROGRESS_BURST = 10
    #: ... then at most this many per second per request; the reports in between are skipped (each
    #: later one supersedes them), except one that reaches ``total``, which always goes.
    PROGRESS_PER_SECOND = 10.0

    async def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """``notifications/progress`` for this request's progressToken; a no-op without one (U-06..U-08).

        A scheduling point, like ``log``: it always yields to the event loop once, so a handler
        that does nothing but report progress still lets the server answer other requests and
        health checks and notice a client that went away. When the client reads more slowly than
        the handler reports, the transport holds a bounded number of messages: the latest progress
        replaces older queued progress, other messages wait for room (docs/limits.md). A handler
        that reports more than ``PROGRESS_PER_SECOND`` times a second (after a burst of
        ``PROGRESS_BURST``) has the reports in between skipped (U-09): it costs the server a
        notification only when one can matter to the client.
        """
        token = self.request.progress_token
        last = self._progress_last
        # U-08: progress strictly increases; a stale value is dropped, not sent.
        if token is not None and (last is None or progress > last):
            self._progress_last = progress
            if self._progress_due(total is not None and progress >= total):
                params: dict[str, Any] = {"progressToken": token, "progress": progress}
                if total is not None:
                    params["total"] = total
                if message is not None and self.request.revision.progress_message:
                    params["message"] = message
                await self._outlet.notify("notifications/progress", params)
        await _turn()

    def _progress_due(self, last: bool) -> bool:
        """A token bucket of ``PROGRESS_BURST`` refilled at ``PROGRESS_PER_SECOND``."""
        now = time.monotonic()
        budget = min(float(self.PROGRESS_BURST), self._progress_budget + (now - self._progress_at) * self.PROGRESS_PER_SECOND)
        self._progress_at = now
        if budget >= 1.0 or last:
            self._progress_budget = max(0.0, budget - 1.0)
            return True
        self._progress_budget = budget
        return False

    async def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """``notifications/message`` at ``level``, if the client asked for that level (U-10, M-19).
        A scheduling point, as ``report_progress`` is."""
        if not isinstance(level, str) or level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {brief(level)}; one of {', '.join(LOG_LEVELS)}")
        floor = self.request.log_level
        if floor is not None and LOG_LEVELS[level] >= LOG_LEVELS[floor]:
            params: dict[str, Any] = {"level": level, "data": data}
            if logger is not None:
                params["logger"] = logger
            await self._outlet.notify("notifications/message", params)
        await _turn()

    async def debug(self, data: Any, logger: str | None = None) -> None:
        await self.log("debug", data, logger)

    async def info(self, data: Any, logger: str | None = None) -> None:
        await self.log("info", data, logger)

    async def warning(self, data: Any, logger: str | None = None) -> None:
        await self.log("warning", data, logger)

    async def error(self, data: Any, logger: str | None = None) -> None:
        await self.log("error", data, logger)
