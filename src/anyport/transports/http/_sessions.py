"""Legacy-era Streamable HTTP sessions (T-HTTP-33..42): the live part, kept by this process.

A session has two halves (DESIGN.md §4):

- its **record** (``anyport.state.SessionRecord``: revision, client capabilities and info, log
  level, subscriptions), plain data in a ``anyport.state.SessionStore`` that any replica can load;
- its **live** part, which only the process running its handlers can hold: the protocol state
  machine (``ServerConnection``), the handler tasks (so ``notifications/cancelled`` can stop them)
  and the futures waiting for the client's answers to server->client requests.

``MemorySessionStore`` here is the registry of this process's live sessions. It writes each
record to the state store and, when a request names a session this process has never seen, rebuilds
the live part from the record (``restore``), so sessions survive without sticky routing.

Server code reaches a session's client with ``HTTPSession.notify(method, params)``: the message
goes over the ``Bus`` to whichever process holds the session's standalone GET stream.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from anyport._exceptions import ConnectionClosedError, error_from_response
from anyport.protocol import ResponseReceived, ServerConnection, notification
from anyport.state import Bus, EventLog, MemorySessionStore as MemoryRecordStore, SessionRecord, SessionStore

__all__ = [
    "BROADCAST_KEY",
    "HTTPSession",
    "MemorySessionStore",
    "SessionStore",
    "new_session_id",
    "record_of",
    "session_key",
]

log = logging.getLogger("anyport.http")

#: Bus key every standalone GET stream listens on, for messages meant for every session.
BROADCAST_KEY = "broadcast"


def session_key(session_id: str) -> str:
    """Bus key of a session's standalone GET stream."""
    return f"session:{session_id}"


def new_session_id() -> str:
    """A cryptographically random id of visible ASCII only (T-HTTP-34, T-HTTP-35)."""
    return secrets.token_urlsafe(32)


def record_of(session_id: str, conn: ServerConnection, subscriptions: Any = ()) -> SessionRecord:
    """The plain-data record of a live connection."""
    return SessionRecord(
        id=session_id,
        version=conn.revision.version if conn.revision is not None else None,
        client_capabilities=dict(conn.client_capabilities),
        client_info=conn.client_info,
        log_level=conn.log_level,
        initialized=conn.initialized,
        subscriptions=sorted(subscriptions),
    )


class HTTPSession:
    """One legacy session: protocol state plus this process's tasks and waiters."""

    __slots__ = (
        "_clock", "_saved", "bus", "closed", "conn", "created", "id", "last_seen", "subscriptions", "tasks", "waiters",
    )

    def __init__(
        self, session_id: str, conn: ServerConnection, *, clock: Callable[[], float] = time.monotonic,
        bus: Bus | None = None, subscriptions: Any = (),
    ) -> None:
        self.id = session_id
        self.conn = conn
        self.bus = bus
        self._clock = clock
        self.created = self.last_seen = clock()
        self.tasks: dict[str | int, asyncio.Task[Any]] = {}
        self.waiters: dict[str | int, asyncio.Future[Any]] = {}
        #: Resource URIs the client subscribed to (persisted in the record; kept by server code).
        self.subscriptions: set[str] = set(subscriptions)
        self.closed = False
        self._saved: SessionRecord | None = None

    def record(self) -> SessionRecord:
        return record_of(self.id, self.conn, self.subscriptions)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> bool:
        """Send a notification to the client on the session's standalone GET stream (T-HTTP-19..22).

        It travels over the Bus to whichever process holds that stream, and is delivered on exactly
        one stream (T-HTTP-26). False when the session is closed or no GET stream is open: then
        nothing is delivered (the client polls lists itself).
        """
        if self.closed or self.bus is None:
            return False
        return await self.bus.publish(session_key(self.id), {"message": notification(method, params)}) > 0

    def touch(self) -> None:
        self.last_seen = self._clock()

    @property
    def busy(self) -> bool:
        """Handlers are running or waiting for the client: the session is not idle."""
        return bool(self.tasks or self.waiters)

    def expired(self, idle_timeout: float) -> bool:
        return not self.busy and self._clock() - self.last_seen > idle_timeout

    def track(self, request_id: str | int, task: asyncio.Task[Any]) -> None:
        """Remember a running handler so a ``notifications/cancelled`` POST can reach it."""
        self.tasks[request_id] = task

        def done(_t: asyncio.Task[Any]) -> None:
            if self.tasks.get(request_id) is task:
                del self.tasks[request_id]

        task.add_done_callback(done)

    def cancel(self, request_id: str | int) -> None:
        task = self.tasks.get(request_id)
        if task is not None:
            task.cancel()

    def expect(self, request_id: str | int) -> asyncio.Future[Any]:
        """A future for the client's answer to our request ``request_id``."""
        if self.closed:
            raise ConnectionClosedError("the session is closed")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters[request_id] = fut
        return fut

    def deliver(self, ev: ResponseReceived) -> None:
        """The client's answer (a separate POST) to one of our requests."""
        fut = self.waiters.pop(ev.id, None)
        if fut is None or fut.done():
            return
        if ev.error is not None:
            fut.set_exception(error_from_response(ev.error))
        else:
            fut.set_result(ev.result)

    def close(self) -> None:
        """Stop everything the session runs (DELETE, expiry, shutdown)."""
        if self.closed:
            return
        self.closed = True
        for task in list(self.tasks.values()):
            task.cancel()
        for fut in self.waiters.values():
            if not fut.done():
                fut.set_exception(ConnectionClosedError("the session was terminated"))
        self.waiters.clear()


class MemorySessionStore:
    """This process's live sessions, with a sliding idle timeout and a cap on their number.

    - ``records``: where the plain-data records go. Default: a private in-memory store, owned
      by this registry (local expiry and DELETE remove the record too). A shared store (Redis) is
      not owned: evicting an idle session here only drops the live part; the store's TTL decides.
    - ``restore``: rebuilds the ``ServerConnection`` of a record this process has not seen (a
      session begun on another replica); without it such sessions are unknown (404).
    - ``bus`` / ``events``: given to sessions (``notify``) and told about ended sessions.
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
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self._clock = clock
        self.owns_records = records is None
        self.records: SessionStore = records if records is not None else MemoryRecordStore(ttl=None)
        self.restore = restore
        self.bus = bus
        self.events = events
        self._sessions: dict[str, HTTPSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def ids(self) -> list[str]:
        """Ids of the live sessions of this process."""
        return list(self._sessions)

    async def _end(self, session: HTTPSession, *, forget: bool) -> None:
        """Drop the live part; with ``forget`` also the record, its events and its GET stream."""
        self._sessions.pop(session.id, None)
        session.close()
        if forget:
            await self.records.delete(session.id)
            if self.events is not None:
                await self.events.drop_session(session.id)
            if self.bus is not None:
                await self.bus.publish(session_key(session.id), {"control": "closed"})

    async def _sweep(self) -> None:
        for session in [s for s in self._sessions.values() if s.expired(self.idle_timeout)]:
            await self._end(session, forget=self.owns_records)

    async def create(self, conn: ServerConnection) -> HTTPSession | None:
        """Register a new session for an initialized connection; None when at capacity."""
        if len(self._sessions) >= self.max_sessions:
            await self._sweep()
            if len(self._sessions) >= self.max_sessions:
                return None
        session = HTTPSession(new_session_id(), conn, clock=self._clock, bus=self.bus)
        record = session.record()
        if not await self.records.create(record):
            return None
        session._saved = record
        self._sessions[session.id] = session
        return session

    async def get(self, session_id: str) -> HTTPSession | None:
        """The live session, or None when unknown, deleted or expired (then: 404, T-HTTP-39)."""
        session = self._sessions.get(session_id)
        if session is not None and session.expired(self.idle_timeout):
            await self._end(session, forget=self.owns_records)
            return None
        record = await self.records.get(session_id)  # also slides a shared store's TTL
        if record is None:
            if session is not None:  # deleted elsewhere (another replica answered a DELETE)
                await self._end(session, forget=False)
            return None
        if session is None:
            session = self._restore(record)
            if session is None:
                return None
        session.touch()
        return session

    def _restore(self, record: SessionRecord) -> HTTPSession | None:
        if self.restore is None or len(self._sessions) >= self.max_sessions:
            return None
        conn = self.restore(record)
        if conn is None:
            return None
        session = HTTPSession(record.id, conn, clock=self._clock, bus=self.bus, subscriptions=record.subscriptions)
        session._saved = record
        self._sessions[record.id] = session
        log.debug("session %s restored from its record", record.id[:8])
        return session

    async def save(self, session: HTTPSession) -> None:
        """Write the record when it changed (log level, initialized, subscriptions)."""
        record = session.record()
        if record != session._saved and not session.closed:
            session._saved = record
            await self.records.put(record)

    async def delete(self, session_id: str) -> HTTPSession | None:
        """Forget the session everywhere and return its live part (closed), or None when not live here."""
        session = self._sessions.get(session_id)
        if session is not None:
            await self._end(session, forget=True)
            return session
        if await self.records.delete(session_id):
            if self.events is not None:
                await self.events.drop_session(session_id)
            if self.bus is not None:
                await self.bus.publish(session_key(session_id), {"control": "closed"})
        return None

    async def aclose(self) -> None:
        """Close every live session (server shutdown); an owned record store forgets them too."""
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            session.close()
            if self.owns_records:
                await self.records.delete(session.id)
                if self.events is not None:
                    await self.events.drop_session(session.id)
