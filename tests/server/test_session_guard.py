"""A frame that trips a bug of ours is answered and costs no other frame (issue 10, build item 1).

The protocol core answers every client mistake by itself (tests/protocol, tests/fuzz); this is the
runtime's last line: an exception raised while handling one frame becomes -32603 with the id read
from the frame's head (J-08), and the next frame is served.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from anyport import Server
from anyport.runtime import StreamRuntime


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
    session = StreamRuntime(server, out)
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


async def test_scheduling_points_take_fair_turns_and_keep_loop_turns_short() -> None:
    """Issue 10, fair scheduling: 300 handlers that only pass ctx scheduling points. Between two turns
    of the event loop at most a bounded number of them run (the rest wait their turn, first come first
    served), so a turn stays short for everything else the loop does; and every handler progresses."""
    from anyport.server._reporting import _turn, _Turns

    steps = [0] * 300
    total = 0
    per_turn: list[int] = []
    stop = False

    async def handler(i: int) -> None:
        nonlocal total
        while not stop:
            await _turn()
            steps[i] += 1
            total += 1

    def each_turn(last: int = 0) -> None:
        per_turn.append(total - last)
        if not stop:
            asyncio.get_running_loop().call_soon(each_turn, total)

    tasks = [asyncio.get_running_loop().create_task(handler(i)) for i in range(300)]
    asyncio.get_running_loop().call_soon(each_turn)
    await asyncio.sleep(0.5)
    stop = True
    await asyncio.gather(*tasks)
    assert total > 10_000
    assert max(per_turn) <= 2 * _Turns.PER_TURN, max(per_turn)
    assert min(steps) > 0 and max(steps) <= 2 * min(steps) + 2, (min(steps), max(steps))
