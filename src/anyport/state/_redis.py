"""The Redis engine behind the state seams (DESIGN.md §4): ``RedisState`` and its backends.

``RedisState.from_url("redis://host:6379/0")`` (``rediss://`` for TLS, user and password in the
URL) connects lazily and hands out a ``SessionStore``, an ``EventLog`` and a ``Bus`` that share one
connection pool; every replica given the same URL and ``prefix`` serves the same sessions.

Keys (``prefix`` default ``anyport``). Every key of one session carries the session id as a hash
tag, ``{<id>}``, so a session's keys sit in one slot and the backends work unchanged on Redis
Cluster (``cluster=True``, or a URL with ``?cluster=1``): the multi-key scripts touch one slot.

- ``<p>:{<sid>}:rec``: the session record (JSON), with a sliding TTL (``GETEX``);
- ``<p>:{<sid>}:streams``: the session's SSE streams, a sorted set by creation order;
- ``<p>:{<sid>}:s:<stream>``: one stream's state (``seq``, ``ended``), a hash;
- ``<p>:{<sid>}:e:<stream>``: its events, a list of ``<seq>:<json>`` trimmed to ``max_events``;
- ``<p>:bus:<key>``: a pub/sub channel of the ``Bus``.
Every key expires: a stream ``open_ttl`` after its last event (``ttl`` once ended), a record
``session_ttl`` after its last use; ``drop_session`` deletes them all at once.

The bus uses one pub/sub connection per subscription, so ``publish`` counts subscribers exactly as
the in-memory bus does (the GET-stream takeover relies on it). On a cluster, pub/sub goes to one
node (the first of the URL), the same for every replica, so counts stay exact there too.

redis-py is imported only here, when a ``RedisState`` is made: ``pip install 'anyport[redis]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from anyport.state._bus import Subscription
from anyport.state._events import Replay, StoredEvent, format_event_id, parse_event_id
from anyport.state._ratelimit import RedisRateLimiter
from anyport.state._redis_behind import StoreBehind, WholeStream
from anyport.state._redis_tasks import RedisTaskStore
from anyport.state._sessions import SessionRecord

__all__ = ["INSTALL_HINT", "RedisBus", "RedisEventLog", "RedisSessionStore", "RedisState"]

log = logging.getLogger("anyport.state")

INSTALL_HINT = "the Redis backends need redis-py: pip install 'anyport[redis]'"

# KEYS: meta, events, streams. ARGV: message ("" for a priming event), open_ttl.
# Returns the seq of the new event, or -1 when the stream is gone.
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1) - 1
redis.call('RPUSH', KEYS[2], seq .. ':' .. ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
local ttl = tonumber(ARGV[2])
if redis.call('HGET', KEYS[1], 'ended') == '1' then ttl = tonumber(ARGV[4]) end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[2]))
return seq
"""

# Registers a new stream in its session and drops the oldest streams past max_streams; returns the
# keys of the stream's state and events. The prelude of the two scripts that make streams.
_REGISTER = """
local function register(streams, name, open_ttl, max_streams, p)
  local n = redis.call('INCR', p .. 'n')
  redis.call('EXPIRE', p .. 'n', open_ttl)
  redis.call('ZADD', streams, n, name)
  redis.call('EXPIRE', streams, open_ttl)
  local over = redis.call('ZCARD', streams) - max_streams
  if over > 0 then
    for _, old in ipairs(redis.call('ZRANGE', streams, 0, over - 1)) do
      redis.call('DEL', p .. 's:' .. old, p .. 'e:' .. old)
      redis.call('ZREM', streams, old)
    end
  end
  return p .. 's:' .. name, p .. 'e:' .. name
end
"""

# A new open stream. KEYS: streams. ARGV: stream name, open_ttl, max_streams, key prefix of the
# session ("<p>:{sid}:").
_NEW_STREAM = _REGISTER + """
local meta = register(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
redis.call('HSET', meta, 'seq', 0, 'ended', 0)
redis.call('EXPIRE', meta, tonumber(ARGV[2]))
return 1
"""

# Whole streams at once (answers written in one piece): for each, a new stream, its priming event,
# its messages, ended. KEYS: the streams key of each stream's session. ARGV: open_ttl, max_streams,
# ended ttl, then per stream: key prefix of its session, stream name, flags (1: a priming event, 2:
# only while the session's record exists, so a write that lost the race with DELETE leaves no key),
# message count, the messages. Returns the number of streams stored.
_WHOLE = _REGISTER + """
local open_ttl, max_streams, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local a, stored = 4, 0
for k = 1, #KEYS do
  local p, name, flags, count = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  if flags < 2 or redis.call('EXISTS', p .. 'rec') == 1 then
    local meta, events = register(KEYS[k], name, open_ttl, max_streams, p)
    local seq = 0
    if flags % 2 == 1 then
      redis.call('RPUSH', events, '0:')
      seq = 1
    end
    for i = a, a + count - 1 do
      redis.call('RPUSH', events, seq .. ':' .. ARGV[i])
      seq = seq + 1
    end
    redis.call('HSET', meta, 'seq', seq, 'ended', 1)
    redis.call('EXPIRE', meta, ttl)
    if seq > 0 then redis.call('EXPIRE', events, ttl) end
    stored = stored + 1
  end
  a = a + count
end
return stored
"""

# The replica writing a stream holds a lease on it (ms, Redis clock). KEYS: meta. ARGV: lease_ms, ids JSON or ''.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'owner_until', t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1]))
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'ids', ARGV[2]) end
return 1
"""

# A stream whose writer's lease ran out, not ended: take it over for ARGV[1] ms and return its request
# ids and its events, else nil. KEYS: meta, events.
_ORPHAN = """
local m = redis.call('HMGET', KEYS[1], 'ended', 'owner_until', 'ids')
if m[1] == '1' or not m[2] then return nil end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if tonumber(m[2]) > now then return nil end
redis.call('HSET', KEYS[1], 'owner_until', now + tonumber(ARGV[1]))
return {m[3] or '[]', redis.call('LRANGE', KEYS[2], 0, -1)}
"""

# KEYS: streams. ARGV: key prefix of the session. Deletes every key of the session's streams.
_DROP = """
for _, name in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('DEL', ARGV[1] .. 's:' .. name, ARGV[1] .. 'e:' .. name)
end
redis.call('DEL', KEYS[1], ARGV[1] .. 'n')
return 1
"""


def _redis_modules() -> tuple[Any, Any, Any, Any, Any, Any]:
    try:
        import redis.asyncio as aredis
        from redis.asyncio.cluster import RedisCluster
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from exc
    return aredis, RedisCluster, Retry, NoBackoff, RedisConnectionError, RedisTimeoutError


class RedisState:
    """One Redis (or Redis Cluster) deployment, and the backends that keep their state there."""

    def __init__(
        self, url: str, *, prefix: str = "anyport", cluster: bool | None = None, session_ttl: float = 1800.0,
        max_events: int = 1000, max_streams: int = 100, event_ttl: float = 600.0, open_ttl: float = 86_400.0,
        max_connections: int = 64, max_subscriptions: int = 1_000_000,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"not a Redis URL (redis://, rediss:// or unix://): {url!r}")
        if not prefix or any(c in prefix for c in "{} \n"):
            raise ValueError(f"invalid Redis key prefix {prefix!r}")
        query = parse_qs(parts.query)
        if cluster is None:
            cluster = query.get("cluster", ["0"])[0].lower() in ("1", "true", "yes")
        self.url = url
        self.prefix = prefix
        self.cluster = cluster
        aredis, cluster_cls, Retry, NoBackoff, RedisConnectionError, RedisTimeoutError = _redis_modules()
        plain_url = _without_param(url, "cluster")
        # Commands: the whole deployment (a cluster client routes by slot), over at most
        # ``max_connections`` connections: past that a command waits for one (backpressure) instead
        # of opening more until Redis refuses clients. Pub/sub: one node, a connection per
        # subscription (a GET stream holds one while it is open), from a pool of its own.
        # A connection Redis closed (a restart) is retried once on a fresh one, so the first command
        # after Redis comes back does not fail on a stale connection.
        retry = {"retry": Retry(NoBackoff(), 1), "retry_on_error": [RedisConnectionError, RedisTimeoutError]}
        # No CLIENT SETINFO on connect: Redis < 7.2 answers it with an error that redis-py can then
        # read as the answer to the next command of a fresh connection (seen under load).
        retry.update(_no_setinfo(aredis))
        if cluster:
            self.client: Any = cluster_cls.from_url(plain_url, max_connections=max_connections, **_no_setinfo(aredis))
        else:
            pool = aredis.BlockingConnectionPool.from_url(plain_url, max_connections=max_connections, timeout=10, **retry)
            self.client = aredis.Redis(connection_pool=pool)
        # One connection per open subscription (each GET stream holds some): as many as there are
        # streams, which Limits bounds (max_sessions, max_streams_per_session), not redis-py's 100.
        self.pubsub_client: Any = aredis.from_url(plain_url, max_connections=max_subscriptions, **retry)
        #: PUBLISH goes to the pub/sub node over connections no subscription ever reads: a connection
        #: released by a closing subscription must not be read by two coroutines at once.
        self.publisher: Any = aredis.from_url(plain_url, **retry) if cluster else self.client
        self.sessions = RedisSessionStore(self, ttl=session_ttl)
        self.events = RedisEventLog(self, max_events=max_events, max_streams=max_streams, ttl=event_ttl, open_ttl=open_ttl)
        self.bus = RedisBus(self)
        self.tasks = RedisTaskStore(self)
        self._append = self.client.register_script(_APPEND)
        self._new_stream = self.client.register_script(_NEW_STREAM)
        self._drop = self.client.register_script(_DROP)
        self._whole = self.client.register_script(_WHOLE)
        self._claim = self.client.register_script(_CLAIM)
        self._orphan = self.client.register_script(_ORPHAN)
        self.limiter = RedisRateLimiter(self)

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> RedisState:
        return cls(url, **kw)

    def key(self, session_id: str, *parts: str) -> str:
        """A key of session ``session_id``: ``<prefix>:{<id>}:<parts...>`` (one slot per session)."""
        return ":".join((self.prefix, "{" + session_id + "}", *parts))

    @staticmethod
    def unavailable(exc: BaseException) -> bool:
        """Whether ``exc`` says Redis cannot be reached now (down, restarting, loading): worth a retry."""
        from redis.exceptions import (
            BusyLoadingError,
            ConnectionError as RedisConnectionError,
            TimeoutError as RedisTimeout,
        )

        return isinstance(exc, (RedisConnectionError, RedisTimeout, BusyLoadingError, ConnectionRefusedError))

    async def ping(self) -> None:
        """Raises when Redis cannot be reached (``redis.exceptions.ConnectionError``)."""
        await self.client.ping()

    async def aclose(self) -> None:
        await self.events.aclose()
        await self.bus.aclose()
        await self.pubsub_client.aclose()
        if self.publisher is not self.client:
            await self.publisher.aclose()
        await self.client.aclose()


def _no_setinfo(aredis: Any) -> dict[str, Any]:
    """Connection keywords that turn CLIENT SETINFO off: ``driver_info=None`` (redis-py >= 7.1), or
    the older ``lib_name``/``lib_version``."""
    import inspect

    params = inspect.signature(aredis.connection.AbstractConnection.__init__).parameters
    return {"driver_info": None} if "driver_info" in params else {"lib_name": None, "lib_version": None}


def _without_param(url: str, name: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = "&".join(p for p in parts.query.split("&") if p.split("=", 1)[0] != name)
    return parts._replace(query=kept).geturl()


class RedisSessionStore:
    """Session records with a sliding TTL (``GETEX`` refreshes it on every read)."""

    def __init__(self, state: RedisState, *, ttl: float = 1800.0) -> None:
        self._state = state
        self.ttl = max(1, int(ttl))

    async def create(self, record: SessionRecord) -> bool:
        created = await self._state.client.set(self._state.key(record.id, "rec"), record.to_json(), nx=True, ex=self.ttl)
        if not created:
            raise ValueError(f"session {record.id!r} exists already")
        return True

    async def get(self, session_id: str) -> SessionRecord | None:
        raw = await self._state.client.getex(self._state.key(session_id, "rec"), ex=self.ttl)
        return None if raw is None else SessionRecord.from_json(raw)

    async def put(self, record: SessionRecord) -> bool:
        done = await self._state.client.set(self._state.key(record.id, "rec"), record.to_json(), xx=True, ex=self.ttl)
        return bool(done)

    async def delete(self, session_id: str) -> bool:
        return bool(await self._state.client.delete(self._state.key(session_id, "rec")))

    async def count(self) -> int:
        """Records stored now (a keyspace scan: for tests and operators, not for every request)."""
        n = 0
        async for _ in self._state.client.scan_iter(match=f"{self._state.prefix}:{{*}}:rec", count=1000):
            n += 1
        return n

    async def aclose(self) -> None:
        return None  # the connections belong to the RedisState


class RedisEventLog:
    """SSE events per session and stream, for ``Last-Event-ID`` on any replica (see the module doc)."""

    def __init__(
        self, state: RedisState, *, max_events: int = 1000, max_streams: int = 100, ttl: float = 600.0,
        open_ttl: float = 86_400.0,
    ) -> None:
        self._state = state
        self.max_events = max_events
        self.max_streams = max_streams
        self.ttl = max(1, int(ttl))
        self.open_ttl = max(self.ttl, int(open_ttl))
        self._behind = StoreBehind(self._store_whole)

    async def new_stream(self, session_id: str, *, prefix: str = "") -> str:
        st = self._state
        # Random, so that two replicas never mint the same id (no ':' in token_urlsafe's alphabet).
        name = prefix + secrets.token_urlsafe(9)
        await st._new_stream(
            keys=[st.key(session_id, "streams")],
            args=[name, self.open_ttl, self.max_streams, st.key(session_id, "")],
        )
        return name

    def plan_stream(self, count: int, *, prefix: str = "", priming: bool = False) -> tuple[str, str | None, list[str]]:
        """The ids a whole stream of ``count`` messages will have (``write_stream`` stores it): a
        fresh stream id, its priming event's id (or None) and the messages' ids. No I/O."""
        name = prefix + secrets.token_urlsafe(9)
        first = 1 if priming else 0
        return name, format_event_id(name, 0) if priming else None, [format_event_id(name, first + i) for i in range(count)]

    async def write_stream(self, session_id: str, name: str, messages: list[dict[str, Any]], *, priming: bool = False) -> None:
        """Store a whole stream planned by ``plan_stream`` (new stream, priming event, every message,
        ended) in one round trip."""
        await self._store_whole([WholeStream(session_id, name, _payloads(messages), priming)])

    def store_behind(
        self, session_id: str, name: str, messages: list[dict[str, Any]], *, priming: bool = False,
    ) -> asyncio.Future[None] | None:
        """Store a whole stream planned by ``plan_stream`` soon, in one batch with the other streams
        stored behind their answers (``StoreBehind``), and only while the session lives. None, or,
        when too many wait already, a future to await first (backpressure)."""
        return self._behind.add(WholeStream(session_id, name, _payloads(messages), priming, live=True))

    async def _store_whole(self, streams: list[WholeStream]) -> None:
        """Store whole streams: one script call, or, on a cluster (whose slots one script cannot
        span), one call per stream, all at once."""
        st = self._state
        head: list[Any] = [self.open_ttl, self.max_streams, self.ttl]
        if st.cluster and len(streams) > 1:
            await asyncio.gather(*(self._store_whole([s]) for s in streams))
            return
        keys: list[str] = []
        args = head
        for s in streams:
            keys.append(st.key(s.session_id, "streams"))
            args += [st.key(s.session_id, ""), s.name, (1 if s.priming else 0) | (2 if s.live else 0), len(s.payloads), *s.payloads]
        await st._whole(keys=keys, args=args)

    async def log_stream(
        self, session_id: str, messages: list[dict[str, Any]], *, prefix: str = "", priming: bool = False,
    ) -> tuple[str, str | None, list[str]]:
        """``plan_stream`` + ``write_stream``: a complete stream stored before this returns."""
        name, priming_id, ids = self.plan_stream(len(messages), prefix=prefix, priming=priming)
        await self.write_stream(session_id, name, messages, priming=priming)
        return name, priming_id, ids

    async def append(self, session_id: str, stream_id: str, message: dict[str, Any] | None) -> str:
        st = self._state
        payload = b"" if message is None else orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS)
        seq = await st._append(
            keys=[st.key(session_id, "s", stream_id), st.key(session_id, "e", stream_id), st.key(session_id, "streams")],
            args=[payload, self.open_ttl, self.max_events, self.ttl],
        )
        if int(seq) < 0:
            raise KeyError(f"no stream {stream_id!r} in session {session_id[:8]!r}")
        return format_event_id(stream_id, int(seq))

    async def replay(self, session_id: str, last_event_id: str) -> Replay | None:
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            return None
        stream_id, seq = parsed
        st = self._state
        async with st.client.pipeline(transaction=False) as pipe:
            pipe.hmget(st.key(session_id, "s", stream_id), "seq", "ended")
            pipe.lrange(st.key(session_id, "e", stream_id), 0, -1)
            (count, ended), raw_events = await pipe.execute()
        if count is None or seq >= int(count):
            return None
        events: list[StoredEvent] = []
        for raw in raw_events:
            n, _, payload = bytes(raw).partition(b":")
            if int(n) > seq:
                events.append(StoredEvent(format_event_id(stream_id, int(n)), orjson.loads(payload) if payload else None))
        return Replay(stream_id, events, ended == b"1")

    async def claim_stream(self, session_id: str, stream_id: str, lease: float, request_ids: list[str | int] | None = None) -> None:
        """This replica writes the stream for ``lease`` seconds more (renew before it runs out);
        ``request_ids``: the requests whose answers the stream will carry (given once)."""
        st = self._state
        ids = "" if request_ids is None else orjson.dumps(request_ids).decode()
        await st._claim(keys=[st.key(session_id, "s", stream_id)], args=[max(1, int(lease * 1000)), ids])

    async def orphaned(self, session_id: str, stream_id: str, takeover: float = 60.0) -> list[str | int] | None:
        """The ids of the requests still unanswered on a stream whose writer stopped renewing its lease
        (its replica died), after taking the stream over for ``takeover`` seconds; None while the
        writer lives, once the stream ended, or for a stream nobody claimed."""
        st = self._state
        found = await st._orphan(
            keys=[st.key(session_id, "s", stream_id), st.key(session_id, "e", stream_id)], args=[max(1, int(takeover * 1000))],
        )
        if found is None:
            return None
        ids_raw, raw_events = found
        asked = orjson.loads(ids_raw)
        answered = set()
        for raw in raw_events:
            _, _, payload = bytes(raw).partition(b":")
            message = orjson.loads(payload) if payload else None
            if isinstance(message, dict) and "method" not in message and ("result" in message or "error" in message):
                answered.add(message.get("id"))
        return [i for i in asked if i not in answered]

    async def end_stream(self, session_id: str, stream_id: str) -> None:
        st = self._state
        meta = st.key(session_id, "s", stream_id)
        async with st.client.pipeline(transaction=True) as pipe:
            pipe.hset(meta, "ended", 1)
            pipe.expire(meta, self.ttl)
            pipe.expire(st.key(session_id, "e", stream_id), self.ttl)
            results = await pipe.execute()
        if results[0] == 1:  # the stream was gone: HSET made a new hash, which must not stay
            await st.client.delete(meta)

    async def drop_session(self, session_id: str) -> None:
        st = self._state
        await st._drop(keys=[st.key(session_id, "streams")], args=[st.key(session_id, "")])

    async def aclose(self) -> None:
        """Store what waits behind its answers."""
        await self._behind.flush()


def _payloads(messages: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(m, option=orjson.OPT_NON_STR_KEYS) for m in messages]


class _RedisSubscription:
    """One pub/sub connection listening on the channels of some bus keys."""

    def __init__(self, bus: RedisBus, pubsub: Any, channels: dict[bytes, str]) -> None:
        self._bus = bus
        self._pubsub = pubsub
        self._channels = channels
        self.closed = False
        #: The task reading the connection now (``get``): ``aclose`` waits for it to stop before the
        #: connection goes back to the pool, so no two coroutines ever read it at once.
        self._reader: asyncio.Task[Any] | None = None

    async def get(self) -> tuple[str, dict[str, Any]]:
        self._reader = asyncio.current_task()
        try:
            while not self.closed:
                try:
                    msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                except (asyncio.CancelledError, GeneratorExit):
                    raise
                except Exception as exc:
                    if self.closed:
                        break
                    raise EOFError(f"the bus connection failed: {exc!r}") from exc
                if msg is None or msg.get("type") != "message":
                    continue
                key = self._channels.get(msg["channel"])
                if key is None:
                    continue
                return key, orjson.loads(msg["data"])
            raise EOFError("the subscription is closed")
        finally:
            self._reader = None

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bus._subs.discard(self)
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task() and not reader.done():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({reader}, timeout=5)
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()


class RedisBus:
    """Pub/sub by key across every replica sharing the Redis deployment (see the module doc)."""

    def __init__(self, state: RedisState) -> None:
        self._state = state
        self._subs: set[_RedisSubscription] = set()

    def _channel(self, key: str) -> str:
        return f"{self._state.prefix}:bus:{key}"

    async def publish(self, key: str, message: dict[str, Any]) -> int:
        return int(await self._state.publisher.publish(self._channel(key), orjson.dumps(message)))

    async def subscribe(self, *keys: str) -> Subscription:
        if not keys:
            raise ValueError("subscribe needs at least one key")
        channels = {self._channel(k).encode(): k for k in keys}
        pubsub = self._state.pubsub_client.pubsub()
        try:
            await pubsub.subscribe(*channels)
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        sub = _RedisSubscription(self, pubsub, channels)
        self._subs.add(sub)
        return sub

    async def aclose(self) -> None:
        for sub in list(self._subs):
            await sub.aclose()
