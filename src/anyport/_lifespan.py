"""The ASGI lifespan protocol for apps that need no start-up or shutdown work of their own (the
metrics port, the probe exporter): both steps acknowledged, so any ASGI server runs them alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["acknowledge_lifespan"]


async def acknowledge_lifespan(receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
    """Answer ``lifespan.startup`` and ``lifespan.shutdown``; returns after the shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
