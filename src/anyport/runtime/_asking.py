"""Waiting for the peer's answer to a request we sent, once for every runtime.

A server asks its client (``elicitation/create``, ``sampling/createMessage``, ``roots/list``) over
stdio, HTTP+SSE or a Streamable HTTP POST stream; a client asks its server. Either way the answer
may not come: after ``timeout`` seconds, or when the asking task is cancelled, the request is
abandoned (``abandon`` is told why, and sends ``notifications/cancelled`` where it may, U-02) and
the caller gets ``RequestTimeoutError`` or its cancellation.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from anyport._exceptions import RequestTimeoutError

__all__ = ["TIMED_OUT", "CANCELLED", "await_answer"]

#: The ``reason`` of the ``notifications/cancelled`` a server sends for a request it gave up on.
TIMED_OUT = "timed out"
CANCELLED = "cancelled"


async def await_answer(
    fut: asyncio.Future[Any],
    timeout: float | None,
    *,
    abandon: Callable[[str], Awaitable[None] | None],
    timed_out: str,
    reasons: tuple[str, str] = (TIMED_OUT, CANCELLED),
) -> Any:
    """The result ``fut`` gets (or the error it is set to). ``timed_out`` is the message of the
    ``RequestTimeoutError``; ``reasons`` are what ``abandon`` hears on a timeout and on a cancellation."""
    try:
        return await asyncio.wait_for(fut, timeout)
    except TimeoutError as exc:
        done = abandon(reasons[0])
        if inspect.isawaitable(done):
            await done
        raise RequestTimeoutError(timed_out) from exc
    except asyncio.CancelledError:
        done = abandon(reasons[1])
        if inspect.isawaitable(done):
            await done
        raise
