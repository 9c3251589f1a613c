"""``RedisTaskStore``: task records (F-TASK-01/02, SEP-2663) in Redis or Redis Cluster, shared by
every replica of a ``RedisState`` (``state.tasks``). It passes ``anyport.testing.state_contract.
check_task_store`` like ``MemoryTaskStore``.

Keys (``<p>`` is the state's prefix):

- ``<p>:{<task id>}:task``: the record as JSON, with a TTL of ``ttl_ms`` from its creation (``PX``).
  A record without ``ttl_ms`` ("unlimited") still expires after ``default_ttl`` (7 days unless
  given), so that a task nobody deletes never stays in Redis forever.
- ``<p>:{<owner>}:tasks``: the task ids of one owner, a sorted set scored by creation order, and
  ``<p>:{<owner>}:tasks:n``, the counter (``INCR``) that hands out those scores. Both share the
  owner's hash tag (an owner that is empty, holds ``{``/``}`` or starts with ``~`` is encoded as
  ``~<base64>~``; no owner is ``~``), and both expire with the longest-lived record of the owner
  (refreshed on each create). ``list`` skips and removes entries whose record is gone; ``delete``
  removes the record and its entry, and the counter once the set is empty.
- ``<p>:task:<task id>``: a pub/sub channel (on ``state.pubsub_client``) where every changing
  ``update`` and every ``delete`` publishes the new version.

``update`` is optimistic: it reads the record, applies ``apply_change`` in Python and writes the
result with a script that succeeds only if the record is still the one read (same SHA-1), with
``KEEPTTL``; on a conflict it reads again. A lease renewal alone (``TaskChange.lease_until``) is
written the same way but bumps no version and publishes nothing; the conditional change that
fails a task whose lease ran out (``if_lease_expired_at``) is checked against the record as read,
so a renewal that lands in between makes the write conflict, and the re-read finds the new lease. Every key involved sits in one slot, so it runs
unchanged on a cluster.

``wait`` registers the waiter, makes sure the store's one listener (a ``PSUBSCRIBE`` on
``<p>:task:*``, shared by all waits of the store, started on demand and stopped after a second
without waiters) is subscribed, then re-reads the record, so an update between the first read and
the subscription is never missed. A notification wakes the waiters of that task, which read the
record again; without one they poll every ``poll_interval`` (1 s), so a lost message or a record
that expired delays a wait, never hangs it.

Needs Redis >= 6.2 (``GETDEL``, ``KEEPTTL``). ``create`` writes the record, then the owner's list
entry: a process that dies between the two leaves a record that ``get`` finds but ``list`` does
not show (it still expires).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import random
import re
import time
from typing import TYPE_CHECKING, Any

import orjson

from anyport.state._tasks import TaskChange, TaskRecord, apply_change

if TYPE_CHECKING:
    from anyport.state._redis import RedisState

__all__ = ["DEFAULT_TASK_TTL", "RedisTaskStore"]

log = logging.getLogger("anyport.state")

#: Expiry (seconds) of a record created without ``ttl_ms``: a week.
DEFAULT_TASK_TTL = 7 * 86_400.0

# KEYS: record. ARGV: SHA-1 of the record as read, the new record.
# Returns 1 when written, 0 when the record changed meanwhile, -1 when it is gone.
_CAS = """
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if redis.sha1hex(cur) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""

# KEYS: owner set, owner counter. ARGV: task id, TTL in ms of the new record.
# Adds the task at the next score; both keys live at least as long as the record.
_INDEX = """
local n = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], n, ARGV[1])
local ttl = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
return n
"""

# KEYS: owner set, owner counter. ARGV: task ids. Drops the entries; the counter goes with the set.
_UNINDEX = """
redis.call('ZREM', KEYS[1], unpack(ARGV))
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
return 1
"""


def _dumps(record: TaskRecord) -> bytes:
    return orjson.dumps(record.to_dict(), option=orjson.OPT_NON_STR_KEYS)


def _loads(raw: bytes) -> TaskRecord:
    return TaskRecord.from_dict(orjson.loads(raw))


def _owner_tag(owner: str | None) -> str:
    """The owner's hash tag: the owner itself when it can be one, else an unambiguous encoding."""
    if owner is None:
        return "~"
    if owner and "{" not in owner and "}" not in owner and not owner.startswith("~"):
        return owner
    return "~" + base64.urlsafe_b64encode(owner.encode()).decode() + "~"


def _encode_cursor(score: int) -> str:
    return base64.urlsafe_b64encode(f"t{score}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        after = int(raw[1:]) if raw.startswith("t") and raw[1:].isdigit() else -1
    except (ValueError, binascii.Error, UnicodeDecodeError):
        after = -1
    if after < 0:
        raise ValueError("invalid cursor")
    return after


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class RedisTaskStore:
    """Task records in the Redis deployment of ``state`` (see the module doc)."""

    def __init__(
        self, state: RedisState, *, default_ttl: float = DEFAULT_TASK_TTL, poll_interval: float = 1.0,
        clock: Any = time.time,
    ) -> None:
        self._state = state
        self.default_ttl_ms = max(1, int(default_ttl * 1000))
        self.poll_interval = poll_interval
        self._clock = clock
        self._cas = state.client.register_script(_CAS)
        self._index = state.client.register_script(_INDEX)
        self._unindex = state.client.register_script(_UNINDEX)
        self._channel_prefix = f"{state.prefix}:task:"
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._retry_at = 0.0  # after a failed listener: no new one before this (loop time)
        self._closed = False

    # -- keys ------------------------------------------------------------------------------------------

    def _key(self, task_id: str) -> str:
        return self._state.key(task_id, "task")

    def _owner_keys(self, owner: str | None) -> list[str]:
        tag = _owner_tag(owner)
        return [self._state.key(tag, "tasks"), self._state.key(tag, "tasks", "n")]

    def _channel(self, task_id: str) -> str:
        return self._channel_prefix + task_id

    # -- the Protocol -----------------------------------------------------------------------------------

    async def create(self, record: TaskRecord) -> None:
        ttl_ms = self.default_ttl_ms if record.ttl_ms is None else max(1, int(record.ttl_ms))
        created = await self._state.client.set(self._key(record.task_id), _dumps(record), nx=True, px=ttl_ms)
        if not created:
            raise ValueError(f"task {record.task_id!r} exists")
        await self._index(keys=self._owner_keys(record.owner), args=[record.task_id, ttl_ms])

    async def get(self, task_id: str) -> TaskRecord | None:
        raw = await self._state.client.get(self._key(task_id))
        return None if raw is None else _loads(raw)

    async def update(self, task_id: str, change: TaskChange) -> TaskRecord | None:
        key = self._key(task_id)
        attempt = 0
        while True:
            raw = await self._state.client.get(key)
            if raw is None:
                return None
            rec = _loads(raw)
            lease = rec.lease_until
            changed = apply_change(rec, change, self._clock())
            if not changed and rec.lease_until == lease:
                return rec
            if changed:
                rec.version += 1  # a lease renewal alone is written without a bump or a message
            done = int(await self._cas(keys=[key], args=[hashlib.sha1(raw).hexdigest(), _dumps(rec)]))
            if done == 1:
                if changed:
                    await self._notify(task_id, rec.version)
                return rec
            if done < 0:
                return None
            attempt += 1  # another writer came first: read again, backing off under contention
            if attempt > 2:
                await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * attempt)))

    async def wait(self, task_id: str, after_version: int, timeout: float | None = None) -> TaskRecord | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        rec = await self.get(task_id)
        if rec is None or rec.version > after_version or (timeout is not None and timeout <= 0):
            return rec
        woken = asyncio.Event()
        self._waiters.setdefault(task_id, set()).add(woken)
        try:
            self._ensure_listener()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), self._left(deadline, loop))
            while True:
                woken.clear()
                rec = await self.get(task_id)  # after subscribing: no update can slip through unseen
                if rec is None or rec.version > after_version:
                    return rec
                left = self._left(deadline, loop)
                if left <= 0:
                    return rec
                self._ensure_listener()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), left)
        finally:
            waiters = self._waiters.get(task_id)
            if waiters is not None:
                waiters.discard(woken)
                if not waiters:
                    del self._waiters[task_id]

    async def list(self, owner: str | None, cursor: str | None, limit: int) -> tuple[list[TaskRecord], str | None]:
        after = 0 if cursor is None else _decode_cursor(cursor)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        client = self._state.client
        owner_keys = self._owner_keys(owner)
        out: list[TaskRecord] = []
        last = after
        more = False
        low = f"({after}"
        while not more:
            want = limit + 1 - len(out)
            batch: list[tuple[bytes, float]] = await client.zrangebyscore(
                owner_keys[0], low, "+inf", start=0, num=max(want, 10), withscores=True,
            )
            if not batch:
                break
            async with client.pipeline(transaction=False) as pipe:
                for member, _ in batch:
                    pipe.get(self._key(member.decode()))
                raws: list[bytes | None] = await pipe.execute()
            dead: list[bytes] = []
            for (member, score), raw in zip(batch, raws, strict=True):
                rec = None if raw is None else _loads(raw)
                if rec is None or rec.owner != owner:
                    dead.append(member)  # expired (or its id now belongs to another owner's task)
                elif len(out) < limit:
                    out.append(rec)
                    last = int(score)
                else:
                    more = True
                    break
            if dead:
                await self._unindex(keys=owner_keys, args=dead)
            if len(batch) < max(want, 10):
                break
            low = f"({int(batch[-1][1])}"
        return out, (_encode_cursor(last) if more else None)

    async def delete(self, task_id: str) -> bool:
        raw = await self._state.client.getdel(self._key(task_id))
        if raw is None:
            return False
        await self._unindex(keys=self._owner_keys(_loads(raw).owner), args=[task_id])
        await self._notify(task_id, -1)
        return True

    async def aclose(self) -> None:
        """Stops the listener and wakes every wait (which then reads the record again)."""
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None and not listener.done():
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        self._wake_all()

    # -- notifications ---------------------------------------------------------------------------------

    def _left(self, deadline: float | None, loop: asyncio.AbstractEventLoop) -> float:
        """Seconds to wait before the next look at the record: until the deadline, at most a poll."""
        if deadline is None:
            return self.poll_interval
        return min(self.poll_interval, deadline - loop.time())

    async def _notify(self, task_id: str, version: int) -> None:
        try:
            await self._state.publisher.publish(self._channel(task_id), str(version))
        except Exception as exc:  # the write stands; waiters fall back to polling
            log.warning("task notification for %s failed: %r", task_id[:8], exc)

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for ev in waiters:
                ev.set()

    def _ensure_listener(self) -> None:
        if self._closed or (self._listener is not None and not self._listener.done()):
            return
        if asyncio.get_running_loop().time() < self._retry_at:
            return
        self._listener = asyncio.create_task(self._listen(), name="anyport-redis-task-listener")

    async def _listen(self) -> None:
        """One PSUBSCRIBE for all waits of this store; ends after a quiet second without waiters."""
        me = asyncio.current_task()
        pubsub = self._state.pubsub_client.pubsub()
        prefix = self._channel_prefix.encode()
        loop = asyncio.get_running_loop()
        idle_since: float | None = None
        try:
            await pubsub.psubscribe(_glob_escape(self._channel_prefix) + "*")
            while True:
                msg = await pubsub.get_message(timeout=1.0)
                kind = None if msg is None else msg.get("type")
                if kind == "psubscribe":
                    self._subscribed.set()
                elif kind == "pmessage":
                    assert msg is not None
                    channel = bytes(msg["channel"])
                    if channel.startswith(prefix):
                        for ev in self._waiters.get(channel[len(prefix):].decode(errors="replace"), ()):
                            ev.set()
                # Without waiters: gone after a quiet second, or after a second of others' traffic.
                if self._waiters:
                    idle_since = None
                elif msg is None or (idle_since is not None and loop.time() - idle_since >= 1.0):
                    return
                elif idle_since is None:
                    idle_since = loop.time()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # waits poll meanwhile; the next look at the record starts another
            log.debug("task listener stopped: %r", exc)
            self._retry_at = asyncio.get_running_loop().time() + self.poll_interval
        finally:
            if self._listener is me:
                self._listener = None
            if self._listener is None:
                self._subscribed.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
