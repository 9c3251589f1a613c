"""Task records (F-TASK-01/02, SEP-2663): durable state machines any replica can read.

A ``TaskRecord`` is plain data: status, timestamps, TTL, the final result or JSON-RPC error, and
the server->client requests the task waits on (``input_requests``) with the answers that have
arrived for them (``responses``). The coroutine that runs the tool lives in one process; it
reads its answers from the store, so an answer may arrive on any replica.

Rules every backend keeps (``anyport.testing`` holds the contract checks):
- ``create`` stores the record before returning: a ``get`` right after it resolves (SEP-2663
  "durable create").
- A terminal status (completed, failed, cancelled) is final: ``update`` never leaves it.
- Every change bumps ``version``; ``wait`` returns once the version passes the one given. A lease
  renewal (``TaskChange.lease_until`` alone) is stored but is not a change in that sense: it
  bumps no version, moves no ``last_updated_at`` and wakes no waiter.
- A record is kept at least ``ttl_ms`` after creation (never expired early), then may vanish.

Leases: the process running a task's coroutine holds a lease on the record (``lease_until``, epoch
seconds) and renews it every third of the lease (``anyport.server._tasks.TaskRunner``). A record
that is not terminal and whose lease ran out belongs to a process that stopped without writing an
outcome (killed, crashed, cut off from the store); whoever reads it marks it failed with a
conditional change (``TaskChange.if_lease_expired_at``), applied only while the lease is still out
when the store applies it, so a renewal that lands first wins. Renewals do not bump the version
on purpose: one every few seconds per running task would otherwise wake every ``wait`` (and, in
Redis, publish a message) for nothing; a waiter that cares about the lease waits with a timeout
that ends when the lease would run out, and looks again then. Lease times compare the clocks of
different replicas: keep them in sync (NTP) to well within the lease.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from anyport.state._clone import clone

__all__ = [
    "TASK_STATUSES",
    "TERMINAL_STATUSES",
    "MemoryTaskStore",
    "TaskChange",
    "TaskRecord",
    "TaskStore",
    "new_task_id",
]

TASK_STATUSES = frozenset({"working", "input_required", "completed", "failed", "cancelled"})
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def new_task_id() -> str:
    """An unguessable task id: the id is often the only guard against cross-client access."""
    return secrets.token_urlsafe(18)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class TaskRecord:
    task_id: str
    #: The augmented request's method (``tools/call``).
    method: str
    status: str = "working"
    status_message: str | None = None
    created_at: float = field(default_factory=time.time)
    last_updated_at: float = 0.0
    #: Lifetime from creation in ms; None = unlimited.
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None
    #: Who may see the task (a session id or a principal); None = anyone holding the id.
    owner: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    #: Outstanding server->client requests, by key ({method, params}).
    input_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Answers received for keys that were outstanding, not yet consumed by the runner.
    responses: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    #: Until when (epoch s) the process running the task vouches for it; None = no lease (a record
    #: written before leases existed, or a terminal one). See the module doc.
    lease_until: float | None = None

    def __post_init__(self) -> None:
        if not self.last_updated_at:
            self.last_updated_at = self.created_at

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def created_iso(self) -> str:
        return _iso(self.created_at)

    @property
    def updated_iso(self) -> str:
        return _iso(self.last_updated_at)

    def expired(self, now: float) -> bool:
        return self.ttl_ms is not None and now > self.created_at + self.ttl_ms / 1000.0

    def lease_ran_out(self, now: float) -> bool:
        """Not terminal, and the lease of the process running it ended before ``now``."""
        return self.lease_until is not None and now > self.lease_until and not self.terminal

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = clone({
            "task_id": self.task_id, "method": self.method, "status": self.status,
            "status_message": self.status_message, "created_at": self.created_at,
            "last_updated_at": self.last_updated_at, "ttl_ms": self.ttl_ms,
            "poll_interval_ms": self.poll_interval_ms, "owner": self.owner, "result": self.result,
            "error": self.error, "input_requests": self.input_requests, "responses": self.responses,
            "version": self.version, "lease_until": self.lease_until,
        })
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRecord:
        d = clone(data)
        return cls(
            task_id=str(d["task_id"]), method=str(d["method"]), status=str(d.get("status", "working")),
            status_message=d.get("status_message"), created_at=float(d["created_at"]),
            last_updated_at=float(d.get("last_updated_at") or d["created_at"]), ttl_ms=d.get("ttl_ms"),
            poll_interval_ms=d.get("poll_interval_ms"), owner=d.get("owner"), result=d.get("result"),
            error=d.get("error"), input_requests=dict(d.get("input_requests") or {}),
            responses=dict(d.get("responses") or {}), version=int(d.get("version", 0)),
            lease_until=None if d.get("lease_until") is None else float(d["lease_until"]),
        )


@dataclass(slots=True, kw_only=True)
class TaskChange:
    """One atomic change to a record. Fields left at None are not touched."""

    status: str | None = None
    status_message: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    #: New outstanding requests (keys must be new for the task's lifetime).
    add_requests: dict[str, dict[str, Any]] | None = None
    #: Answers from the client: only keys currently outstanding are taken, the rest ignored.
    answers: dict[str, Any] | None = None
    #: Answers the runner has consumed.
    consume: tuple[str, ...] = ()
    #: Back to ``working`` when no request is outstanding any more (after ``consume``).
    resume: bool = False
    #: Lease renewal: the new end of the lease (epoch s). Ignored on a terminal record. Alone it is
    #: not a change for ``version`` (no bump, no wake-up, ``last_updated_at`` kept): see the module doc.
    lease_until: float | None = None
    #: A condition: apply the whole change only if the record is not terminal and its lease ran
    #: out before this time (epoch s); otherwise change nothing. How a reader fails a task whose
    #: process stopped, without racing a renewal.
    if_lease_expired_at: float | None = None


def apply_change(rec: TaskRecord, change: TaskChange, now: float) -> bool:
    """Apply ``change`` to ``rec`` in place (shared by backends). False when nothing changed that
    bumps the version; a lease renewal alone still sets ``rec.lease_until`` (a backend that writes
    the record back compares ``lease_until`` before and after to see it)."""
    if change.if_lease_expired_at is not None and not rec.lease_ran_out(change.if_lease_expired_at):
        return False
    changed = False
    if change.answers:
        for key, value in change.answers.items():
            if key in rec.input_requests:
                del rec.input_requests[key]
                rec.responses[key] = value
                changed = True
    for key in change.consume:
        if rec.responses.pop(key, None) is not None:
            changed = True
    if rec.terminal:
        return changed  # terminal states are final (F-TASK-02)
    if change.lease_until is not None:
        rec.lease_until = change.lease_until  # not a versioned change
    if change.add_requests:
        rec.input_requests.update(change.add_requests)
        changed = True
    if change.resume and not rec.input_requests and rec.status == "input_required":
        rec.status = "working"
        changed = True
    if change.status is not None:
        if change.status not in TASK_STATUSES:
            raise ValueError(f"unknown task status {change.status!r}")
        if change.status != rec.status:
            rec.status = change.status
            changed = True
        if rec.terminal:
            rec.input_requests.clear()
            rec.lease_until = None  # nobody runs it any more
    if change.status_message is not None:
        rec.status_message = change.status_message
        changed = True
    if change.result is not None:
        rec.result = change.result
        changed = True
    if change.error is not None:
        rec.error = change.error
        changed = True
    if changed:
        rec.last_updated_at = max(now, rec.last_updated_at)
    return changed


class TaskStore(Protocol):
    """Where task records live."""

    async def create(self, record: TaskRecord) -> None:
        """Store a new record; a ``get`` right after this returns it."""
        ...

    async def get(self, task_id: str) -> TaskRecord | None:
        """A copy of the record, or None when unknown or expired."""
        ...

    async def update(self, task_id: str, change: TaskChange) -> TaskRecord | None:
        """Apply ``change`` atomically; returns the record after it, None when unknown."""
        ...

    async def wait(self, task_id: str, after_version: int, timeout: float | None = None) -> TaskRecord | None:
        """The record once its version exceeds ``after_version`` (or at timeout: as it is)."""
        ...

    async def list(self, owner: str | None, cursor: str | None, limit: int) -> tuple[list[TaskRecord], str | None]:
        """Records of ``owner`` (oldest first), one page; raises ValueError on a bad cursor."""
        ...

    async def delete(self, task_id: str) -> bool: ...

    async def aclose(self) -> None: ...


class MemoryTaskStore:
    """The in-process default; records are copied in and out, as a shared backend would."""

    def __init__(self, *, clock: Any = time.time) -> None:
        self._records: dict[str, TaskRecord] = {}
        self._order: dict[str, int] = {}
        self._seq = 0
        self._changed: dict[str, asyncio.Event] = {}
        self._clock = clock

    def _live(self, task_id: str) -> TaskRecord | None:
        rec = self._records.get(task_id)
        if rec is not None and rec.expired(self._clock()):
            self._drop(task_id)
            return None
        return rec

    def _drop(self, task_id: str) -> None:
        self._records.pop(task_id, None)
        self._order.pop(task_id, None)
        ev = self._changed.pop(task_id, None)
        if ev is not None:
            ev.set()

    async def create(self, record: TaskRecord) -> None:
        if record.task_id in self._records:
            raise ValueError(f"task {record.task_id!r} exists")
        self._records[record.task_id] = TaskRecord.from_dict(record.to_dict())
        self._seq += 1
        self._order[record.task_id] = self._seq

    async def get(self, task_id: str) -> TaskRecord | None:
        rec = self._live(task_id)
        return None if rec is None else TaskRecord.from_dict(rec.to_dict())

    async def update(self, task_id: str, change: TaskChange) -> TaskRecord | None:
        rec = self._live(task_id)
        if rec is None:
            return None
        if apply_change(rec, change, self._clock()):
            rec.version += 1
            ev = self._changed.pop(task_id, None)
            if ev is not None:
                ev.set()
        return TaskRecord.from_dict(rec.to_dict())

    async def wait(self, task_id: str, after_version: int, timeout: float | None = None) -> TaskRecord | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            rec = self._live(task_id)
            if rec is None or rec.version > after_version:
                return None if rec is None else TaskRecord.from_dict(rec.to_dict())
            ev = self._changed.setdefault(task_id, asyncio.Event())
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return TaskRecord.from_dict(rec.to_dict())
            try:
                await asyncio.wait_for(ev.wait(), left)
            except TimeoutError:
                pass

    async def list(self, owner: str | None, cursor: str | None, limit: int) -> tuple[list[TaskRecord], str | None]:
        after = 0
        if cursor is not None:
            try:
                raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
                after = int(raw[1:]) if raw.startswith("t") else -1
            except (ValueError, binascii.Error, UnicodeDecodeError):
                after = -1
            if after < 0:
                raise ValueError("invalid cursor")
        now = self._clock()
        for tid in [t for t, r in self._records.items() if r.expired(now)]:
            self._drop(tid)
        items = sorted(
            ((seq, tid) for tid, seq in self._order.items() if seq > after and self._records[tid].owner == owner)
        )
        page = items[:limit]
        out = [TaskRecord.from_dict(self._records[tid].to_dict()) for _, tid in page]
        nxt = None
        if len(items) > limit:
            nxt = base64.urlsafe_b64encode(f"t{page[-1][0]}".encode()).decode().rstrip("=")
        return out, nxt

    async def delete(self, task_id: str) -> bool:
        existed = task_id in self._records
        self._drop(task_id)
        return existed

    async def aclose(self) -> None:
        for ev in self._changed.values():
            ev.set()
        self._changed.clear()
