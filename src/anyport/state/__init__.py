"""Pluggable state behind small Protocols (DESIGN.md §3, §4), with in-memory defaults.

- ``SessionStore``: the plain-data record of each legacy session (``SessionRecord``: revision,
  client capabilities and info, log level, subscriptions), with a sliding idle TTL. What only a
  process can hold (handler tasks, futures, open streams) stays in the transport.
- ``EventLog``: every SSE event that carries an id, per session and stream, so a client can resume
  a stream with ``Last-Event-ID`` (T-HTTP-27..32) on any replica.
- ``Bus``: publish/subscribe by key, so a message reaches whichever process holds a stream.
- ``TaskStore``: task records (status, result or error, pending input requests) for tasks that
  outlive the request that created them (F-TASK-01/02, SEP-2663).

``RedisState`` (``anyport[redis]``) is the distributed engine: one Redis or Redis Cluster behind
every seam, so any number of replicas serve the same sessions.

Every method is async (a shared backend does I/O) and every value is plain JSON-able data, so a
Redis implementation drops in without touching the transport. ``anyport.testing.state_contract``
holds the contract checks every backend must pass.
"""

from __future__ import annotations

from anyport.state._bus import Bus, MemoryBus, Subscription
from anyport.state._events import EventLog, MemoryEventLog, Replay, StoredEvent, format_event_id, parse_event_id
from anyport.state._ratelimit import Decision, MemoryRateLimiter, Rate, RateLimiter, RedisRateLimiter
from anyport.state._redis import RedisBus, RedisEventLog, RedisSessionStore, RedisState
from anyport.state._redis_tasks import RedisTaskStore
from anyport.state._sessions import MemorySessionStore, SessionRecord, SessionStore
from anyport.state._tasks import MemoryTaskStore, TaskChange, TaskRecord, TaskStore

__all__ = [
    "Bus",
    "Decision",
    "EventLog",
    "MemoryBus",
    "MemoryEventLog",
    "MemoryRateLimiter",
    "MemorySessionStore",
    "MemoryTaskStore",
    "Rate",
    "RateLimiter",
    "RedisBus",
    "RedisEventLog",
    "RedisRateLimiter",
    "RedisSessionStore",
    "RedisState",
    "RedisTaskStore",
    "Replay",
    "SessionRecord",
    "SessionStore",
    "StoredEvent",
    "Subscription",
    "TaskChange",
    "TaskRecord",
    "TaskStore",
    "format_event_id",
    "parse_event_id",
]
