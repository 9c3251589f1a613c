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
from typing import Any

from anyport.state import Bus, EventLog, SessionRecord, SessionStore, parse_event_id

__all__ = ["check_bus", "check_event_log", "check_session_store"]


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
