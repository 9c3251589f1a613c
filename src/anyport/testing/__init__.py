"""Public test kit: connect a client to a server in this process, without subprocesses.

Example:
    from anyport.testing import connect

    async with connect(app) as client:
        result = await client.call_tool("add", {"a": 1, "b": 2})
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyport.client import Client
from anyport.server import Server
from anyport.transports.memory import MemoryStream, memory_pair

__all__ = ["MemoryStream", "connect", "memory_pair"]


@asynccontextmanager
async def connect(server: Server, **client_options: Any) -> AsyncIterator[Client]:
    """A connected ``Client`` for ``server`` over an in-memory pair (any era: ``era=``)."""
    async with Client(server, **client_options) as client:
        yield client
