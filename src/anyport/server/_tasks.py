"""Tasks on the server side: running a tool call as a task, and the ``tasks/*`` methods.

Two wire flavours over one TaskStore, chosen by the revision table:

- 2025-11-25 core tasks (F-TASK-01/02): the client asks with ``params.task {ttl}`` and gets
  ``CreateTaskResult {task}``; ``tasks/get``, ``tasks/result`` (blocks until terminal),
  ``tasks/list``, ``tasks/cancel`` (-32602 on a terminal task); ``notifications/tasks/status``;
  input goes out as ordinary server->client requests tagged with ``related-task``.
- 2026-07-28 ``io.modelcontextprotocol/tasks`` extension (SEP-2663): the server decides, for a
  client whose request declares the extension; flat ``CreateTaskResult`` (``resultType:"task"``);
  ``tasks/get`` inlines ``result`` / ``error`` / ``inputRequests``; input arrives by
  ``tasks/update``; ``tasks/cancel`` acks idempotently; ``notifications/tasks`` on listen streams.

Leases (durable tasks, issue 12): a record shared by replicas (``RedisTaskStore``) outlives the
process running its coroutine. That process holds a lease on the record: ``create`` sets
``lease_until`` to now + ``lease_seconds`` (30 s, or ``ANYPORT_TASK_LEASE_SECONDS``), and while
the coroutine runs a renewal task moves it forward every third of that, one update that touches
nothing but the lease (no version bump, so no waiter wakes for it). Whoever reads a task that is
not terminal and whose lease ran out (``tasks/get``, ``tasks/result``, ``tasks/list``,
``tasks/cancel``, ``tasks/update``, on any replica) marks it failed (statusMessage and a -32603
error: ``LEASE_LOST``) with a change conditional on the lease still being out, so a late renewal
wins and two replicas doing it at once write one outcome. ``tasks/result`` waits with a timeout
that ends when the lease would run out, so a wait on a task whose process died ends within about
one lease. A task running in this process is never failed from here (its handler proves it alive;
other replicas may still fail it if this process cannot renew, and then the renewal, seeing the
record terminal, cancels the handler). A tool that blocks the event loop longer than the lease
looks dead to the other replicas: raise ``lease_seconds`` (or run the work in a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from anyport._exceptions import (
    INTERNAL_ERROR,
    InvalidParamsError,
    JSONRPCError,
    MethodNotFoundError,
    MissingCapabilityError,
)
from anyport.protocol import META_RELATED_TASK, REVISIONS, TASKS_EXTENSION_ID, IncomingRequest, Revision, bounded, brief
from anyport.runtime import current_principal
from anyport.server._context import Outlet
from anyport.state._tasks import MemoryTaskStore, TaskChange, TaskRecord, TaskStore, new_task_id

if TYPE_CHECKING:
    from anyport.runtime._hub import NotificationHub

__all__ = ["DEFAULT_LEASE_SECONDS", "LEASE_ENV", "LEASE_LOST", "TASK_SUPPORT", "TaskRunner", "client_has_tasks_extension"]

log = logging.getLogger("anyport.server")

TASK_SUPPORT = ("forbidden", "optional", "required")
#: The revision whose wire shapes ``notifications/tasks`` uses.
_EXTENSION_REVISION = next(r for r in REVISIONS.values() if r.tasks_extension)
#: The lease of a running task, in seconds, unless ``lease_seconds`` or ``LEASE_ENV`` says otherwise.
DEFAULT_LEASE_SECONDS = 30.0
#: The environment variable that sets a runner's default lease (seconds, > 0).
LEASE_ENV = "ANYPORT_TASK_LEASE_SECONDS"
#: statusMessage and error message of a task whose process stopped without an outcome.
LEASE_LOST = "the process running this task stopped (its lease ran out)"


def _default_lease() -> float:
    raw = os.environ.get(LEASE_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return value
        log.warning("ignoring %s=%r (want seconds > 0); tasks use a %g s lease", LEASE_ENV, raw, DEFAULT_LEASE_SECONDS)
    return DEFAULT_LEASE_SECONDS


def client_has_tasks_extension(req: IncomingRequest) -> bool:
    ext = req.client_capabilities.get("extensions")
    return isinstance(ext, dict) and isinstance(ext.get(TASKS_EXTENSION_ID), dict)


def missing_tasks_extension() -> MissingCapabilityError:
    return MissingCapabilityError(
        f"Missing required client capability: extension {TASKS_EXTENSION_ID}",
        data={"requiredCapabilities": {"extensions": {TASKS_EXTENSION_ID: {}}}},
    )


def task_fields(rec: TaskRecord, rev: Revision) -> dict[str, Any]:
    """The ``Task`` object in the revision's flavour (ttl/pollInterval vs ttlMs/pollIntervalMs)."""
    out: dict[str, Any] = {
        "taskId": rec.task_id,
        "status": rec.status,
        "createdAt": rec.created_iso,
        "lastUpdatedAt": rec.updated_iso,
    }
    if rec.status_message is not None:
        out["statusMessage"] = rec.status_message
    if rev.tasks_extension:
        out["ttlMs"] = rec.ttl_ms
        if rec.poll_interval_ms is not None:
            out["pollIntervalMs"] = rec.poll_interval_ms
    else:
        out["ttl"] = rec.ttl_ms
        if rec.poll_interval_ms is not None:
            out["pollInterval"] = rec.poll_interval_ms
    return out


def detailed_task(rec: TaskRecord, rev: Revision) -> dict[str, Any]:
    """SEP-2663 ``DetailedTask``: the Task plus what its status carries."""
    out = task_fields(rec, rev)
    if rec.status == "input_required":
        out["inputRequests"] = dict(rec.input_requests)
    elif rec.status == "completed" and rec.result is not None:
        out["result"] = rec.result
    elif rec.status == "failed":
        out["error"] = rec.error or {"code": INTERNAL_ERROR, "message": "Task failed"}
    return out


class _TaskOutlet:
    """The outlet a task-run handler talks through.

    Legacy: every message carries ``related-task`` (F-TASK-02). Modern: progress and log
    notifications are not supported on tasks (SEP-2663), so they are dropped.
    """

    __slots__ = ("_inner", "_meta", "_modern", "session_id")

    def __init__(self, inner: Outlet, task_id: str, rev: Revision) -> None:
        self._inner = inner
        self._meta = {META_RELATED_TASK: {"taskId": task_id}}
        self._modern = rev.modern
        self.session_id = getattr(inner, "session_id", None)

    def _tag(self, params: dict[str, Any]) -> dict[str, Any]:
        meta = params.get("_meta")
        return {**params, "_meta": {**meta, **self._meta} if isinstance(meta, dict) else self._meta}

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        if self._modern:
            return
        with contextlib.suppress(Exception):
            await self._inner.notify(method, self._tag(params))

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        return await self._inner.request(method, self._tag(params))


class TaskHandle:
    """Binds a running handler to its task: how ``Context`` asks the client from inside a task."""

    def __init__(self, runner: TaskRunner, task_id: str, rev: Revision, outlet: Outlet) -> None:
        self.runner = runner
        self.task_id = task_id
        self.rev = rev
        self.outlet: Outlet = _TaskOutlet(outlet, task_id, rev)
        self._asked = 0
        self._waiting = 0

    async def ask(self, method: str, params: dict[str, Any]) -> Any:
        if self.rev.server_requests:
            return await self._ask_legacy(method, params)
        return await self._ask_modern(method, params)

    async def _ask_legacy(self, method: str, params: dict[str, Any]) -> Any:
        # 2025-11-25: input_required while a server->client request tagged with the task is out.
        self._waiting += 1
        if self._waiting == 1:
            await self.runner.update(self.task_id, TaskChange(status="input_required"))
        try:
            return await self.outlet.request(method, params)
        finally:
            self._waiting -= 1
            if self._waiting == 0:
                await self.runner.update(self.task_id, TaskChange(status="working"))

    async def _ask_modern(self, method: str, params: dict[str, Any]) -> Any:
        # SEP-2663: park the request in inputRequests; tasks/update delivers the answer.
        key = f"input-{self._asked}"  # unique over the task's lifetime
        self._asked += 1
        store = self.runner.store
        rec = await self.runner.update(
            self.task_id,
            TaskChange(status="input_required", add_requests={key: {"method": method, "params": params}}),
        )
        while True:
            if rec is None:
                raise asyncio.CancelledError()  # the task expired underneath us
            if key in rec.responses:
                break
            if rec.terminal:
                raise asyncio.CancelledError()  # cancelled while waiting
            rec = await store.wait(self.task_id, rec.version)
        answer = rec.responses[key]
        await self.runner.update(self.task_id, TaskChange(consume=(key,), resume=True))
        return answer


class TaskRunner:
    """Creates tasks, runs their handlers in the background and serves ``tasks/*``."""

    def __init__(
        self,
        hub: NotificationHub,
        store: TaskStore | None = None,
        *,
        default_ttl_ms: int = 3_600_000,
        max_ttl_ms: int = 86_400_000,
        poll_interval_ms: int | None = 500,
        page_size: int = 50,
        lease_seconds: float | None = None,
    ) -> None:
        """``lease_seconds``: how long a running task's record stays vouched for without a renewal
        (renewed every third of it); None = ``ANYPORT_TASK_LEASE_SECONDS`` or 30 s."""
        lease = _default_lease() if lease_seconds is None else float(lease_seconds)
        if not (math.isfinite(lease) and lease > 0):
            raise ValueError(f"lease_seconds must be > 0, not {lease_seconds!r}")
        self.lease_seconds = lease
        self.hub = hub
        self.store: TaskStore = store if store is not None else MemoryTaskStore()
        self.default_ttl_ms = default_ttl_ms
        self.max_ttl_ms = max_ttl_ms
        self.poll_interval_ms = poll_interval_ms
        self.page_size = page_size
        #: Handlers running in this process, by task id.
        self.running: dict[str, asyncio.Task[Any]] = {}
        #: Where legacy status notifications go, by task id (the creating request's outlet).
        self._outlets: dict[str, tuple[Outlet, Revision]] = {}
        #: The lease renewal of each task running here, by task id.
        self._renewals: dict[str, asyncio.Task[None]] = {}
        #: Tasks whose handler has an outcome and is writing it (the renewal must not cancel them).
        self._finishing: set[str] = set()

    # -- creation ----------------------------------------------------------------------------------

    def _ttl(self, req: IncomingRequest) -> int:
        if req.revision.tasks_extension:
            return self.default_ttl_ms
        spec = req.params.get("task")
        ttl = spec.get("ttl") if isinstance(spec, dict) else None
        if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl > 0:
            return min(int(ttl), self.max_ttl_ms)
        return self.default_ttl_ms

    async def create(self, req: IncomingRequest, outlet: Outlet) -> TaskRecord:
        """A new ``working`` task, stored before this returns (durable create, SEP-2663)."""
        owner = task_owner(req, outlet)
        now = time.time()
        rec = TaskRecord(
            task_id=new_task_id(), method=req.method, created_at=now, last_updated_at=now,
            ttl_ms=self._ttl(req), poll_interval_ms=self.poll_interval_ms, owner=owner,
            lease_until=now + self.lease_seconds,
        )
        await self.store.create(rec)
        self._outlets[rec.task_id] = (outlet, req.revision)
        return rec

    def create_result(self, rec: TaskRecord, rev: Revision) -> dict[str, Any]:
        if rev.tasks_extension:
            return {"resultType": "task", **task_fields(rec, rev)}
        return {"task": task_fields(rec, rev)}

    def adopt(self, rec: TaskRecord, task: asyncio.Task[Any]) -> None:
        """Track the handler of ``rec`` running in this process, and renew its lease while it runs."""
        tid = rec.task_id
        self.running[tid] = task
        renewal = asyncio.get_running_loop().create_task(self._renew(tid, task), name=f"anyport-task-lease-{tid[:8]}")
        self._renewals[tid] = renewal

        def done(_t: asyncio.Task[Any]) -> None:
            if self.running.get(tid) is task:
                self.running.pop(tid, None)
                self._outlets.pop(tid, None)
            if self._renewals.get(tid) is renewal:
                del self._renewals[tid]
            renewal.cancel()
            self._finishing.discard(tid)

        task.add_done_callback(done)

    async def _renew(self, task_id: str, handler: asyncio.Task[Any]) -> None:
        """Every third of the lease, move the record's lease forward (that change alone); stop when
        the record is gone, and cancel the handler when the record ended elsewhere (cancelled on
        another replica, or failed there because this process could not renew in time)."""
        period = self.lease_seconds / 3
        while not handler.done():
            await asyncio.sleep(period)
            try:
                rec = await self.store.update(task_id, TaskChange(lease_until=time.time() + self.lease_seconds))
            except Exception as exc:  # the store is unreachable: try again at the next period
                log.warning("renewing the lease of task %s failed: %r", task_id[:8], exc)
                continue
            if rec is None:
                return  # expired or deleted: nothing left to vouch for
            if rec.terminal:
                if task_id not in self._finishing and not handler.done():
                    log.info("task %s ended elsewhere (%s): stopping its handler", task_id[:8], rec.status)
                    handler.cancel()
                return

    def spawn(self, rec: TaskRecord, body: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Run ``body`` in the background; its outcome becomes the task's terminal state."""

        async def run() -> None:
            await self.finish(rec.task_id, body())

        self.adopt(rec, asyncio.get_running_loop().create_task(run()))

    async def finish(self, task_id: str, outcome: Awaitable[dict[str, Any]]) -> None:
        """Await the handler's result and store it: completed (also ``isError``), failed or cancelled."""
        try:
            result = await outcome
        except asyncio.CancelledError:
            self._finishing.add(task_id)
            await self.update(task_id, TaskChange(status="cancelled"))
            raise
        except JSONRPCError as exc:
            self._finishing.add(task_id)
            await self.update(task_id, TaskChange(status="failed", error=exc.to_error()))
        except Exception:
            self._finishing.add(task_id)
            log.exception("task %s failed", task_id)
            error = {"code": INTERNAL_ERROR, "message": "Internal error"}
            await self.update(task_id, TaskChange(status="failed", error=error))
        else:
            self._finishing.add(task_id)
            await self.update(task_id, TaskChange(status="completed", result=result))

    # -- state changes and status notifications --------------------------------------------------------

    async def update(self, task_id: str, change: TaskChange) -> TaskRecord | None:
        before = await self.store.get(task_id) if change.status is not None or change.resume else None
        rec = await self.store.update(task_id, change)
        if rec is not None and before is not None and (rec.status != before.status or change.add_requests):
            await self._announce(rec)
        return rec

    async def _announce(self, rec: TaskRecord) -> None:
        sink = self._outlets.get(rec.task_id)
        if sink is not None and not sink[1].modern and sink[1].tasks:
            outlet, rev = sink
            # Legacy: notifications/tasks/status to the creating session (optional, no related-task).
            with contextlib.suppress(Exception):
                await outlet.notify("notifications/tasks/status", task_fields(rec, rev))
        # Modern: notifications/tasks to listen streams that named this task.
        await self.hub.publish("notifications/tasks", detailed_task(rec, _EXTENSION_REVISION), peers=())

    # -- leases --------------------------------------------------------------------------------------

    async def _vouched(self, rec: TaskRecord) -> TaskRecord | None:
        """``rec``, or ``rec`` marked failed when its lease ran out and no handler here runs it
        (None when the record is gone meanwhile)."""
        now = time.time()
        if not rec.lease_ran_out(now) or rec.task_id in self.running:
            return rec
        error = {"code": INTERNAL_ERROR, "message": LEASE_LOST, "data": {"taskId": rec.task_id}}
        change = TaskChange(status="failed", status_message=LEASE_LOST, error=error, if_lease_expired_at=now)
        after = await self.update(rec.task_id, change)
        if after is not None and after.status == "failed" and after.version > rec.version:
            log.warning("task %s: %s", rec.task_id[:8], LEASE_LOST)
        return after

    def _lease_timeout(self, rec: TaskRecord) -> float | None:
        """How long a wait on ``rec`` may block before its lease must be looked at again: until
        just after it would run out (at least a tenth of a lease, so that a task running here
        whose lease is late, e.g. after a stalled loop, is not polled in a tight loop)."""
        if rec.lease_until is None:
            return None
        return max(self.lease_seconds / 10, 0.05, rec.lease_until - time.time() + 0.05)

    # -- tasks/* -------------------------------------------------------------------------------------

    async def _find(self, req: IncomingRequest, outlet: Outlet) -> TaskRecord:
        task_id = req.params.get("taskId")
        if not isinstance(task_id, str) or not task_id:
            raise InvalidParamsError(f"{req.method} needs a string taskId")
        rec = await self.store.get(task_id)
        if rec is None or (rec.owner is not None and rec.owner != task_owner(req, outlet)):
            raise InvalidParamsError(f"Unknown task: {brief(task_id)}", data={"taskId": bounded(task_id)})
        vouched = await self._vouched(rec)
        if vouched is None:
            raise InvalidParamsError(f"Unknown task: {brief(task_id)}", data={"taskId": bounded(task_id)})
        return vouched

    def gate(self, req: IncomingRequest) -> None:
        """Which tasks/* methods exist on this request's revision, and for this client."""
        rev = req.revision
        if rev.tasks_extension:
            if req.method not in ("tasks/get", "tasks/update", "tasks/cancel"):
                raise MethodNotFoundError(f"Method not found: {req.method} (removed by the tasks extension)")
            if not client_has_tasks_extension(req):
                raise missing_tasks_extension()
        elif not rev.tasks or req.method == "tasks/update":
            raise MethodNotFoundError(f"Method not found: {req.method} (not on {rev.version})")

    async def get(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        self.gate(req)
        rec = await self._find(req, outlet)
        if req.revision.tasks_extension:
            return detailed_task(rec, req.revision)
        return task_fields(rec, req.revision)

    async def result(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """2025-11-25 ``tasks/result``: wait for a terminal status, then what the request would have returned."""
        self.gate(req)
        rec: TaskRecord | None = await self._find(req, outlet)
        while rec is not None and not rec.terminal:
            # Renewals wake no waiter: wake when the lease would run out, and look at it then.
            rec = await self.store.wait(rec.task_id, rec.version, timeout=self._lease_timeout(rec))
            if rec is not None:
                rec = await self._vouched(rec)
        if rec is None:
            raise InvalidParamsError(f"Unknown task: {brief(req.params.get('taskId'))}")
        meta = {META_RELATED_TASK: {"taskId": rec.task_id}}
        if rec.status == "completed" and rec.result is not None:
            out = dict(rec.result)
            prior = out.get("_meta")
            out["_meta"] = {**prior, **meta} if isinstance(prior, dict) else meta
            return out
        if rec.status == "failed" and rec.error is not None:
            err = rec.error
            raise JSONRPCError(str(err.get("message", "Task failed")), code=int(err.get("code", INTERNAL_ERROR)), data=err.get("data"))
        raise JSONRPCError(f"Task {rec.task_id} was cancelled", code=INTERNAL_ERROR, data={"taskId": rec.task_id})

    async def list(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        self.gate(req)
        cursor = req.params.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidParamsError("Invalid cursor")
        try:
            records, nxt = await self.store.list(task_owner(req, outlet), cursor, self.page_size)
        except ValueError as exc:
            raise InvalidParamsError("Invalid cursor") from exc
        now = time.time()
        shown: list[TaskRecord] = []
        for r in records:
            vouched = await self._vouched(r) if r.lease_ran_out(now) else r
            if vouched is not None:  # None: it expired meanwhile
                shown.append(vouched)
        out: dict[str, Any] = {"tasks": [task_fields(r, req.revision) for r in shown]}
        if nxt is not None:
            out["nextCursor"] = nxt
        return out

    async def cancel(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        self.gate(req)
        rec = await self._find(req, outlet)
        ext = req.revision.tasks_extension
        if rec.terminal:
            if ext:
                return {}  # SEP-2663: idempotent ack
            raise InvalidParamsError(f"Task {rec.task_id} is already {rec.status}", data={"taskId": rec.task_id})
        after = await self.update(rec.task_id, TaskChange(status="cancelled", status_message="Cancelled by the client"))
        running = self.running.get(rec.task_id)
        if running is not None:
            running.cancel()
        if ext:
            return {}
        return task_fields(after or rec, req.revision)

    async def update_inputs(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """SEP-2663 ``tasks/update``: answers for outstanding keys; others are ignored."""
        self.gate(req)
        rec = await self._find(req, outlet)
        responses = req.params.get("inputResponses")
        if not isinstance(responses, dict):
            raise InvalidParamsError("tasks/update needs an inputResponses object")
        await self.update(rec.task_id, TaskChange(answers=responses))
        return {}

    def cancel_all(self) -> None:
        for task in list(self.running.values()):
            task.cancel()
        for renewal in list(self._renewals.values()):
            renewal.cancel()


def task_owner(req: IncomingRequest, outlet: Outlet) -> str | None:
    """Who may see a task: its legacy session, else the authenticated principal (``p:<key>``), else
    anyone holding its id. Another principal asking for it is told it is unknown (A-37)."""
    if not req.revision.modern:
        session_id = getattr(outlet, "session_id", None)
        if session_id is not None:
            return str(session_id)
    key = getattr(current_principal(), "key", None)
    return None if key is None else f"p:{key}"
