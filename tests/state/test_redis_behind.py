"""Streams stored behind their answers (``RedisEventLog.store_behind``, ``StoreBehind``): the answers
of concurrent requests stored by one command, resumable once stored (T-HTTP-27..31), never a key left
behind a DELETE, bounded, and quiet about failures (issue 12, the SSE benchmark target)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from anyport.state import RedisState, SessionRecord
from anyport.state._redis_behind import StoreBehind, WholeStream
from tests.redis_servers import RedisServer, redis_keys


@pytest.fixture
async def state(server: RedisServer, request: pytest.FixtureRequest) -> AsyncIterator[RedisState]:
    st = RedisState.from_url(server.url, prefix=f"b{abs(hash(request.node.name)) % 10**8}")
    try:
        yield st
    finally:
        await st.aclose()


async def _evalsha_calls(st: RedisState) -> int:
    stats = await st.client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def _answer(i: int) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": i, "result": {"content": [{"type": "text", "text": f"answer {i}"}]}}


async def _open(st: RedisState, sid: str) -> None:
    await st.sessions.create(SessionRecord(id=sid, version="2025-11-25"))


async def test_concurrent_answers_are_stored_by_one_command_and_replay(state: RedisState) -> None:
    """T-HTTP-27..31: every stream stored behind its answer replays from its priming event, with
    the ids the answer was sent with; 40 concurrent answers cost one script call, not 40."""
    ev = state.events
    sids = [f"S{i}" for i in range(40)]
    for sid in sids:
        await _open(state, sid)
    await ev.write_stream("warm", "w", [_answer(0)])  # Redis learns the script (NOSCRIPT, then EVALSHA)
    before = await _evalsha_calls(state)
    planned = []
    for i, sid in enumerate(sids):
        name, priming, ids = ev.plan_stream(1, prefix="p", priming=True)
        assert ev.store_behind(sid, name, [_answer(i)], priming=True) is None
        planned.append((sid, priming, ids))
    await ev.aclose()  # flushes
    assert await _evalsha_calls(state) - before == 1
    for i, (sid, priming, ids) in enumerate(planned):
        assert priming is not None
        replay = await ev.replay(sid, priming)
        assert replay is not None and replay.ended
        assert [(e.id, e.message) for e in replay.events] == [(ids[0], _answer(i))]


async def test_a_stream_stored_behind_a_deleted_session_leaves_no_key(state: RedisState) -> None:
    """DELETE (or expiry) that lands before the batch runs: the batch skips the session instead of
    making keys nobody will delete (issue 12: no key left after every session is gone)."""
    await _open(state, "gone")
    await _open(state, "kept")
    ev = state.events
    gone, _, _ = ev.plan_stream(1, priming=True)
    kept, kept_priming, _ = ev.plan_stream(1, priming=True)
    ev.store_behind("gone", gone, [_answer(1)], priming=True)
    ev.store_behind("kept", kept, [_answer(2)], priming=True)
    await state.sessions.delete("gone")
    await ev.drop_session("gone")
    await ev.aclose()
    keys = {k.decode() for k in await redis_keys(state)}
    assert not {k for k in keys if "{gone}" in k}
    assert kept_priming is not None and await ev.replay("kept", kept_priming) is not None


async def test_closing_the_state_stores_what_waits(server: RedisServer) -> None:
    """A replica that shuts down stores the streams still waiting behind their answers first."""
    a = RedisState.from_url(server.url, prefix="closing")
    await _open(a, "S")
    name, priming, _ = a.events.plan_stream(1, priming=True)
    a.events.store_behind("S", name, [_answer(7)], priming=True)
    await a.aclose()
    b = RedisState.from_url(server.url, prefix="closing")
    try:
        assert priming is not None
        replay = await b.events.replay("S", priming)
        assert replay is not None and [e.message for e in replay.events] == [_answer(7)]
    finally:
        await b.aclose()


async def test_the_cluster_stores_a_batch_across_slots(cluster: list[RedisServer]) -> None:
    """One script cannot span slots: on a cluster a batch goes as one call per stream, all resumable."""
    st = RedisState.from_url(f"{cluster[0].url}?cluster=1", prefix="cb")
    try:
        planned = []
        for i in range(12):
            sid = f"C{i}"
            await _open(st, sid)
            name, _, _ = st.events.plan_stream(1, priming=False)
            st.events.store_behind(sid, name, [_answer(i)])
            planned.append((sid, name))
        await st.events.aclose()
        slots = {st.client.keyslot(st.key(sid, "streams")) for sid, _ in planned}
        assert len(slots) > 1
        for sid, name in planned:
            replay = await st.events.replay(sid, f"{name}:0")
            assert replay is not None and replay.ended and replay.events == [], sid
    finally:
        await st.aclose()


async def test_past_the_limit_an_answer_waits_for_the_store() -> None:
    """Backpressure: with ``limit`` streams waiting, the next caller gets a future that completes
    only once the queue drained below the limit."""
    release = asyncio.Event()
    stored: list[int] = []

    async def store(batch: list[WholeStream]) -> None:
        await release.wait()
        stored.append(len(batch))

    behind = StoreBehind(store, delay=0.0, batch=2, limit=3)
    futures = [behind.add(WholeStream("s", f"n{i}", [b"{}"], False)) for i in range(5)]
    assert futures[:3] == [None, None, None]
    waiting = [f for f in futures[3:] if f is not None]
    assert len(waiting) == 2
    await asyncio.sleep(0.01)
    assert not any(f.done() for f in waiting)
    release.set()
    await asyncio.wait_for(asyncio.gather(*waiting), 2)
    await behind.flush()
    assert sum(stored) == 5 and max(stored) <= 2 and behind.pending == 0


async def test_a_failing_store_is_logged_once_per_quiet_period_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    """Redis down: the answers went out already; the lost resumability is logged, at most once per
    ``quiet`` seconds with a count, and nothing raises into the request path."""
    calls = 0

    async def store(batch: list[WholeStream]) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("Redis is down")

    behind = StoreBehind(store, delay=0.0, batch=1, quiet=60.0)
    with caplog.at_level(logging.WARNING, logger="anyport.state"):
        for i in range(3):
            assert behind.add(WholeStream("s", f"n{i}", [b"{}"], True)) is None
        started = time.monotonic()
        await behind.flush()
    assert calls == 3 and time.monotonic() - started < 5
    warnings = [r for r in caplog.records if "could not be stored" in r.getMessage()]
    assert len(warnings) == 1 and "Redis is down" in warnings[0].getMessage()
