"""Legacy-era Streamable HTTP sessions (T-HTTP-33..42) and where they are kept.

A session is the protocol state of one ``initialize``d client (its ``ServerConnection``: revision,
capabilities, log level, ids of server->client requests in flight) plus what only the process
that runs its handlers can hold: the handler tasks (so ``notifications/cancelled`` can stop them)
and the futures waiting for the client's answers to server->client requests.

``SessionStore`` is the seam for other backends: the in-memory store keeps live objects; a shared
store (Redis) will keep the serialisable record and route answers over a bus (DESIGN.md §4).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from anyport._exceptions import ConnectionClosedError, error_from_response
from anyport.protocol import ResponseReceived, ServerConnection

__all__ = ["HTTPSession", "MemorySessionStore", "SessionStore", "new_session_id"]


def new_session_id() -> str:
    """A cryptographically random id of visible ASCII only (T-HTTP-34, T-HTTP-35)."""
    return secrets.token_urlsafe(32)


class HTTPSession:
    """One legacy session: protocol state plus this process's tasks and waiters."""

    __slots__ = ("_clock", "closed", "conn", "created", "id", "last_seen", "tasks", "waiters")

    def __init__(self, session_id: str, conn: ServerConnection, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.id = session_id
        self.conn = conn
        self._clock = clock
        self.created = self.last_seen = clock()
        self.tasks: dict[str | int, asyncio.Task[Any]] = {}
        self.waiters: dict[str | int, asyncio.Future[Any]] = {}
        self.closed = False

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


class SessionStore(Protocol):
    """Where sessions live. Every call may do I/O, so every call is async."""

    async def create(self, conn: ServerConnection) -> HTTPSession | None:
        """Register a new session for an initialized connection; None when at capacity."""
        ...

    async def get(self, session_id: str) -> HTTPSession | None:
        """The live session, or None when unknown, deleted or expired (then: 404, T-HTTP-39)."""
        ...

    async def delete(self, session_id: str) -> HTTPSession | None:
        """Forget the session and return it (closed), or None when it did not exist."""
        ...

    async def aclose(self) -> None:
        """Close every session (server shutdown)."""
        ...


class MemorySessionStore:
    """Sessions in this process's memory, with a sliding idle timeout and a cap on their number."""

    def __init__(
        self,
        *,
        idle_timeout: float = 1800.0,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: dict[str, HTTPSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def _sweep(self) -> None:
        for sid in [sid for sid, s in self._sessions.items() if s.expired(self.idle_timeout)]:
            self._sessions.pop(sid).close()

    async def create(self, conn: ServerConnection) -> HTTPSession | None:
        if len(self._sessions) >= self.max_sessions:
            self._sweep()
            if len(self._sessions) >= self.max_sessions:
                return None
        session = HTTPSession(new_session_id(), conn, clock=self._clock)
        self._sessions[session.id] = session
        return session

    async def get(self, session_id: str) -> HTTPSession | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expired(self.idle_timeout):
            del self._sessions[session_id]
            session.close()
            return None
        session.touch()
        return session

    async def delete(self, session_id: str) -> HTTPSession | None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            session.close()
        return session

    async def aclose(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            session.close()
