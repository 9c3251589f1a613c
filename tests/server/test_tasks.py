"""Tasks: 2025-11-25 core tasks (F-TASK-01/02) and the 2026-07-28 tasks extension (SEP-2663),
in process (memory pairs) and over a real stdio subprocess."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from anyport import JSONRPCError, Server
from anyport.protocol import META_RELATED_TASK, TASKS_EXTENSION_ID
from anyport.runtime._hub import NotificationHub
from anyport.server._tasks import DEFAULT_LEASE_SECONDS, LEASE_ENV, LEASE_LOST, TaskRunner
from anyport.state import MemoryTaskStore, TaskChange, TaskRecord, TaskStore
from anyport.testing import connect
from anyport.transports.stdio import StdioClientStream

from ._raw import RawPeer, raw
from ._task_fixture import build_app

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
ROOT = Path(__file__).resolve().parents[2]


# -- the store -----------------------------------------------------------------------------------------


async def test_store_terminal_is_final_and_wait_wakes() -> None:
    """F-TASK-02: terminal states are final; every change bumps the version and wakes waiters."""
    store = MemoryTaskStore()
    await store.create(TaskRecord(task_id="t1", method="tools/call", ttl_ms=60_000))
    rec = await store.get("t1")
    assert rec is not None and rec.status == "working" and rec.version == 0
    waiter = asyncio.ensure_future(store.wait("t1", 0))
    await asyncio.sleep(0)
    await store.update("t1", TaskChange(status="completed", result={"content": []}))
    woke = await asyncio.wait_for(waiter, 1)
    assert woke is not None and woke.status == "completed"
    after = await store.update("t1", TaskChange(status="working"))
    assert after is not None and after.status == "completed"


async def test_store_answers_only_outstanding_keys_and_ttl() -> None:
    """SEP-2663: answers for unknown keys are ignored; a record lives for its TTL, then goes."""
    now = [1000.0]
    store = MemoryTaskStore(clock=lambda: now[0])
    await store.create(TaskRecord(task_id="t", method="tools/call", created_at=now[0], ttl_ms=2000))
    await store.update("t", TaskChange(status="input_required", add_requests={"a": {"method": "m"}, "b": {"method": "m"}}))
    rec = await store.update("t", TaskChange(answers={"a": 1, "zzz": 2}))
    assert rec is not None and list(rec.input_requests) == ["b"] and rec.responses == {"a": 1}
    now[0] += 1.9
    assert await store.get("t") is not None
    now[0] += 0.2
    assert await store.get("t") is None


async def test_store_list_pages_by_owner() -> None:
    store = MemoryTaskStore()
    for i in range(5):
        await store.create(TaskRecord(task_id=f"t{i}", method="tools/call", owner="s1" if i != 2 else "s2"))
    page, cursor = await store.list("s1", None, 3)
    assert [r.task_id for r in page] == ["t0", "t1", "t3"] and cursor is not None
    page, cursor = await store.list("s1", cursor, 3)
    assert [r.task_id for r in page] == ["t4"] and cursor is None
    with pytest.raises(ValueError):
        await store.list("s1", "garbage!", 3)


# -- leases (issue 12: a task whose process died is failed when its lease runs out) ---------------------------

LEASE = 0.3


def _leased(app: Server, store: TaskStore | None = None) -> Server:
    """``app`` with a short task lease (and, when given, a store shared with other "replicas")."""
    app.tasks.lease_seconds = LEASE
    if store is not None:
        app.tasks.store = store
    return app


class _Frozen:
    """A store that takes no writes: what a process that died sees of its last moments."""

    def __init__(self, inner: TaskStore) -> None:
        self.inner = inner

    async def get(self, task_id: str) -> TaskRecord | None:
        return await self.inner.get(task_id)

    async def update(self, task_id: str, change: TaskChange) -> TaskRecord | None:
        return await self.inner.get(task_id)


async def _die(app: Server, task_id: str) -> None:
    """Stop the task's handler and its lease renewal without writing an outcome (a kill -9)."""
    runner = app.tasks
    store = runner.store
    handler, renewal = runner.running[task_id], runner._renewals[task_id]
    runner.store = _Frozen(store)  # type: ignore[assignment]
    try:
        handler.cancel()
        await asyncio.gather(handler, renewal, return_exceptions=True)
    finally:
        runner.store = store
    assert task_id not in runner.running and task_id not in runner._renewals
    rec = await store.get(task_id)
    assert rec is not None and rec.status == "working" and rec.lease_until is not None  # no outcome written


def test_lease_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = NotificationHub()
    monkeypatch.delenv(LEASE_ENV, raising=False)
    assert TaskRunner(hub).lease_seconds == DEFAULT_LEASE_SECONDS == 30.0
    monkeypatch.setenv(LEASE_ENV, "2.5")
    assert TaskRunner(hub).lease_seconds == 2.5
    assert TaskRunner(hub, lease_seconds=7).lease_seconds == 7.0
    for bad in ("0", "-1", "nan", "inf", "soon"):
        monkeypatch.setenv(LEASE_ENV, bad)
        assert TaskRunner(hub).lease_seconds == DEFAULT_LEASE_SECONDS
    for wrong in (0.0, -3.0, float("nan")):
        with pytest.raises(ValueError):
            TaskRunner(hub, lease_seconds=wrong)


async def test_lease_field_round_trips_and_old_records_have_none() -> None:
    rec = TaskRecord(task_id="t", method="tools/call", lease_until=1234.5)
    assert TaskRecord.from_dict(rec.to_dict()) == rec
    old = rec.to_dict()
    del old["lease_until"]  # a record written before leases existed
    assert TaskRecord.from_dict(old).lease_until is None
    store = MemoryTaskStore()
    await store.create(TaskRecord(task_id="t", method="tools/call", lease_until=time.time() - 5))
    waiter = asyncio.ensure_future(store.wait("t", 0, timeout=0.3))
    await asyncio.sleep(0.05)
    renewed = await store.update("t", TaskChange(lease_until=time.time() + 60))
    assert renewed is not None and renewed.version == 0 and renewed.lease_until is not None
    woke = await waiter  # a renewal wakes no waiter: the wait ran to its timeout
    assert woke is not None and woke.version == 0 and woke.lease_until == renewed.lease_until


async def test_a_task_whose_runner_died_is_failed_after_its_lease() -> None:
    """tasks/result already waiting, and tasks/get: the task goes failed about one lease after its
    process stopped, with the lease error, not `working` forever."""
    app = _leased(build_app())
    async with connect(app, era="legacy", protocol_version="2025-11-25") as c:
        task = (await c.request("tools/call", {"name": "slow_compute", "arguments": {"seconds": 30}, "task": {}}))["task"]
        task_id = task["taskId"]
        waiting = asyncio.ensure_future(c.request("tasks/result", {"taskId": task_id}))
        await asyncio.sleep(LEASE)  # past one renewal at least
        assert not waiting.done()
        await _die(app, task_id)
        died = time.monotonic()
        with pytest.raises(JSONRPCError) as exc:
            await asyncio.wait_for(waiting, 5)
        took = time.monotonic() - died
        assert exc.value.code == -32603 and str(exc.value) == LEASE_LOST, exc.value
        assert took < LEASE + 0.5, f"tasks/result woke {took:.2f} s after the process died"
        got = await c.request("tasks/get", {"taskId": task_id})
        assert got["status"] == "failed" and got["statusMessage"] == LEASE_LOST
        listed = await c.request("tasks/list")
        assert [(t["taskId"], t["status"]) for t in listed["tasks"]] == [(task_id, "failed")]
        rec = await app.tasks.store.get(task_id)
        assert rec is not None and rec.error is not None and rec.error["code"] == -32603 and rec.lease_until is None


async def test_tasks_get_on_another_replica_fails_a_dead_task_and_a_second_reader_changes_nothing() -> None:
    """SEP-2663 flavour, two "replicas" sharing one store: replica B fails the task of dead replica A
    through tasks/get (error inlined); once failed, further reads on either replica keep it as is."""
    store = MemoryTaskStore()
    a, b = _leased(build_app(), store), _leased(build_app(), store)
    async with raw(a) as on_a, raw(b) as on_b:
        created = await on_a.call("tools/call", {"name": "slow_compute", "arguments": {"seconds": 30}})
        task_id = created["taskId"]
        await _die(a, task_id)
        assert (await on_b.call("tasks/get", {"taskId": task_id}))["status"] == "working"  # the lease still holds
        failed = await on_b.wait_status(task_id, "failed", timeout=LEASE + 1)
        assert failed["statusMessage"] == LEASE_LOST and failed["error"]["code"] == -32603
        assert failed["error"]["message"] == LEASE_LOST
        rec = await store.get(task_id)
        assert rec is not None
        version = rec.version
        for peer in (on_a, on_b):
            assert (await peer.call("tasks/get", {"taskId": task_id}))["status"] == "failed"
        assert (await peer.call("tasks/cancel", {"taskId": task_id}))["resultType"] == "complete"  # idempotent ack
        after = await store.get(task_id)
        assert after is not None and after.version == version and after.status == "failed"


async def test_a_live_long_task_keeps_its_lease() -> None:
    """Renewals every third of the lease: several lease periods later the task is still working
    (seen from this replica and another), then completes normally; renewals bump no version."""
    store = MemoryTaskStore()
    app, other = _leased(build_app(), store), _leased(build_app(), store)
    async with connect(app, era="legacy", protocol_version="2025-11-25") as c, raw(other) as on_other:
        task = (await c.request("tools/call", {"name": "slow_compute", "arguments": {"seconds": 1.5}, "task": {}}))["task"]
        task_id = task["taskId"]
        first = await store.get(task_id)
        assert first is not None and first.lease_until is not None
        modern = await on_other.call("tools/call", {"name": "slow_compute", "arguments": {"seconds": 1.5}})
        leases: list[float] = []
        for _ in range(10):  # 1.2 s: four lease periods
            await asyncio.sleep(0.12)
            assert (await c.request("tasks/get", {"taskId": task_id}))["status"] == "working"
            assert (await on_other.call("tasks/get", {"taskId": modern["taskId"]}))["status"] == "working"
            rec = await store.get(task_id)
            assert rec is not None and rec.status == "working" and rec.version == first.version
            assert rec.lease_until is not None
            leases.append(rec.lease_until)
        assert len(set(leases)) >= 3 and leases == sorted(leases)  # renewed, forward
        result = await c.request("tasks/result", {"taskId": task_id})
        assert result["content"][0]["text"] == "computed  after 1.5s"
        done = await on_other.wait_status(modern["taskId"], "completed", timeout=3)
        assert done["result"]["content"][0]["text"] == "computed  after 1.5s"
        rec = await store.get(task_id)
        assert rec is not None and rec.status == "completed" and rec.lease_until is None
    assert not app.tasks._renewals and not other.tasks._renewals  # renewals stop with their tasks


async def test_a_task_cancelled_on_another_replica_stops_where_it_runs() -> None:
    """The renewal finds the record terminal (cancelled through replica B) and stops the handler on A."""
    store = MemoryTaskStore()
    a, b = _leased(build_app(), store), _leased(build_app(), store)
    async with raw(a) as on_a, raw(b) as on_b:
        created = await on_a.call("tools/call", {"name": "slow_compute", "arguments": {"seconds": 30}})
        task_id = created["taskId"]
        handler = a.tasks.running[task_id]
        await on_b.call("tasks/cancel", {"taskId": task_id})
        await asyncio.wait_for(asyncio.gather(handler, return_exceptions=True), LEASE + 1)
        assert handler.cancelled() and task_id not in a.tasks.running
        rec = await store.get(task_id)
        assert rec is not None and rec.status == "cancelled" and rec.status_message == "Cancelled by the client"


# -- 2025-11-25 core tasks (legacy handshake) ---------------------------------------------------------------


async def test_legacy_capability_and_tool_execution() -> None:
    """F-TASK-01: `tasks` capability and execution.taskSupport only on 2025-11-25."""
    app = build_app()
    async with connect(app, era="legacy", protocol_version="2025-11-25") as c:
        assert c.server_capabilities["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
        assert "extensions" not in c.server_capabilities
        tools = {t["name"]: t for t in (await c.request("tools/list"))["tools"]}
        assert tools["slow_compute"]["execution"] == {"taskSupport": "optional"}
        assert tools["failing_job"]["execution"] == {"taskSupport": "required"}
        assert "execution" not in tools["greet"]
    async with connect(app, era="legacy", protocol_version="2025-06-18") as c:
        assert "tasks" not in c.server_capabilities
        tools = {t["name"]: t for t in (await c.request("tools/list"))["tools"]}
        assert "execution" not in tools["slow_compute"]
        with pytest.raises(JSONRPCError) as exc:
            await c.request("tasks/list")
        assert exc.value.code == -32601


async def test_legacy_task_lifecycle_result_list_and_status_notifications() -> None:
    """F-TASK-01/02: CreateTaskResult {task}, tasks/get, tasks/result blocks and carries related-task,
    tasks/list, notifications/tasks/status, ISO 8601 timestamps, ttl honoured."""
    app = build_app()
    statuses: list[dict[str, Any]] = []
    async with connect(
        app, era="legacy", protocol_version="2025-11-25",
        on_notification=lambda m, p: statuses.append(p) if m == "notifications/tasks/status" else None,
    ) as c:
        created = await c.request("tools/call", {"name": "slow_compute", "arguments": {"seconds": 0.2}, "task": {"ttl": 30_000}})
        task = created["task"]
        assert task["status"] == "working" and task["ttl"] == 30_000 and "pollInterval" in task
        assert ISO.match(task["createdAt"]) and ISO.match(task["lastUpdatedAt"])
        got = await c.request("tasks/get", {"taskId": task["taskId"]})
        assert got["taskId"] == task["taskId"] and got["status"] in ("working", "completed")
        result = await c.request("tasks/result", {"taskId": task["taskId"]})  # blocks until terminal
        assert result["content"][0]["text"] == "computed  after 0.2s"
        assert result["_meta"][META_RELATED_TASK] == {"taskId": task["taskId"]}
        listed = await c.request("tasks/list")
        assert [t["taskId"] for t in listed["tasks"]] == [task["taskId"]]
        assert listed["tasks"][0]["status"] == "completed"
        await asyncio.sleep(0.05)
        assert any(s["taskId"] == task["taskId"] and s["status"] == "completed" for s in statuses)
        assert all(META_RELATED_TASK not in s.get("_meta", {}) for s in statuses)


async def test_legacy_task_negotiation_errors() -> None:
    """F-TASK-01: forbidden tool as a task and required tool without a task -> -32601."""
    async with connect(build_app(), era="legacy", protocol_version="2025-11-25") as c:
        with pytest.raises(JSONRPCError) as exc:
            await c.request("tools/call", {"name": "greet", "arguments": {"name": "x"}, "task": {}})
        assert exc.value.code == -32601
        with pytest.raises(JSONRPCError) as exc:
            await c.request("tools/call", {"name": "failing_job", "arguments": {}})
        assert exc.value.code == -32601
        plain = await c.call_tool("slow_compute", {"seconds": 0})  # optional: a plain call stays plain
        assert plain.text.startswith("computed")
        with pytest.raises(JSONRPCError) as exc:
            await c.request("tasks/update", {"taskId": "x", "inputResponses": {}})
        assert exc.value.code == -32601


async def test_legacy_cancel_and_failures() -> None:
    """F-TASK-02: cancel -> cancelled (then -32602 on the terminal task); tool error -> completed isError;
    JSON-RPC error -> failed, and tasks/result returns that error."""
    async with connect(build_app(), era="legacy", protocol_version="2025-11-25") as c:
        task = (await c.request("tools/call", {"name": "slow_compute", "arguments": {"seconds": 30}, "task": {}}))["task"]
        cancelled = await c.request("tasks/cancel", {"taskId": task["taskId"]})
        assert cancelled["status"] == "cancelled"
        with pytest.raises(JSONRPCError) as exc:
            await c.request("tasks/cancel", {"taskId": task["taskId"]})
        assert exc.value.code == -32602
        with pytest.raises(JSONRPCError) as exc:
            await c.request("tasks/get", {"taskId": "nope"})
        assert exc.value.code == -32602

        job = (await c.request("tools/call", {"name": "failing_job", "arguments": {}, "task": {}}))["task"]
        result = await c.request("tasks/result", {"taskId": job["taskId"]})
        assert result["isError"] is True
        assert (await c.request("tasks/get", {"taskId": job["taskId"]}))["status"] == "completed"

        broken = (await c.request("tools/call", {"name": "protocol_error_job", "arguments": {}, "task": {}}))["task"]
        with pytest.raises(JSONRPCError) as exc:
            await c.request("tasks/result", {"taskId": broken["taskId"]})
        assert exc.value.code == -32603
        assert (await c.request("tasks/get", {"taskId": broken["taskId"]}))["status"] == "failed"


async def test_legacy_elicitation_from_a_task() -> None:
    """F-TASK-02: a task that asks the client goes input_required; the request carries related-task."""
    seen: list[dict[str, Any]] = []
    statuses: list[str] = []

    async def on_elicit(params: dict[str, Any]) -> dict[str, Any]:
        seen.append(params)
        await asyncio.sleep(0.05)
        return {"action": "accept", "content": {"confirm": True}}

    async with connect(
        build_app(), era="legacy", protocol_version="2025-11-25", on_elicit=on_elicit,
        on_notification=lambda m, p: statuses.append(p["status"]) if m == "notifications/tasks/status" else None,
    ) as c:
        task = (await c.request("tools/call", {"name": "confirm_delete", "arguments": {"filename": "a.txt"}, "task": {}}))["task"]
        result = await c.request("tasks/result", {"taskId": task["taskId"]})
        assert result["content"][0]["text"] == "deleted a.txt"
        assert seen[0]["_meta"][META_RELATED_TASK] == {"taskId": task["taskId"]}
        await asyncio.sleep(0.05)
        assert "input_required" in statuses and statuses[-1] == "completed"


async def test_legacy_tasks_are_scoped_to_their_session() -> None:
    """tasks/list and tasks/get only see the session's own tasks."""
    app = build_app()
    async with connect(app, era="legacy", protocol_version="2025-11-25") as a, \
            connect(app, era="legacy", protocol_version="2025-11-25") as b:
        task = (await a.request("tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}, "task": {}}))["task"]
        assert (await b.request("tasks/list"))["tasks"] == []
        with pytest.raises(JSONRPCError):
            await b.request("tasks/get", {"taskId": task["taskId"]})


# -- 2026-07-28 tasks extension (SEP-2663), the shapes the conformance tasks-* scenarios check ---------------


async def test_extension_capability_and_gating() -> None:
    """tasks-capability-negotiation: advertised under extensions (no v1 `tasks`), tasks/* gated with -32021,
    task-supporting tools run synchronously without the extension, per-request opt-in creates a task."""
    app = build_app()
    async with connect(app, era="modern") as c:
        caps = c.server_capabilities
        assert caps["extensions"] == {TASKS_EXTENSION_ID: {}} and "tasks" not in caps
    async with raw(app, capabilities={}) as peer:
        for method, params in (("tasks/get", {"taskId": "g"}), ("tasks/update", {"taskId": "g", "inputResponses": {}}),
                               ("tasks/cancel", {"taskId": "g"})):
            with pytest.raises(JSONRPCError) as exc:
                await peer.call(method, params)
            assert exc.value.code == -32021, method
        sync = await peer.call("tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}})
        assert sync["resultType"] == "complete" and "taskId" not in sync and sync["content"]
        opted = await peer.call("tools/call", {"name": "slow_compute", "arguments": {"seconds": 0.1}},
                                capabilities={"extensions": {TASKS_EXTENSION_ID: {}}})
        assert opted["resultType"] == "task" and opted["taskId"]
        with pytest.raises(JSONRPCError) as exc:  # tasks-required-task-error
            await peer.call("tools/call", {"name": "failing_job", "arguments": {}})
        assert exc.value.code == -32021
        assert exc.value.data == {"requiredCapabilities": {"extensions": {TASKS_EXTENSION_ID: {}}}}


async def test_extension_lifecycle() -> None:
    """tasks-lifecycle / tasks-wire-fields / tasks-request-state-removal."""
    async with raw(build_app()) as peer:
        sync = await peer.call("tools/call", {"name": "greet", "arguments": {"name": "World"}})
        assert sync["resultType"] == "complete" and sync["content"][0]["text"] == "Hello, World!"

        created = await peer.call("tools/call", {"name": "slow_compute", "arguments": {"seconds": 0.2, "label": "x"}})
        assert created["resultType"] == "task" and "task" not in created
        for absent in ("result", "error", "inputRequests", "requestState", "ttl", "pollInterval"):
            assert absent not in created
        assert isinstance(created["ttlMs"], int) and created["ttlMs"] > 0
        assert isinstance(created["pollIntervalMs"], int) and created["pollIntervalMs"] > 0
        assert ISO.match(created["createdAt"]) and ISO.match(created["lastUpdatedAt"])
        working = await peer.call("tasks/get", {"taskId": created["taskId"]})  # durable create
        assert working["taskId"] == created["taskId"] and working["resultType"] == "complete"
        assert "requestState" not in working
        done = await peer.wait_status(created["taskId"], "completed")
        assert done["result"]["content"][0]["text"] == "computed x after 0.2s"
        assert META_RELATED_TASK not in done["result"].get("_meta", {})

        job = await peer.call("tools/call", {"name": "failing_job", "arguments": {}})
        done = await peer.wait_status(job["taskId"], "completed", "failed")
        assert done["status"] == "completed" and done["result"]["isError"] is True

        broken = await peer.call("tools/call", {"name": "protocol_error_job", "arguments": {}})
        done = await peer.wait_status(broken["taskId"], "completed", "failed")
        assert done["status"] == "failed" and "result" not in done
        assert isinstance(done["error"]["code"], int) and isinstance(done["error"]["message"], str)

        long = await peer.call("tools/call", {"name": "slow_compute", "arguments": {"seconds": 60}})
        ack = await peer.call("tasks/cancel", {"taskId": long["taskId"]})
        assert set(ack) == {"resultType", "_meta"} and ack["resultType"] == "complete"
        assert (await peer.wait_status(long["taskId"], "cancelled"))["status"] == "cancelled"
        again = await peer.call("tasks/cancel", {"taskId": long["taskId"]})  # idempotent on a terminal task
        assert again["resultType"] == "complete" and "status" not in again


async def test_extension_dispatch_and_envelope() -> None:
    """tasks-dispatch-and-envelope: removed v1 methods, legacy `task` param ignored, unknown id -> -32602."""
    async with raw(build_app()) as peer:
        for method in ("tasks/result", "tasks/list"):
            with pytest.raises(JSONRPCError) as exc:
                await peer.call(method, {"taskId": "probe"} if method == "tasks/result" else {})
            assert exc.value.code == -32601
        hinted = await peer.call("tools/call", {"name": "greet", "arguments": {"name": "l"}, "task": {"ttl": 60000}})
        assert hinted["resultType"] == "complete" and "taskId" not in hinted
        with pytest.raises(JSONRPCError) as exc:
            await peer.call("tasks/get", {"taskId": "tasks-conformance-nonexistent-12345"})
        assert exc.value.code == -32602


async def test_extension_input_required_and_update() -> None:
    """tasks-mrtr-input: inputRequests on tasks/get, tasks/update acks and resumes, partial fulfilment."""
    async with raw(build_app()) as peer:
        created = await peer.call("tools/call", {"name": "confirm_delete", "arguments": {"filename": "f"}})
        parked = await peer.wait_status(created["taskId"], "input_required")
        (key, req), = parked["inputRequests"].items()
        assert req["method"] == "elicitation/create" and "requestState" not in parked
        junk = await peer.call("tasks/update", {"taskId": created["taskId"], "inputResponses": {"unknown": {}}})
        assert junk["resultType"] == "complete"
        ack = await peer.call("tasks/update", {"taskId": created["taskId"],
                                               "inputResponses": {key: {"action": "accept", "content": {"confirm": True}}}})
        assert not {"taskId", "status", "result", "error", "inputRequests"} & set(ack)
        done = await peer.wait_status(created["taskId"], "completed")
        assert done["result"]["content"][0]["text"] == "deleted f"

        multi = await peer.call("tools/call", {"name": "multi_input", "arguments": {}})
        for _ in range(100):
            parked = await peer.call("tasks/get", {"taskId": multi["taskId"]})
            if len(parked.get("inputRequests", {})) >= 2:
                break
            await asyncio.sleep(0.02)
        first, second = list(parked["inputRequests"])
        await peer.call("tasks/update", {"taskId": multi["taskId"],
                                         "inputResponses": {first: {"action": "accept", "content": {"name": "A"}}}})
        await asyncio.sleep(0.05)
        mid = await peer.call("tasks/get", {"taskId": multi["taskId"]})
        assert mid["status"] == "input_required" and list(mid["inputRequests"]) == [second]
        await peer.call("tasks/update", {"taskId": multi["taskId"],
                                         "inputResponses": {second: {"action": "accept", "content": {"name": "B"}}}})
        done = await peer.wait_status(multi["taskId"], "completed")
        assert done["result"]["content"][0]["text"] == "A and B"


async def test_extension_mrtr_then_task() -> None:
    """tasks-mrtr-composition: an MRTR round in the request, then CreateTaskResult, result reflects the answer."""
    async with raw(build_app()) as peer:
        r1 = await peer.call("tools/call", {"name": "test_tool_with_task", "arguments": {}})
        assert r1["resultType"] == "input_required" and "taskId" not in r1
        (key,) = r1["inputRequests"]
        r2 = await peer.call("tools/call", {
            "name": "test_tool_with_task", "arguments": {}, "requestState": r1["requestState"],
            "inputResponses": {key: {"action": "accept", "content": {"name": "Alice"}}},
        })
        assert r2["resultType"] == "task" and "requestState" not in r2 and "inputRequests" not in r2
        done = await peer.wait_status(r2["taskId"], "completed")
        assert "Alice" in done["result"]["content"][0]["text"]


async def test_extension_status_notifications_on_listen_stream() -> None:
    """SEP-2663: notifications/tasks for the taskIds a listen stream named, tagged with its subscriptionId."""
    async with raw(build_app()) as peer:
        created = await peer.call("tools/call", {"name": "slow_compute", "arguments": {"seconds": 0.2}})
        listen_id, _ = peer.start("subscriptions/listen", {"notifications": {"taskIds": [created["taskId"]]}})
        ack = await peer.notification("notifications/subscriptions/acknowledged")
        assert ack["params"]["notifications"] == {"taskIds": [created["taskId"]]}
        note = await peer.notification("notifications/tasks", status="completed")
        assert note["params"]["taskId"] == created["taskId"] and note["params"]["result"]["content"]
        assert note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == listen_id
    async with raw(build_app(), capabilities={}) as peer:
        with pytest.raises(JSONRPCError) as exc:
            await peer.call("subscriptions/listen", {"notifications": {"taskIds": ["x"]}})
        assert exc.value.code == -32021


# -- over a real stdio subprocess ------------------------------------------------------------------------------


def _stdio_cmd() -> list[str]:
    return [sys.executable, str(Path(__file__).with_name("_task_fixture.py")), str(ROOT)]


async def test_stdio_legacy_tasks() -> None:
    """F-TASK-01/02 over stdio: CreateTaskResult, tasks/result, status notifications."""
    from anyport import Client

    statuses: list[str] = []
    async with Client(
        _stdio_cmd(), era="legacy", protocol_version="2025-11-25", timeout=20,
        on_notification=lambda m, p: statuses.append(p["status"]) if m == "notifications/tasks/status" else None,
    ) as c:
        task = (await c.request("tools/call", {"name": "slow_compute", "arguments": {"seconds": 0.1}, "task": {}}))["task"]
        result = await c.request("tasks/result", {"taskId": task["taskId"]})
        assert result["content"][0]["text"].startswith("computed")
        await asyncio.sleep(0.1)
        assert statuses[-1] == "completed"


async def test_stdio_extension_tasks() -> None:
    """SEP-2663 over stdio: CreateTaskResult, input via tasks/update, completion."""
    stream = StdioClientStream(_stdio_cmd())
    await stream.start()
    peer = RawPeer(stream)
    try:
        created = await peer.call("tools/call", {"name": "confirm_delete", "arguments": {"filename": "s"}})
        assert created["resultType"] == "task"
        parked = await peer.wait_status(created["taskId"], "input_required")
        (key,) = parked["inputRequests"]
        await peer.call("tasks/update", {"taskId": created["taskId"],
                                         "inputResponses": {key: {"action": "decline"}}})
        done = await peer.wait_status(created["taskId"], "completed")
        assert done["result"]["content"][0]["text"] == "kept s"
    finally:
        await peer.aclose()
