"""This process's live legacy sessions (``LiveSessions``): create, look up, restore from a shared
record, save, expire, delete, and give their memory back after many ended.

It writes each record to the state store (``anyport.state.SessionStore``) and, when a request names
a session this process has never seen, rebuilds the live part from the record (``restore``), so
sessions survive without sticky routing (DESIGN.md §4). See ``_sessions`` for the live part itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from anyport.protocol import ServerConnection
from anyport.runtime._heap import Releaser, prepare as prepare_trim, trim_heap
from anyport.runtime._hub import NotificationHub
from anyport.state import Bus, EventLog, SessionRecord, SessionStore
from anyport.transports.http._sessions import (
    _EMPTY_TABLE_BYTES,
    _NO_URIS,
    SESSIONS_KEY,
    BusFanout,
    HTTPSession,
    _one_copy,
    inbox_key,
    new_session_id,
    record_of,
    session_key,
)

__all__ = ["LiveSessions", "owns"]

log = logging.getLogger("anyport.http")


class LiveSessions:
    """This process's live sessions, with a sliding idle timeout and a cap on their number.

    - ``records``: the shared store where the plain-data records go (Redis, or one in-memory store
      several apps share). It is not owned: evicting an idle session here only drops the live part;
      the store's TTL decides. Default None: the sessions live in this process only and nothing
      but the live session holds their state (local expiry and DELETE end them for good).
    - ``restore``: rebuilds the ``ServerConnection`` of a record this process has not seen (a
      session begun on another replica); without it such sessions are unknown (404).
    - ``bus`` / ``events``: given to sessions (``notify``; answers and cancellations across replicas)
      and told about ended sessions: a DELETE here also ends the live part on the replicas busy with
      the session (their handlers stop, their waiters fail); idle ones find the record gone.
    - ``hub``: each live session is registered there as a peer (reached through ``fanout``) and
      unregistered when it ends here; its resource subscriptions go to the record.

    A session is idle when no client connection is open on its streams here and no request came
    for ``idle_timeout`` seconds (``HTTPSession.expired``). Idle sessions end when they are looked
    up, all at once when the cap is reached, on ``sweep()`` (``StreamableHTTPApp`` runs it on a
    timer, so no traffic is needed) and, with ``sweep_every``, every so often when sessions are
    created or looked up.

    With a shared store and a bus, a live session's record is read again (sliding its TTL, taking
    other replicas' changes) at most every ``recheck`` seconds, not on every request: every replica
    listens on ``SESSIONS_KEY``, where a DELETE anywhere and every record change are announced, and
    drops the live part, or re-reads the record, as the announcement arrives. A request racing the
    announcement of a DELETE it follows (within a millisecond, on another replica) may still be
    served; every later one gets 404. ``recheck=0`` reads the record on every request.
    """

    def __init__(
        self,
        *,
        idle_timeout: float = 1800.0,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        records: SessionStore | None = None,
        restore: Callable[[SessionRecord], ServerConnection | None] | None = None,
        bus: Bus | None = None,
        events: EventLog | None = None,
        hub: NotificationHub | None = None,
        fanout: BusFanout | None = None,
        sweep_every: float | None = None,
        recheck: float = 1.0,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self.clock = clock
        #: The shared store of session records; None: the sessions live in this process only, and
        #: the live session is the only copy of its state (no record is kept).
        self.records: SessionStore | None = records
        self.restore = restore
        self.bus = bus
        self.events = events
        self.hub = hub
        self.fanout = fanout
        self._sessions: dict[str, HTTPSession] = {}
        self.owners: dict[str, str] = {}  # session id -> key of the principal that opened it (``owns``)
        self._sweep_every = float("inf") if sweep_every is None else max(0.0, sweep_every)
        self._last_sweep = clock()
        self._pending: set[asyncio.Task[None]] = set()
        #: The sessions' inbox listeners and hand-ons (see ``HTTPSession``).
        self.background: set[asyncio.Task[Any]] = set()
        #: Sessions ended since memory was last given back, and the timer that will (``_release``).
        self._releaser = Releaser(self._release)
        self.recheck = recheck
        #: Listens on ``SESSIONS_KEY`` (shared store and bus only); ``_announced``: subscribed now.
        self._announcements: asyncio.Task[None] | None = None
        self._announced = False
        self._origin = secrets.token_hex(8)  # not id(self): forked workers may share addresses
        #: Called with each session that ends here for good (DELETE, idle expiry): metrics.
        self.on_end: Callable[[HTTPSession], None] | None = None

    @property
    def local_only(self) -> bool:
        """No shared store: ending a session here ends it everywhere (its events go too)."""
        return self.records is None

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def ids(self) -> list[str]:
        """Ids of the live sessions of this process."""
        return list(self._sessions)

    def _new(
        self, session_id: str, conn: ServerConnection, subscriptions: Iterable[str] = (), *, first: bool = False,
    ) -> HTTPSession:
        if not self._sessions:
            prepare_trim()  # before the first session: see anyport.runtime._heap.prepare (a no-op after)
        session = HTTPSession(session_id, conn, self, subscriptions=subscriptions, first=first)
        if self.hub is not None:
            self.hub.register(session, subscriptions=session.subscriptions)
        return session

    def _changed(self, session: HTTPSession) -> None:
        """Subscriptions changed (the hub's hook): write the record, tell the session's GET stream."""
        task = asyncio.get_running_loop().create_task(self._publish_subscriptions(session))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish_subscriptions(self, session: HTTPSession) -> None:
        try:
            await self.save(session)
            if self.bus is not None and not session.closed:
                uris = sorted(session.subscriptions)
                await self.bus.publish(session_key(session.id), {"control": "subscriptions", "uris": uris})
        except Exception:
            log.warning("could not store the subscriptions of session %s", session.id[:8], exc_info=True)

    def _drop(self, session: HTTPSession) -> None:
        """Drop the live part (also the hook for a session another replica ended)."""
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
            self.owners.pop(session.id, None)
            self._releaser.ended(last=not self._sessions and sys.getsizeof(self._sessions) > _EMPTY_TABLE_BYTES)
        session.close()
        if self.hub is not None:
            self.hub.unregister(session.id, session)

    def _release(self) -> None:
        """Many sessions ended: give their memory back. The registries' tables shrink to what is
        left (Python dicts never shrink by themselves), and the C heap returns its free pages to
        the OS (``anyport.runtime._heap.trim_heap``)."""
        self._sessions = dict(self._sessions)
        self.owners = dict(self.owners)
        if self.hub is not None:
            self.hub.compact()
        # On the loop, not in a worker thread: a first thread would cost more memory (its stack
        # and its own malloc arena) than this gives back. A heap of some tens of MiB takes ~1 ms.
        trim_heap()

    async def _end(self, session: HTTPSession, *, forget: bool) -> None:
        """Drop the live part; with ``forget`` also the record, its events, its GET stream and the live
        parts other replicas are busy with."""
        self._drop(session)
        if forget:
            if self.on_end is not None:
                self.on_end(session)
            await self._forget(session.id)

    async def _forget(self, session_id: str, *, record: bool = True) -> None:
        if record and self.records is not None:
            await self.records.delete(session_id)
        if self.events is not None:
            await self.events.drop_session(session_id)
        if self.bus is not None:
            await self._announce(session_id, "closed")
            await self.bus.publish(session_key(session_id), {"control": "closed"})
            await self.bus.publish(inbox_key(session_id), {"type": "closed"})

    async def sweep(self) -> int:
        """End every expired session now (``StreamableHTTPApp`` calls it on a timer); how many ended."""
        self._last_sweep = self.clock()
        expired = [s for s in self._sessions.values() if s.expired(self.idle_timeout)]
        for session in expired:
            await self._end(session, forget=self.local_only)
        if expired:
            log.debug("%d idle sessions ended", len(expired))
        return len(expired)

    async def _maybe_sweep(self) -> None:
        if self.clock() - self._last_sweep >= self._sweep_every:
            await self.sweep()

    async def create(self, conn: ServerConnection, owner: str | None = None) -> HTTPSession | None:
        """Register a new session (opened by ``owner``, see ``owns``); None when at capacity."""
        await self._maybe_sweep()
        if len(self._sessions) >= self.max_sessions:
            await self.sweep()
            if len(self._sessions) >= self.max_sessions:
                return None
        session_id = new_session_id()
        record = None
        if self.records is not None:
            record = record_of(session_id, conn)
            record.principal = owner
            if not await self.records.create(record):
                return None
        # Sessions of the same client software declare the same capabilities and clientInfo: they
        # share one copy of each (the session's view of them is read-only).
        conn.client_capabilities = _one_copy(conn.client_capabilities)
        conn.client_info = _one_copy(conn.client_info)
        session = self._new(session_id, conn, first=True)
        session._saved = record
        self._sessions[session.id] = session
        _bind(self.owners, session.id, owner)
        return session

    async def get(self, session_id: str) -> HTTPSession | None:
        """The live session, or None when unknown, deleted or expired (then: 404, T-HTTP-39)."""
        if self.clock() - self._last_sweep >= self._sweep_every:
            await self.sweep()
        session = self._sessions.get(session_id)
        if session is not None and session.expired(self.idle_timeout):
            await self._end(session, forget=self.local_only)
            return None
        if self.records is None:
            if session is not None:
                session.touch()
            return session
        if self._announcements is None:
            self._listen_for_announcements()
        now = self.clock()
        if session is not None and self._announced and now - session.checked < self.recheck:
            session.last_seen = now  # a DELETE or a change elsewhere would have been announced
            return session
        record = await self.records.get(session_id)  # also slides a shared store's TTL
        if record is None:
            if session is not None:  # deleted elsewhere (another replica answered a DELETE)
                await self._end(session, forget=False)
            return None
        if session is None:
            session = self._restore(record)
            if session is None:
                return None
        elif record != session._saved:
            _sync(self.hub, session, record)  # another replica changed it (initialized, log level, subscriptions)
        session.touch()
        session.checked = session.last_seen
        return session

    def _listen_for_announcements(self) -> None:
        if self.bus is not None and self.recheck > 0:
            self._announcements = asyncio.get_running_loop().create_task(self._announced_sessions(self.bus))

    async def _announced_sessions(self, bus: Bus) -> None:
        """Drop the live part of a session DELETEd elsewhere; re-read a record changed elsewhere."""
        while True:
            try:
                sub = await bus.subscribe(SESSIONS_KEY)
            except Exception as exc:
                log.warning("cannot hear other replicas' session announcements yet: %s", exc)
                await asyncio.sleep(1.0)
                continue
            self._announced = True
            try:
                while True:
                    _key, msg = await sub.get()
                    session = self._sessions.get(msg.get("id"))  # type: ignore[arg-type]
                    if session is None:
                        continue
                    if msg.get("event") == "closed":
                        self._drop(session)
                    elif msg.get("origin") != self._origin:
                        session.checked = float("-inf")  # read the record on its next request
            except EOFError:
                pass  # the bus connection broke: until subscribed again, read the record every time
            finally:
                self._announced = False
                with contextlib.suppress(Exception):
                    await sub.aclose()
            await asyncio.sleep(0.5)

    async def _announce(self, session_id: str, event: str) -> None:
        if self.bus is not None and self.records is not None:
            await self.bus.publish(SESSIONS_KEY, {"id": session_id, "event": event, "origin": self._origin})

    def _restore(self, record: SessionRecord) -> HTTPSession | None:
        if self.restore is None or len(self._sessions) >= self.max_sessions:
            return None
        conn = self.restore(record)
        if conn is None:
            return None
        session = self._new(record.id, conn, record.subscriptions)
        session._saved = record
        self._sessions[record.id] = session
        _bind(self.owners, record.id, record.principal)
        log.debug("session %s restored from its record", record.id[:8])
        return session

    async def save(self, session: HTTPSession) -> None:
        """Write the record when it changed (log level, initialized, subscriptions)."""
        if self.records is None:
            return  # the live session is the only copy
        record = session.record()
        record.principal = self.owners.get(session.id)
        if record != session._saved and not session.closed:
            session._saved = record
            await self.records.put(record)
            await self._announce(session.id, "changed")

    async def delete(self, session_id: str) -> HTTPSession | None:
        """Forget the session everywhere and return its live part (closed), or None when not live here."""
        session = self._sessions.get(session_id)
        if session is not None:
            await self._end(session, forget=True)
            return session
        if self.records is not None and await self.records.delete(session_id):
            await self._forget(session_id, record=False)
        return None

    async def aclose(self) -> None:
        """Close every live session (server shutdown); without a shared store their events go too."""
        announcements, self._announcements = self._announcements, None
        if announcements is not None:
            announcements.cancel()
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=5)  # subscriptions still being stored
        self._releaser.cancel()
        sessions, self._sessions = self._sessions, {}
        self.owners = {}
        for session in sessions.values():
            session.close()
            if self.hub is not None:
                self.hub.unregister(session.id, session)
            if self.local_only and self.events is not None:
                await self.events.drop_session(session.id)
        for task in list(self._pending):
            task.cancel()
        if self.background:
            # Inbox listeners stopping (their subscriptions closed) and answers being handed on.
            await asyncio.wait(list(self.background), timeout=5)
        for task in list(self.background):
            task.cancel()


def _sync(hub: NotificationHub | None, session: HTTPSession, record: SessionRecord) -> None:
    """Take what another replica changed in the record (initialized, log level, subscriptions)."""
    conn = session.conn
    conn.log_level = record.log_level
    conn.initialized = conn.initialized or record.initialized
    if set(record.subscriptions) != session.subscriptions:
        session.subscriptions = frozenset(record.subscriptions) or _NO_URIS
        if hub is not None and hub.peer(session.id) is session:
            hub.set_subscriptions(session.id, session.subscriptions)
    session._saved = record


def _bind(owners: dict[str, str], session_id: str, owner: str | None) -> None:
    if owner is not None:
        owners[session_id] = owner


def owns(sessions: LiveSessions, session_id: str, owner: str | None) -> bool:
    """Whether ``owner`` (a principal's key; None without auth) may use the session: only the
    principal that opened it; to anyone else it is unknown (404, A-37, T-HTTP-34)."""
    return sessions.owners.get(session_id) == owner
