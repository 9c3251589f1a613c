"""A frame that trips a bug of ours is answered and costs no other frame (issue 10, build item 1).

The protocol core answers every client mistake by itself (tests/protocol, tests/fuzz); this is the
runtime's last line: an exception raised while handling one frame becomes -32603 with the id read
from the frame's head (J-08), and the next frame is served.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from anyport import Server
from anyport.server._session import ServerSession


class _Out:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(orjson.loads(data))

    async def receive(self) -> bytes | None:
        return None

    async def aclose(self) -> None:
        pass


async def test_a_frame_that_raises_is_answered_with_its_id_and_the_next_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server("guard")

    @server.tool()
    def echo(text: str) -> str:
        return text

    out = _Out()
    session = ServerSession(server, out)
    real = server.inline_safe
    meta = b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'

    def flaky(req: Any) -> bool:
        if req.id == "x1":
            raise RuntimeError("a bug")
        return real(req)

    monkeypatch.setattr(server, "inline_safe", flaky)
    await session.feed(b'{"jsonrpc":"2.0","id":"x1","method":"tools/list","params":{' + meta + b"}}")
    await session.feed(b'{"jsonrpc":"2.0","id":2,"method":"ping"}')
    assert out.sent[0] == {"jsonrpc": "2.0", "id": "x1", "error": {"code": -32603, "message": "Internal error"}}
    assert out.sent[1] == {"jsonrpc": "2.0", "id": 2, "result": {}}
    await session.close()
