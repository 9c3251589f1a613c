"""Regressions found by the fuzzers (tests/fuzz, make fuzz), each failing on 11def3e.

1. An unknown method of 70,000 characters was echoed whole in "Method not found" (J-07, bounded
   echo rule of issue 10).
2. A 2026-07-28 tools/call whose arguments nest deeper than orjson writes (254 levels) and whose tool
   asks a question: binding the MRTR requestState to the arguments raised TypeError, answered as an
   internal error (-32603) caused by client input; now -32602 (M-14..M-18).
3. (make fuzz, seed 206920, failing at 01cdce8) add(-2**63, -2**63) of a tool with an int result:
   the sum has no 64-bit JSON form, orjson refused the structured result and the call was answered
   -32603; now an isError result saying why (F-TOOL-05: a tool's failure is a result).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from anyport.runtime import StreamRuntime
from tests.interop.fixture_server import app

MODERN_META = b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{},"roots":{}}}'


class _Out:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def receive(self) -> bytes | None:
        return None

    async def aclose(self) -> None:
        pass


async def _answer(frame: bytes) -> tuple[dict[str, Any], int]:
    out = _Out()
    session = StreamRuntime(app, out)
    await session.feed(b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}')
    await session.feed(frame)
    for _ in range(50):
        if len(out.sent) >= 2:
            break
        await asyncio.sleep(0.01)
    await session.close()
    return orjson.loads(out.sent[1]), len(out.sent[1])


async def test_a_huge_unknown_method_is_not_echoed_whole_J07() -> None:
    reply, size = await _answer(b'{"jsonrpc":"2.0","id":2,"method":"' + b"v" * 70_000 + b'"}')
    assert reply["id"] == 2 and reply["error"]["code"] == -32601
    assert size < 512 and reply["error"]["message"].startswith("Method not found: vvv")


async def test_too_deep_arguments_of_a_tool_that_asks_are_32602_not_an_internal_error_M14() -> None:
    deep = b"[" * 600 + b"]" * 600
    for name in (b"ask_name", b"list_roots"):
        frame = b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"' + name + b'","arguments":{"x":' + deep + b"}," + MODERN_META + b"}}"
        reply, _ = await _answer(frame)
        assert reply["id"] == 3 and reply["error"]["code"] == -32602, reply
        assert "nested too deeply" in reply["error"]["message"]


async def test_a_result_beyond_64_bits_is_a_tool_error_not_an_internal_error() -> None:
    frame = b'{"jsonrpc":"2.0","id":10621123,"method":"tools/call","params":{"name":"add","arguments":{"a":-9223372036854775808,"b":-9223372036854775808}}}'
    reply, _ = await _answer(frame)
    assert reply["id"] == 10621123 and "error" not in reply
    assert reply["result"]["isError"] is True
    assert "cannot be sent as JSON" in reply["result"]["content"][0]["text"]
