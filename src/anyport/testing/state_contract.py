"""Contract checks for ``anyport.state`` backends: every implementation must pass them.

```python
from anyport.state import MemoryEventLog
from anyport.testing.state_contract import check_event_log

async def test_my_event_log():
    await check_event_log(MemoryEventLog())      # or RedisEventLog(url=...)
```

Each check takes a fresh, empty backend, raises ``AssertionError`` on the first broken rule, and
uses only the Protocol (no backend internals), so a Redis backend runs the very same checks.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from anyport.state import (
    Bus,
    EventLog,
    SessionRecord,
    SessionStore,
    TaskChange,
    TaskRecord,
    TaskStore,
    parse_event_id,
)

__all__ = ["check_bus", "check_event_log", "check_session_store", "check_task_store"]


def _check(condition: object, message: str) -> None:
    if not condition:
        raise AssertionError(message)


async def check_session_store(store: SessionStore) -> None:
    """Records round-trip as plain data; get/put/delete; unknown ids are None/False."""
    rec = SessionRecord(
        id="s-1", version="2025-11-25", client_capabilities={"roots": {"listChanged": True}},
        client_info={"name": "c", "version": "1"}, log_level="info", initialized=True, subscriptions=["res://a"],
    )
    _check(await store.create(rec), "create of a new record failed")
    got = await store.get("s-1")
    _check(got == rec, f"the record did not round-trip: {got!r}")
    assert got is not None
    got.client_capabilities["sampling"] = {}  # a copy: the stored record does not change
    again = await store.get("s-1")
    _check(again == rec, "get returned a live reference instead of a copy")
    rec.log_level = "error"
    rec.subscriptions.append("res://b")
    _check(await store.put(rec), "put of an existing record failed")
    again = await store.get("s-1")
    _check(again is not None and again.log_level == "error" and again.subscriptions == ["res://a", "res://b"], "put was lost")
    _check(await store.get("nope") is None, "an unknown id must give None")
    _check(not await store.put(SessionRecord(id="nope", version=None)), "put of an unknown record must be False")
    _check(await store.count() >= 1, "count must include the record")
    _check(await store.delete("s-1"), "delete of an existing record must be True")
    _check(await store.get("s-1") is None, "a deleted record must be gone")
    _check(not await store.delete("s-1"), "a second delete must be False")
    _check(SessionRecord.from_dict(rec.to_dict()) == rec, "to_dict/from_dict must round-trip")


async def check_event_log(log: EventLog) -> None:
    """Ids ``<stream>:<seq>``, unique across streams; replay after an id of the same stream only,
    never across streams or sessions; end flags; dropping a session."""
    a1 = await log.new_stream("A", prefix="p")
    a2 = await log.new_stream("A", prefix="g")
    b1 = await log.new_stream("B", prefix="p")
    _check(a1 != a2 and a1.startswith("p") and a2.startswith("g"), "stream ids must be fresh and carry the prefix")
    _check(":" not in a1 + a2 + b1, "stream ids must not contain ':'")
    prime = await log.append("A", a1, None)
    m = [{"jsonrpc": "2.0", "method": "n", "params": {"i": i}} for i in range(4)]
    e1 = await log.append("A", a1, m[0])
    f1 = await log.append("A", a2, m[1])
    e2 = await log.append("A", a1, m[2])
    g1 = await log.append("B", b1, m[3])
    ids = [prime, e1, f1, e2, g1]
    _check(len(set(ids)) == len(ids), f"event ids must be unique across streams: {ids}")
    for event_id, stream in zip(ids, [a1, a1, a2, a1, b1], strict=True):
        parsed = parse_event_id(event_id)
        _check(parsed is not None and parsed[0] == stream, f"{event_id!r} must name its stream {stream!r}")
    r = await log.replay("A", prime)
    _check(r is not None and r.stream_id == a1, "replay after the priming id must find stream a1")
    assert r is not None
    _check([e.id for e in r.events] == [e1, e2] and [e.message for e in r.events] == [m[0], m[2]], f"replay of a1: {r.events}")
    _check(not r.ended, "a1 has not ended")
    r = await log.replay("A", e2)
    _check(r is not None and r.events == [], "nothing follows the last event")
    r = await log.replay("A", f1)
    _check(r is not None and r.events == [] and r.stream_id == a2, "replay never crosses into another stream")
    _check(await log.replay("B", e1) is None, "an id of session A must find nothing in session B")
    _check(await log.replay("A", g1) is None, "an id of session B must find nothing in session A")
    for bogus in ("", "garbage", f"{a1}:99", f"{a1}:-1", "nostream:0", f"{a1}:x"):
        _check(await log.replay("A", bogus) is None, f"{bogus!r} must find nothing")
    await log.end_stream("A", a1)
    r = await log.replay("A", e1)
    _check(r is not None and r.ended and [e.id for e in r.events] == [e2], "an ended stream still replays")
    await log.drop_session("A")
    _check(await log.replay("A", e1) is None and await log.replay("A", f1) is None, "a dropped session has no events")
    _check(await log.replay("B", g1) is not None, "dropping A must leave B alone")
    try:
        await log.append("A", a1, m[0])
    except KeyError:
        pass
    else:
        raise AssertionError("append to a stream of a dropped session must raise KeyError")


async def check_bus(bus: Bus) -> None:
    """Publish reaches current subscribers of the key only, in order, as copies; counts; aclose."""

    async def get(sub: Any) -> tuple[str, dict[str, Any]]:
        result: tuple[str, dict[str, Any]] = await asyncio.wait_for(sub.get(), 2.0)
        return result

    _check(await bus.publish("k", {"x": 0}) == 0, "nobody subscribed: 0 receivers")
    one = await bus.subscribe("k")
    both = await bus.subscribe("k", "other")
    _check(await bus.publish("k", {"x": 1}) == 2, "two subscribers of k")
    _check(await bus.publish("other", {"x": 2}) == 1, "one subscriber of other")
    _check(await bus.publish("unrelated", {"x": 3}) == 0, "nobody on unrelated")
    _check(await get(one) == ("k", {"x": 1}), "one gets k's message")
    _check(await get(both) == ("k", {"x": 1}), "both gets k's message first")
    _check(await get(both) == ("other", {"x": 2}), "both gets other's message in order")
    for i in range(5):
        await bus.publish("k", {"i": i})
    _check([(await get(one))[1]["i"] for _ in range(5)] == list(range(5)), "messages arrive in order")
    await one.aclose()
    _check(await bus.publish("k", {"x": 4}) == 1, "a closed subscription no longer counts")
    try:
        await asyncio.wait_for(one.get(), 2.0)
    except EOFError:
        pass
    else:
        raise AssertionError("get on a closed subscription must raise EOFError")
    for _ in range(5):
        await get(both)
    _check(await get(both) == ("k", {"x": 4}), "the other subscription still receives")
    await both.aclose()
    _check(await bus.publish("k", {}) == 0 and await bus.publish("other", {}) == 0, "every subscription closed")


async def check_task_store(store: TaskStore) -> None:
    """The ``TaskStore`` rules (F-TASK-01/02, SEP-2663): durable create, copies in and out, atomic
    updates that bump the version only on a change, terminal statuses final, answers only for
    outstanding keys, leases (a renewal is stored without a version bump or a wake-up, a change
    conditional on a lease that ran out applies only then, a terminal record holds no lease),
    ``wait`` woken by another coroutine or returning the record as-is at its timeout, ``list`` per
    owner oldest first with a paging cursor, delete, unknown ids, TTL expiry.
    Takes about one second (short timeouts and TTLs)."""
    run = secrets.token_hex(4)  # ids and owners of this run only

    def tid(name: str) -> str:
        return f"{name}-{run}"

    async def got(task_id: str) -> TaskRecord:
        rec = await store.get(task_id)
        _check(rec is not None, f"task {task_id!r} must exist")
        assert rec is not None
        return rec

    # Started first, checked last: lives ttl_ms after creation (not less), then is gone.
    short = TaskRecord(task_id=tid("short"), method="tools/call", owner=tid("ttl-owner"), ttl_ms=300)
    short_created = time.monotonic()
    await store.create(short)
    _check(await store.get(short.task_id) is not None, "a record must not expire before its ttl_ms")
    page, _ = await store.list(short.owner, None, 10)
    _check([p.task_id for p in page] == [short.task_id], "a record is listed within its ttl_ms")

    # -- create, get, copies ----------------------------------------------------------------------------
    rec = TaskRecord(
        task_id=tid("t1"), method="tools/call", status_message="starting", ttl_ms=60_000, poll_interval_ms=250,
        owner=tid("alice"), lease_until=time.time() + 600,
    )
    await store.create(rec)
    first = await got(rec.task_id)  # durable create: readable right away
    _check(first == rec, f"the record did not round-trip: {first!r} != {rec!r}")
    _check(first.version == 0 and first.status == "working", "a new record is working at version 0")
    try:
        await store.create(TaskRecord(task_id=rec.task_id, method="tools/call"))
    except ValueError:
        pass
    else:
        raise AssertionError("creating a task id that exists must raise ValueError")
    _check(await got(rec.task_id) == rec, "a refused create must leave the record alone")
    rec.status_message = "changed after create"
    rec.input_requests["x"] = {"method": "m"}
    first.responses["y"] = 1
    first.status = "failed"
    again = await got(rec.task_id)
    _check(
        again.status == "working" and again.status_message == "starting" and not again.input_requests
        and not again.responses, "create and get must copy the record, never keep or hand out a live reference",
    )

    # -- update: atomic, version bumps only on a change, answers only for outstanding keys ----------------
    t = rec.task_id
    r = await store.update(t, TaskChange(status="input_required", add_requests={"a": {"method": "m"}, "b": {"method": "m"}}))
    _check(r is not None and r.version == 1 and r.status == "input_required", f"update must apply and bump: {r!r}")
    assert r is not None
    _check(r.last_updated_at >= r.created_at, "last_updated_at must not precede created_at")
    r.input_requests.clear()
    _check(set((await got(t)).input_requests) == {"a", "b"}, "update must return a copy")
    r = await store.update(t, TaskChange(answers={"zzz": 1}, consume=("nothing",)))
    _check(r is not None and r.version == 1, "an update that changes nothing must not bump the version")
    r = await store.update(t, TaskChange(answers={"a": {"x": 1}, "zzz": 2}))
    _check(
        r is not None and r.version == 2 and set(r.input_requests) == {"b"} and r.responses == {"a": {"x": 1}},
        f"only answers for outstanding keys are taken: {r!r}",
    )
    r = await store.update(t, TaskChange(answers={"a": "again"}))
    _check(r is not None and r.version == 2 and r.responses == {"a": {"x": 1}}, "an answered key is no longer outstanding")
    r = await store.update(t, TaskChange(consume=("a",), resume=True))
    _check(
        r is not None and r.version == 3 and r.responses == {} and r.status == "input_required",
        "consume takes the answer; resume waits while a request is outstanding",
    )
    await store.update(t, TaskChange(answers={"b": 2}))
    r = await store.update(t, TaskChange(consume=("b",), resume=True))
    _check(r is not None and r.version == 5 and r.status == "working" and not r.responses, f"resume -> working: {r!r}")
    try:
        await store.update(t, TaskChange(status="bogus"))
    except ValueError:
        pass
    else:
        raise AssertionError("an unknown status must raise ValueError")
    _check((await got(t)).version == 5, "a refused update must change nothing")

    n = 20  # concurrent writers: no update may be lost
    results = await asyncio.gather(*(store.update(t, TaskChange(add_requests={f"k{i}": {"method": "m"}})) for i in range(n)))
    _check(all(x is not None for x in results), "concurrent updates must all apply")
    after = await got(t)
    _check(
        set(after.input_requests) == {f"k{i}" for i in range(n)} and after.version == 5 + n,
        f"concurrent updates must each apply atomically (version {after.version}, {len(after.input_requests)} keys)",
    )
    _check(sorted(x.version for x in results if x is not None) == list(range(6, 6 + n)), "each update sees its own version")

    # -- leases ------------------------------------------------------------------------------------------------
    renewed_to = time.time() + 900
    r = await store.update(t, TaskChange(lease_until=renewed_to))
    _check(
        r is not None and r.lease_until == renewed_to and r.version == after.version
        and r.last_updated_at == after.last_updated_at,
        f"a lease renewal is stored without a version bump or a new last_updated_at: {r!r}",
    )
    _check((await got(t)).lease_until == renewed_to, "a lease renewal must be stored")
    r = await store.update(t, TaskChange(status="failed", error={"code": 1}, if_lease_expired_at=time.time()))
    _check(
        r is not None and r.status == "working" and r.version == after.version and r.error is None,
        f"a change conditional on a lease that ran out must not apply while the lease holds: {r!r}",
    )
    lapsed, unleased = tid("lapsed"), tid("unleased")
    await store.create(TaskRecord(task_id=lapsed, method="tools/call", ttl_ms=60_000, lease_until=time.time() - 1))
    await store.create(TaskRecord(task_id=unleased, method="tools/call", ttl_ms=60_000))
    lost = TaskChange(status="failed", status_message="lost", error={"code": -32603}, if_lease_expired_at=time.time())
    r = await store.update(unleased, lost)
    _check(r is not None and r.status == "working" and r.version == 0, f"a record without a lease has none to run out: {r!r}")
    results = await asyncio.gather(*(store.update(lapsed, lost) for _ in range(3)))
    r = await got(lapsed)
    _check(
        r.status == "failed" and r.status_message == "lost" and r.error == {"code": -32603} and r.version == 1
        and r.lease_until is None and all(x is not None and x.status == "failed" for x in results),
        f"a change conditional on a lease that ran out applies once, and a terminal record holds no lease: {r!r}",
    )
    for leased in (lapsed, unleased):
        await store.delete(leased)

    # -- terminal statuses are final ------------------------------------------------------------------------
    r = await store.update(t, TaskChange(status="completed", result={"content": [{"type": "text", "text": "ok"}]}))
    _check(r is not None and r.status == "completed" and r.terminal and not r.input_requests, "completion clears requests")
    assert r is not None
    done = r.version
    for change in (
        TaskChange(status="working"), TaskChange(status="failed", error={"code": 1}), TaskChange(result={"other": 1}),
        TaskChange(add_requests={"late": {"method": "m"}}), TaskChange(answers={"k1": 1}), TaskChange(status="bogus"),
        TaskChange(lease_until=time.time() + 60),
        TaskChange(status="failed", error={"code": 1}, if_lease_expired_at=time.time() + 10_000),
    ):
        r = await store.update(t, change)
        _check(
            r is not None and r.status == "completed" and r.version == done and r.result == {"content": [{"type": "text", "text": "ok"}]}
            and r.error is None and not r.input_requests and r.lease_until is None,
            f"a terminal status is final (and holds no lease): {change!r} gave {r!r}",
        )

    # -- wait -----------------------------------------------------------------------------------------------
    w = tid("w")
    await store.create(TaskRecord(task_id=w, method="tools/call", ttl_ms=60_000))
    started = time.monotonic()
    r = await asyncio.wait_for(store.wait(w, -1, timeout=5), 2)
    _check(r is not None and r.version == 0 and time.monotonic() - started < 0.5, "wait returns at once when the version is past")
    started = time.monotonic()
    timed = asyncio.ensure_future(store.wait(w, 0, timeout=0.3))
    await asyncio.sleep(0.05)
    await store.update(w, TaskChange(answers={"nothing": 1}))  # no change: must not end the wait
    await store.update(w, TaskChange(lease_until=time.time() + 60))  # a renewal must not either
    r = await asyncio.wait_for(timed, 3)
    elapsed = time.monotonic() - started
    _check(r is not None and r.version == 0 and r.task_id == w, f"at its timeout wait returns the record as it is: {r!r}")
    _check(0.25 <= elapsed < 1.5, f"wait(timeout=0.3) took {elapsed:.2f} s")
    started = time.monotonic()
    woken = asyncio.ensure_future(store.wait(w, 0, timeout=10))
    await asyncio.sleep(0.1)
    _check(not woken.done(), "wait must block while the version has not passed")
    await store.update(w, TaskChange(status_message="progress"))
    r = await asyncio.wait_for(woken, 3)
    elapsed = time.monotonic() - started
    _check(r is not None and r.version == 1 and r.status_message == "progress", f"wait must return the updated record: {r!r}")
    _check(elapsed < 0.8, f"an update must wake wait early (took {elapsed:.2f} s)")
    gone = asyncio.ensure_future(store.wait(w, 1, timeout=10))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    _check(await store.delete(w), "delete of an existing record must be True")
    r = await asyncio.wait_for(gone, 3)
    _check(r is None and time.monotonic() - started < 0.8, "a delete must end a wait with None")

    # -- list by owner ----------------------------------------------------------------------------------------
    owner_a, owner_b = tid("owner-a"), tid("owner-b")
    mine: list[str] = []
    for i in range(7):
        task_id = tid(f"l{i}")
        owner = owner_a if i % 3 != 1 else owner_b
        await store.create(TaskRecord(task_id=task_id, method="tools/call", owner=owner, ttl_ms=60_000))
        if owner == owner_a:
            mine.append(task_id)
    await store.create(TaskRecord(task_id=tid("nobody"), method="tools/call", ttl_ms=60_000))
    _check(await store.delete(mine[2]), "delete of a listed record must be True")
    listed = mine[:2] + mine[3:]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page, cursor = await store.list(owner_a, cursor, 2)
        _check(len(page) <= 2, "a page holds at most limit records")
        _check(all(p.owner == owner_a for p in page), "list returns the owner's records only")
        seen += [p.task_id for p in page]
        if page:
            page[0].status = "failed"  # copies
        if cursor is None:
            break
        _check(isinstance(cursor, str) and len(page) == 2, "a cursor only after a full page")
    _check(seen == listed, f"list pages through the owner's records oldest first: {seen} != {listed}")
    _check([(await got(x)).status for x in listed] == ["working"] * len(listed), "list must return copies")
    page, cursor = await store.list(owner_a, None, 100)
    _check([p.task_id for p in page] == listed and cursor is None, "one page when limit covers all, and no cursor")
    page, cursor = await store.list(owner_b, None, 100)
    _check([p.task_id for p in page] == [tid("l1"), tid("l4")] and cursor is None, "list separates owners")
    page, cursor = await store.list(None, None, 100)
    _check([p.task_id for p in page] == [tid("nobody")] and cursor is None, f"owner None lists unowned records: {page}")
    page, cursor = await store.list(tid("stranger"), None, 10)
    _check(page == [] and cursor is None, "an owner without records lists nothing")
    for bad in ("garbage!", "", "eDE", "dC0x", "dHg", "%%%"):
        try:
            await store.list(owner_a, bad, 2)
        except ValueError:
            pass
        else:
            raise AssertionError(f"a bad cursor {bad!r} must raise ValueError")

    # -- delete and unknown ids ------------------------------------------------------------------------------
    _check(await store.get(mine[2]) is None, "a deleted record is gone")
    _check(not await store.delete(mine[2]), "a second delete must be False")
    for unknown in (mine[2], tid("never")):
        _check(await store.get(unknown) is None, "get of an unknown id must be None")
        _check(await store.update(unknown, TaskChange(status="completed")) is None, "update of an unknown id must be None")
        _check(await store.wait(unknown, 0, timeout=1) is None, "wait on an unknown id must be None")
        _check(not await store.delete(unknown), "delete of an unknown id must be False")

    # -- TTL ---------------------------------------------------------------------------------------------------
    await asyncio.sleep(max(0.0, short_created + 0.3 + 0.15 - time.monotonic()))
    _check(await store.get(short.task_id) is None, "a record must be gone after its ttl_ms")
    _check(await store.update(short.task_id, TaskChange(status="completed")) is None, "an expired record cannot be updated")
    page, _ = await store.list(short.owner, None, 10)
    _check(page == [], "an expired record is not listed")
