"""RedisTaskStore (issue 12, durable tasks): the TaskStore contract on a real redis-server and on a
real 3-master Redis Cluster; replicas sharing records and waking each other's waits; no key left
behind after a delete or an expiry."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from anyport.state import RedisState, RedisTaskStore, TaskChange, TaskRecord
from anyport.testing.state_contract import check_task_store
from tests.redis_servers import RedisServer, redis_keys


def _prefix() -> str:
    return f"tk{secrets.token_hex(5)}"


async def _close(*states: RedisState) -> None:
    for st in states:
        await st.tasks.aclose()
        await st.aclose()


@pytest.fixture
async def state(server: RedisServer) -> AsyncIterator[RedisState]:
    st = RedisState.from_url(server.url, prefix=_prefix())
    try:
        yield st
    finally:
        await _close(st)


@pytest.fixture
async def cluster_state(cluster: list[RedisServer]) -> AsyncIterator[RedisState]:
    st = RedisState.from_url(f"{cluster[0].url}?cluster=1", prefix=_prefix())
    try:
        yield st
    finally:
        await _close(st)




async def test_task_store_contract(state: RedisState) -> None:
    assert isinstance(state.tasks, RedisTaskStore)
    await check_task_store(state.tasks)


async def test_cluster_passes_the_task_store_contract(cluster_state: RedisState) -> None:
    """The record and an owner's keys each sit in one slot: the scripts run on a real cluster."""
    await check_task_store(cluster_state.tasks)
    owner_keys = [cluster_state.key("alice", "tasks"), cluster_state.key("alice", "tasks", "n")]
    assert len({cluster_state.client.keyslot(k) for k in owner_keys}) == 1


async def test_every_key_of_the_contract_run_expires(state: RedisState) -> None:
    """Whatever the contract leaves behind carries a TTL: nothing stays in Redis forever."""
    await check_task_store(state.tasks)
    keys = await redis_keys(state)
    assert keys
    for key in keys:
        assert 0 < await state.client.pttl(key) <= 60_000, key


async def test_two_replicas_share_records_and_wake_each_other(server: RedisServer) -> None:
    """A wait on one replica returns as soon as another replica (another pool) updates the record."""
    prefix = _prefix()
    a, b = RedisState.from_url(server.url, prefix=prefix), RedisState.from_url(server.url, prefix=prefix)
    try:
        await a.tasks.create(TaskRecord(task_id="t", method="tools/call", owner="s1", ttl_ms=60_000))
        got = await b.tasks.get("t")
        assert got is not None and got.owner == "s1"
        for version in range(3):
            waiter = asyncio.ensure_future(b.tasks.wait("t", version, timeout=10))
            await asyncio.sleep(0.1)
            assert not waiter.done()
            started = time.monotonic()
            await a.tasks.update("t", TaskChange(status_message=f"step {version}"))
            woke = await asyncio.wait_for(waiter, 5)
            assert woke is not None and woke.version == version + 1 and woke.status_message == f"step {version}"
            assert time.monotonic() - started < 0.5  # pub/sub, not the 1 s poll
        page, cursor = await b.tasks.list("s1", None, 10)
        assert [r.task_id for r in page] == ["t"] and cursor is None
        waiter = asyncio.ensure_future(a.tasks.wait("t", 3, timeout=10))
        await asyncio.sleep(0.1)
        assert await b.tasks.delete("t")
        assert await asyncio.wait_for(waiter, 2) is None
    finally:
        await _close(a, b)


async def test_a_lost_notification_only_delays_a_wait(state: RedisState) -> None:
    """An update written behind the store's back (no PUBLISH) is still seen by the 1 s poll."""
    store = state.tasks
    await store.create(TaskRecord(task_id="quiet", method="tools/call", ttl_ms=60_000))
    waiter = asyncio.ensure_future(store.wait("quiet", 0, timeout=10))
    await asyncio.sleep(0.1)
    key = state.key("quiet", "task")
    raw = await state.client.get(key)
    await state.client.set(key, raw.replace(b'"version":0', b'"version":1'), keepttl=True)
    woke = await asyncio.wait_for(waiter, 3)
    assert woke is not None and woke.version == 1


async def test_waits_share_one_listener_which_stops_when_idle(state: RedisState) -> None:
    """One PSUBSCRIBE connection serves every wait; without waiters it ends within about a second,
    even while other tasks keep publishing."""
    store = state.tasks
    await store.create(TaskRecord(task_id="noise", method="tools/call", ttl_ms=60_000))
    for i in range(5):
        await store.create(TaskRecord(task_id=f"w{i}", method="tools/call", ttl_ms=60_000))
    waiters = [asyncio.ensure_future(store.wait(f"w{i}", 0, timeout=10)) for i in range(5)]
    await asyncio.sleep(0.2)
    clients = await state.client.client_list(_type="pubsub")
    assert len(clients) == 1  # one PSUBSCRIBE connection for all five waits
    for i in range(5):
        await store.update(f"w{i}", TaskChange(status="completed"))
    assert all(r is not None and r.status == "completed" for r in await asyncio.wait_for(asyncio.gather(*waiters), 3))
    for i in range(32):  # 1.6 s of notifications nobody waits for
        await store.update("noise", TaskChange(status_message=str(i)))
        await asyncio.sleep(0.05)
    assert await state.client.client_list(_type="pubsub") == []


async def test_a_deleted_task_leaves_no_key(state: RedisState) -> None:
    """delete removes the record, its list entry, and the owner's keys once it has no task left."""
    store = state.tasks
    await store.create(TaskRecord(task_id="a", method="tools/call", owner="s1", ttl_ms=60_000))
    await store.create(TaskRecord(task_id="b", method="tools/call", owner="s1"))  # no ttl_ms: the default expiry
    await store.create(TaskRecord(task_id="c", method="tools/call"))  # no owner
    assert len(await redis_keys(state)) == 3 + 2 + 2
    pttl = await state.client.pttl(state.key("b", "task"))
    assert 7 * 86_400_000 - 60_000 < pttl <= 7 * 86_400_000
    assert await state.client.pttl(state.key("s1", "tasks")) == pytest.approx(pttl, abs=60_000)
    await store.update("a", TaskChange(status="completed"))
    assert 0 < await state.client.pttl(state.key("a", "task")) <= 60_000  # an update keeps the TTL
    for task_id in ("a", "b", "c"):
        assert await store.delete(task_id)
    assert await redis_keys(state) == []


async def test_an_expired_task_leaves_no_key(state: RedisState) -> None:
    """TTL: the record, the owner's set and counter all expire with the last record."""
    store = state.tasks
    await store.create(TaskRecord(task_id="gone", method="tools/call", owner="s1", ttl_ms=400))
    await store.create(TaskRecord(task_id="also", method="tools/call", ttl_ms=300))
    assert len(await redis_keys(state)) == 2 + 2 + 2
    await asyncio.sleep(0.6)
    assert await store.get("gone") is None
    assert await redis_keys(state) == []


async def test_list_skips_and_removes_entries_of_expired_records(state: RedisState) -> None:
    store = state.tasks
    await store.create(TaskRecord(task_id="old", method="tools/call", owner="o", ttl_ms=200))
    for i in range(3):
        await store.create(TaskRecord(task_id=f"n{i}", method="tools/call", owner="o", ttl_ms=60_000))
    await asyncio.sleep(0.3)
    assert await state.client.zcard(state.key("o", "tasks")) == 4
    page, cursor = await store.list("o", None, 2)
    assert [r.task_id for r in page] == ["n0", "n1"] and cursor is not None
    page, cursor = await store.list("o", cursor, 2)
    assert [r.task_id for r in page] == ["n2"] and cursor is None
    assert await state.client.zcard(state.key("o", "tasks")) == 3


async def test_owners_that_cannot_be_hash_tags(cluster_state: RedisState) -> None:
    """Empty owners, braces and a leading ~ are encoded; None and "" stay apart."""
    store = cluster_state.tasks
    owners: list[str | None] = [None, "", "~", "a}b", "{x}", "~AA~", "}"]
    for i, owner in enumerate(owners):
        await store.create(TaskRecord(task_id=f"t{i}", method="tools/call", owner=owner, ttl_ms=60_000))
    for i, owner in enumerate(owners):
        page, cursor = await store.list(owner, None, 10)
        assert [r.task_id for r in page] == [f"t{i}"] and cursor is None, owner
    for i in range(len(owners)):
        assert await store.delete(f"t{i}")
    assert await redis_keys(cluster_state) == []


async def test_concurrent_updates_from_two_replicas_are_never_lost(server: RedisServer) -> None:
    prefix = _prefix()
    a, b = RedisState.from_url(server.url, prefix=prefix), RedisState.from_url(server.url, prefix=prefix)
    try:
        await a.tasks.create(TaskRecord(task_id="hot", method="tools/call", ttl_ms=60_000))
        n = 40
        await asyncio.gather(*(
            (a if i % 2 else b).tasks.update("hot", TaskChange(add_requests={f"k{i}": {"method": "m"}})) for i in range(n)
        ))
        rec = await a.tasks.get("hot")
        assert rec is not None and rec.version == n and len(rec.input_requests) == n
    finally:
        await _close(a, b)


async def test_a_lease_renewal_keeps_the_ttl_and_publishes_nothing(state: RedisState) -> None:
    """A renewal is one write that changes only the lease: the record's TTL stays, no version bump,
    no pub/sub message (a waiter on another replica is not woken), last_updated_at unchanged."""
    store = state.tasks
    await store.create(TaskRecord(task_id="leased", method="tools/call", ttl_ms=60_000, lease_until=time.time() + 1))
    before = await store.get("leased")
    assert before is not None
    pubsub = state.pubsub_client.pubsub()
    await pubsub.subscribe(f"{state.prefix}:task:leased")
    try:
        assert (await pubsub.get_message(timeout=1.0) or {}).get("type") == "subscribe"
        renewed_to = time.time() + 30
        rec = await store.update("leased", TaskChange(lease_until=renewed_to))
        assert rec is not None and rec.version == 0 and rec.lease_until == renewed_to
        assert await pubsub.get_message(timeout=0.3) is None  # nothing published
        stored = await store.get("leased")
        assert stored is not None and stored.lease_until == renewed_to and stored.last_updated_at == before.last_updated_at
        assert 50_000 < await state.client.pttl(state.key("leased", "task")) <= 60_000
        await store.update("leased", TaskChange(status_message="a real change"))
        msg = await pubsub.get_message(timeout=1.0)
        assert msg is not None and msg["data"] == b"1"
    finally:
        await pubsub.aclose()


async def test_failing_a_lapsed_lease_races_renewals_and_other_replicas(server: RedisServer) -> None:
    """Two replicas fail a task whose lease ran out at once, while its owner renews: either the renewal
    lands first (the task stays working) or the failure does (renewals after it are ignored); the task
    is failed at most once, and never both failed and renewed."""
    prefix = _prefix()
    a, b, owner = (RedisState.from_url(server.url, prefix=prefix) for _ in range(3))
    try:
        outcomes: set[str] = set()
        for round_ in range(10):
            task_id = f"race{round_}"
            await owner.tasks.create(TaskRecord(task_id=task_id, method="tools/call", ttl_ms=60_000, lease_until=time.time() - 0.01))
            now = time.time()
            fail = TaskChange(status="failed", status_message="lost", error={"code": -32603}, if_lease_expired_at=now)
            results = await asyncio.gather(
                a.tasks.update(task_id, fail), b.tasks.update(task_id, fail),
                owner.tasks.update(task_id, TaskChange(lease_until=now + 30)),
            )
            rec = await owner.tasks.get(task_id)
            assert rec is not None and all(r is not None for r in results)
            if rec.status == "failed":
                assert rec.version == 1 and rec.lease_until is None and rec.status_message == "lost"
            else:
                assert rec.status == "working" and rec.version == 0 and rec.lease_until == now + 30
            outcomes.add(rec.status)
        assert outcomes <= {"failed", "working"}
    finally:
        await _close(a, b, owner)
