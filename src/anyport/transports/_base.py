"""What a transport is, to the runtimes above it: a stream of whole messages as bytes."""

from __future__ import annotations

from typing import Protocol

__all__ = ["MessageStream"]


class MessageStream(Protocol):
    """One bidirectional connection carrying framed JSON-RPC messages.

    ``receive`` returns the bytes of one message, or None once the peer has finished.
    ``send`` takes the bytes of one message (no framing). Transports know nothing of MCP.
    """

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes | None: ...

    async def aclose(self) -> None: ...
