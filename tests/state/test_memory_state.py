"""The in-memory state backends pass the contract checks a Redis backend will run too (DESIGN.md §6)."""

from __future__ import annotations

import asyncio

import pytest

from anyport.state import (
    MemoryBus,
    MemoryEventLog,
    MemorySessionStore,
    MemoryTaskStore,
    SessionRecord,
    format_event_id,
    parse_event_id,
)
from anyport.testing.state_contract import check_bus, check_event_log, check_session_store, check_task_store


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_memory_session_store_contract() -> None:
    await check_session_store(MemorySessionStore())


async def test_memory_event_log_contract() -> None:
    await check_event_log(MemoryEventLog())


async def test_memory_bus_contract() -> None:
    await check_bus(MemoryBus())


async def test_memory_task_store_contract() -> None:
    store = MemoryTaskStore()
    try:
        await check_task_store(store)
    finally:
        await store.aclose()


def test_event_ids() -> None:
    """T-HTTP-29: the stream is readable from the id."""
    assert format_event_id("pAbc", 3) == "pAbc:3"
    assert parse_event_id("pAbc:3") == ("pAbc", 3)
    assert parse_event_id(" pAbc:0 ") == ("pAbc", 0)
    for bad in ("", ":3", "pAbc:", "pAbc", "pAbc:-1", "pAbc:1e3", "pAbc:" + "9" * 40, "pAbc:٣"):
        assert parse_event_id(bad) is None, bad


async def test_session_store_ttl_and_capacity() -> None:
    clock = _Clock()
    store = MemorySessionStore(ttl=10, max_records=2, clock=clock)
    assert await store.create(SessionRecord("a", "2025-11-25"))
    assert await store.create(SessionRecord("b", "2025-11-25"))
    assert not await store.create(SessionRecord("c", "2025-11-25"))  # full
    clock.now = 8
    assert await store.get("a") is not None  # slides a's TTL
    clock.now = 15
    assert await store.get("b") is None  # idle 15 s > 10 s
    assert await store.create(SessionRecord("c", "2025-11-25"))
    with pytest.raises(ValueError):
        await store.create(SessionRecord("c", "2025-11-25"))
    await store.aclose()
    assert await store.count() == 0


async def test_event_log_trimming_expiry_and_stream_cap() -> None:
    clock = _Clock()
    log = MemoryEventLog(max_events=3, ttl=5, open_ttl=50, max_streams=2, clock=clock)
    s = await log.new_stream("S")
    ids = [await log.append("S", s, {"i": i}) for i in range(6)]
    r = await log.replay("S", ids[0])
    assert r is not None and [e.message for e in r.events] == [{"i": 3}, {"i": 4}, {"i": 5}]  # the oldest were trimmed
    ended = await log.new_stream("S")
    await log.end_stream("S", ended)
    third = await log.new_stream("S")  # at most 2 streams: the ended one goes first
    assert len(log) == 2 and await log.replay("S", ids[5]) is not None
    last = await log.append("S", third, None)
    clock.now = 20
    await log.new_stream("T")  # sweeps: nothing is idle past open_ttl yet
    assert await log.replay("S", last) is not None
    await log.end_stream("S", third)
    clock.now = 30
    await log.new_stream("T")  # the ended stream idle 10 s > ttl 5: swept
    assert await log.replay("S", last) is None
    clock.now = 200
    await log.new_stream("T")  # the open stream idle > open_ttl: swept
    assert await log.replay("S", ids[5]) is None


async def test_bus_buffer_limit_drops_instead_of_growing() -> None:
    bus = MemoryBus(limit=3)
    sub = await bus.subscribe("k")
    delivered = [await bus.publish("k", {"i": i}) for i in range(5)]
    assert delivered == [1, 1, 1, 0, 0]
    assert [(await asyncio.wait_for(sub.get(), 1))[1]["i"] for _ in range(3)] == [0, 1, 2]
    await bus.aclose()
    assert len(bus) == 0
