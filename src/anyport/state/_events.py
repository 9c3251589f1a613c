"""The event log: SSE events with ids, per session and stream, for ``Last-Event-ID`` resumption.

An event id is ``<stream-id>:<seq>`` (T-HTTP-29): the stream it belongs to is readable from the id,
so a resumed GET replays exactly that stream and no other (T-HTTP-32). Stream ids are random and
minted per session, so ids are unique across every stream of a session (T-HTTP-28), and a lookup
is always scoped to the session asking: an id of another session finds nothing.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

__all__ = ["EventLog", "MemoryEventLog", "Replay", "StoredEvent", "format_event_id", "parse_event_id"]


def format_event_id(stream_id: str, seq: int) -> str:
    return f"{stream_id}:{seq}"


def parse_event_id(event_id: str) -> tuple[str, int] | None:
    """``(stream_id, seq)`` of an id we minted, or None for anything else."""
    stream_id, sep, seq = event_id.strip().rpartition(":")
    if not sep or not stream_id or not seq.isascii() or not seq.isdigit() or len(seq) > 18:
        return None
    return stream_id, int(seq)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event: its id and JSON-RPC message (None for a priming event, which has no data)."""

    id: str
    message: dict[str, Any] | None

    @property
    def seq(self) -> int:
        parsed = parse_event_id(self.id)
        return parsed[1] if parsed is not None else -1


@dataclass(slots=True)
class Replay:
    """What followed an event id on its stream, and whether that stream has ended."""

    stream_id: str
    events: list[StoredEvent] = field(default_factory=list)
    ended: bool = False


class EventLog(Protocol):
    async def new_stream(self, session_id: str, *, prefix: str = "") -> str:
        """A fresh stream id for ``session_id``: ``prefix`` + random (no ``:``; unique in the session)."""
        ...

    async def append(self, session_id: str, stream_id: str, message: dict[str, Any] | None) -> str:
        """Store one event (``None``: a priming event) and return its id ``<stream-id>:<seq>``."""
        ...

    async def replay(self, session_id: str, last_event_id: str) -> Replay | None:
        """The events after ``last_event_id`` on its stream, oldest first; None when that id does not
        name a stream of ``session_id`` (another session's id, a forged or an expired one)."""
        ...

    async def end_stream(self, session_id: str, stream_id: str) -> None:
        """The stream is complete (its responses were all sent): resumers get the rest, then the end."""
        ...

    async def drop_session(self, session_id: str) -> None:
        """Forget every stream of the session (DELETE, expiry)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Stream:
    #: ``(seq, event id, the message as JSON)``: bytes, not a copied dict, so a stream kept for
    #: resumption is a few untracked objects for the garbage collector, not a tree of dicts.
    events: deque[tuple[int, str, bytes | None]]
    seq: int = 0
    ended: bool = False
    touched: float = 0.0


class MemoryEventLog:
    """Events in this process's memory.

    ``max_events`` per stream (the oldest are trimmed); an ended stream is dropped ``ttl`` seconds
    after its last use, an open one after ``open_ttl`` (swept when new streams open); at most
    ``max_streams`` per session (the oldest are dropped).
    """

    def __init__(
        self, *, max_events: int = 1000, ttl: float = 600.0, open_ttl: float = 86_400.0, max_streams: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_events = max_events
        self.ttl = ttl
        self.open_ttl = max(open_ttl, ttl)
        self.max_streams = max_streams
        self._clock = clock
        self._sessions: dict[str, dict[str, _Stream]] = {}
        self._last_sweep = clock()
        # Stream ids: a random part per log and a counter (no urandom call per stream). They need
        # to be unique, not secret: a Last-Event-ID only ever replays its own session's streams.
        self._id_base = secrets.token_urlsafe(6)
        self._next_id = 0

    def __len__(self) -> int:
        """Streams held, over all sessions."""
        return sum(len(s) for s in self._sessions.values())

    def _sweep(self) -> None:
        now = self._clock()
        if now - self._last_sweep < min(self.ttl, 10.0):
            return
        self._last_sweep = now
        for sid in list(self._sessions):
            streams = self._sessions[sid]
            for name in [n for n, st in streams.items() if now - st.touched > (self.ttl if st.ended else self.open_ttl)]:
                del streams[name]
            if not streams:
                del self._sessions[sid]

    async def new_stream(self, session_id: str, *, prefix: str = "") -> str:
        self._sweep()
        streams = self._sessions.setdefault(session_id, {})
        while len(streams) >= self.max_streams:
            # The oldest ended stream, else the oldest one (dicts keep insertion order).
            victim = next((n for n, st in streams.items() if st.ended), next(iter(streams)))
            del streams[victim]
        self._next_id += 1
        name = f"{prefix}{self._id_base}{self._next_id:x}"
        streams[name] = _Stream(deque(maxlen=self.max_events), touched=self._clock())
        return name

    def _stream(self, session_id: str, stream_id: str) -> _Stream | None:
        streams = self._sessions.get(session_id)
        return None if streams is None else streams.get(stream_id)

    async def append(self, session_id: str, stream_id: str, message: dict[str, Any] | None) -> str:
        st = self._stream(session_id, stream_id)
        if st is None:
            # The stream was swept or its session dropped: keep the id unique, store nothing.
            raise KeyError(f"no stream {stream_id!r} in session {session_id[:8]!r}")
        seq = st.seq
        st.seq = seq + 1
        st.touched = self._clock()
        event_id = format_event_id(stream_id, seq)
        payload = None if message is None else _compact(orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS))
        st.events.append((seq, event_id, payload))
        return event_id

    async def replay(self, session_id: str, last_event_id: str) -> Replay | None:
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            return None
        stream_id, seq = parsed
        st = self._stream(session_id, stream_id)
        if st is None or seq >= st.seq:
            return None
        st.touched = self._clock()
        events = [StoredEvent(eid, None if p is None else orjson.loads(p)) for n, eid, p in st.events if n > seq]
        return Replay(stream_id, events, st.ended)

    async def end_stream(self, session_id: str, stream_id: str) -> None:
        st = self._stream(session_id, stream_id)
        if st is not None:
            st.ended = True
            st.touched = self._clock()

    async def drop_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def aclose(self) -> None:
        self._sessions.clear()


def _compact(data: bytes) -> bytes:
    """A copy of ``data`` that owns exactly its size. orjson 3.12+ hands back bytes that keep the
    whole allocation it wrote into (at least 4 KiB; 1,000 logged 150-byte progress events held 4 MiB):
    what is kept for long is copied once."""
    return bytes(memoryview(data))
