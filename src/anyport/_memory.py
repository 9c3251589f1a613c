"""Giving memory back to the operating system after many objects were freed at once.

CPython frees an object's memory as soon as it is unreferenced, but the C allocator keeps freed
pages for reuse: after thousands of sessions end, the process stays as big as it was at its peak.
``trim_heap`` asks glibc to return the free pages of its heap (``malloc_trim``); elsewhere it does
nothing. Callers run it rarely, after a mass release: it walks the heap (about a millisecond for a
heap of some tens of MiB).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["prepare", "trim_heap"]

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
    """Free what only the cycle collector can free, then return the C heap's free pages to the OS;
    False where the C library cannot.

    Cycles first: a cancelled handler leaves its exception, traceback and frames in a cycle, and the
    collector runs only as objects are allocated, so after the last client left it may never run.
    """
    gc.collect()
    trim = _lookup()
    if trim is None:
        return False
    trim(0)
    return True
