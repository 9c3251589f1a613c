"""The Redis backends pass the same contract checks as the in-memory ones, against a real
redis-server and a real 3-master Redis Cluster started here (DESIGN.md §6, issue 12)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from anyport.state import RedisState, SessionRecord
from anyport.testing.state_contract import check_bus, check_event_log, check_session_store
from tests.redis_servers import RedisServer, redis_keys


@pytest.fixture
async def state(server: RedisServer, request: pytest.FixtureRequest) -> AsyncIterator[RedisState]:
    st = RedisState.from_url(server.url, prefix=f"t{abs(hash(request.node.name)) % 10**8}")
    try:
        yield st
    finally:
        await st.aclose()


@pytest.fixture
async def cluster_state(cluster: list[RedisServer], request: pytest.FixtureRequest) -> AsyncIterator[RedisState]:
    st = RedisState.from_url(f"{cluster[0].url}?cluster=1", prefix=f"c{abs(hash(request.node.name)) % 10**8}")
    try:
        yield st
    finally:
        await st.aclose()




async def test_session_store_contract(state: RedisState) -> None:
    await check_session_store(state.sessions)


async def test_event_log_contract(state: RedisState) -> None:
    await check_event_log(state.events)


async def test_bus_contract(state: RedisState) -> None:
    await check_bus(state.bus)


async def test_cluster_passes_the_same_contracts(cluster_state: RedisState) -> None:
    """Every key of a session shares its hash tag: the multi-key scripts run on a real cluster."""
    await check_session_store(cluster_state.sessions)
    await check_event_log(cluster_state.events)
    await check_bus(cluster_state.bus)
    slots = {cluster_state.client.keyslot(k) for k in (cluster_state.key("A", "rec"), cluster_state.key("A", "streams"), cluster_state.key("A", "e", "x"))}
    assert len(slots) == 1


async def test_two_replicas_share_sessions_events_and_the_bus(server: RedisServer) -> None:
    """What one process writes, another process's RedisState (another connection pool) reads."""
    a, b = RedisState.from_url(server.url, prefix="shared"), RedisState.from_url(server.url, prefix="shared")
    try:
        rec = SessionRecord(id="s1", version="2025-11-25", initialized=True)
        assert await a.sessions.create(rec)
        assert await b.sessions.get("s1") == rec
        stream = await a.events.new_stream("s1", prefix="p")
        first = await a.events.append("s1", stream, None)
        second = await a.events.append("s1", stream, {"jsonrpc": "2.0", "method": "x"})
        replay = await b.events.replay("s1", first)
        assert replay is not None and [e.id for e in replay.events] == [second]
        sub = await b.bus.subscribe("session:s1")
        assert await a.bus.publish("session:s1", {"n": 1}) == 1
        assert await asyncio.wait_for(sub.get(), 2) == ("session:s1", {"n": 1})
        await sub.aclose()
    finally:
        await a.aclose()
        await b.aclose()


async def test_records_slide_and_expire(server: RedisServer) -> None:
    """The record's TTL slides on every read and the record is gone after it (T-HTTP-39)."""
    st = RedisState.from_url(server.url, prefix="ttl", session_ttl=1)
    try:
        await st.sessions.create(SessionRecord(id="s", version="2025-06-18"))
        for _ in range(3):
            await asyncio.sleep(0.5)
            assert await st.sessions.get("s") is not None  # each read gives it another second
        await asyncio.sleep(1.6)
        assert await st.sessions.get("s") is None
        assert await redis_keys(st) == []
    finally:
        await st.aclose()


async def test_a_dropped_session_leaves_no_key(state: RedisState) -> None:
    """DELETE: every key of the session goes (issue 12: a keyspace scan finds nothing of it)."""
    await state.sessions.create(SessionRecord(id="gone", version="2025-11-25"))
    for prefix in ("p", "g"):
        stream = await state.events.new_stream("gone", prefix=prefix)
        await state.events.append("gone", stream, None)
        await state.events.append("gone", stream, {"jsonrpc": "2.0", "method": "m"})
        await state.events.end_stream("gone", stream)
    assert len(await redis_keys(state)) >= 5
    await state.sessions.delete("gone")
    await state.events.drop_session("gone")
    assert await redis_keys(state) == []
    await state.events.end_stream("gone", "pnothing")  # ending a stream that is gone creates nothing
    assert await redis_keys(state) == []


async def test_streams_and_events_are_bounded(server: RedisServer) -> None:
    st = RedisState.from_url(server.url, prefix="bounded", max_events=5, max_streams=3)
    try:
        streams = [await st.events.new_stream("s", prefix="p") for _ in range(5)]
        ids = [await st.events.append("s", streams[-1], {"i": i}) for i in range(20)]
        replay = await st.events.replay("s", ids[10])
        assert replay is not None and [e.message for e in replay.events] == [{"i": i} for i in range(15, 20)]
        for old in streams[:2]:  # the two oldest streams were dropped to keep three
            with pytest.raises(KeyError):
                await st.events.append("s", old, None)
        assert await st.client.zcard(st.key("s", "streams")) == 3
    finally:
        await st.aclose()


def test_bad_urls_and_prefixes_are_refused() -> None:
    with pytest.raises(ValueError, match="not a Redis URL"):
        RedisState.from_url("http://127.0.0.1:6379")
    with pytest.raises(ValueError, match="prefix"):
        RedisState.from_url("redis://127.0.0.1:1/0", prefix="a{b}")


async def test_an_unreachable_redis_is_a_clear_error() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from tests.redis_servers import free_port

    st = RedisState.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(RedisConnectionError):
            await st.ping()
    finally:
        await st.aclose()


async def test_a_whole_stream_logged_at_once_replays_like_one_logged_event_by_event(state: RedisState) -> None:
    """log_stream (one round trip for an answer written in one piece) leaves what new_stream +
    append + end_stream leave: the same ids, replays and end flag (T-HTTP-27..31)."""
    messages = [{"jsonrpc": "2.0", "method": "n", "params": {"i": i}} for i in range(3)]
    stream, priming, ids = await state.events.log_stream("S", messages, prefix="p", priming=True)
    assert stream.startswith("p") and priming == f"{stream}:0" and ids == [f"{stream}:{i}" for i in (1, 2, 3)]
    replay = await state.events.replay("S", priming)
    assert replay is not None and replay.ended and [e.id for e in replay.events] == ids
    assert [e.message for e in replay.events] == messages
    plain, none, plain_ids = await state.events.log_stream("S", messages[:1], prefix="p")
    assert none is None and plain_ids == [f"{plain}:0"]
    replay = await state.events.replay("S", f"{stream}:1")
    assert replay is not None and [e.id for e in replay.events] == ids[1:]
