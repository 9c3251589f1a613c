"""Giving memory back to the operating system after many objects were freed at once.

CPython frees an object's memory as soon as it is unreferenced, but the C allocator keeps freed
pages for reuse: after thousands of sessions end, the process stays as big as it was at its peak.
``trim_heap`` asks glibc to return the free pages of its heap (``malloc_trim``); elsewhere it does
nothing. Callers run it rarely, after a mass release: it walks the heap (about a millisecond for a
heap of some tens of MiB).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["Releaser", "prepare", "trim_heap"]

#: Give memory back after this many things ended, or when the last one did after at least
#: ``RELEASE_MIN`` (a burst, not a quiet server's every request), this much later.
RELEASE_AFTER = 256
RELEASE_MIN = 32
RELEASE_DELAY = 0.5

_trim: Callable[[int], Any] | None = None
_looked_up = False


def prepare() -> None:
    """Load what ``trim_heap`` needs (ctypes and the C library's symbol: some hundreds of KiB and a
    few milliseconds) now, so that giving memory back later does not itself take memory."""
    _lookup()


def _lookup() -> Callable[[int], Any] | None:
    global _trim, _looked_up
    if not _looked_up:
        _looked_up = True
        if sys.platform.startswith("linux"):
            import ctypes

            try:
                _trim = ctypes.CDLL(None).malloc_trim  # glibc only (not musl)
            except (AttributeError, OSError):
                _trim = None
    return _trim


def trim_heap() -> bool:
    """Return the C heap's free pages to the OS; False where the C library cannot.

    No ``gc.collect()`` here: on a large heap it pauses the loop for tens of milliseconds, and the
    soak showed no RSS it would give back (the transports break their own cycles on close).
    """
    trim = _lookup()
    if trim is None:
        return False
    trim(0)
    return True


class Releaser:
    """Runs ``release`` (which ends with ``trim_heap``) after a mass end: once ``RELEASE_AFTER``
    things of one kind ended (sessions, connections, handlers), or when the last one did after a
    burst of at least ``RELEASE_MIN``; ``RELEASE_DELAY`` seconds later, so a burst ending is one
    release, not one per thing."""

    __slots__ = ("_ended", "_release", "_timer")

    def __init__(self, release: Callable[[], Any]) -> None:
        self._release = release
        self._ended = 0
        self._timer: asyncio.TimerHandle | None = None

    def ended(self, *, last: bool) -> None:
        """One thing ended; ``last``: none of its kind is left."""
        self._ended += 1
        if self._timer is None and (self._ended >= RELEASE_AFTER or (last and self._ended >= RELEASE_MIN)):
            with contextlib.suppress(RuntimeError):  # no running loop (a synchronous close)
                self._timer = asyncio.get_running_loop().call_later(RELEASE_DELAY, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._ended = 0
        self._release()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
