"""GET on the MCP endpoint (legacy sessions): the standalone stream and resumption (T-HTTP-19..32).

The session's **standalone stream** carries what nobody asked for, never a response (T-HTTP-22,
T-HTTP-23): what server code sends with ``HTTPSession.notify`` / ``StreamableHTTPApp.notify``
(Bus key ``session:<id>``), what ``server.hub`` sends (``notifications/*/list_changed`` to
initialized sessions, ``notifications/resources/updated`` to sessions subscribed to the URI; key
``hub``, filtered by each stream) and ``StreamableHTTPApp.broadcast`` (key ``broadcast``, heard only
while a connection is attached, so its count is the number of connected streams).

It is a logical stream in the ``EventLog`` (ids ``g...:<seq>``), not a connection:

- The process that serves a GET becomes the stream's **holder**: it appends every message for the
  session to the log, with an event id (T-HTTP-27..29), and writes it to the GET's connection. When
  that connection drops, the holder **lingers** (``linger`` seconds, default 300) and goes on
  logging, so a client that comes back with ``GET`` + ``Last-Event-ID`` gets what it missed,
  exactly once, in order, then the live stream (T-HTTP-30, T-HTTP-31), on this or any replica.
- One holder per session: a new GET takes over over the Bus. It subscribes, then publishes a
  ``takeover``; the previous holder (wherever it runs) answers ``released`` after its last append
  and stops, ending its connection. Only then does the new holder read the log, so a message is
  neither lost nor doubled in the hand-over, and each goes to one connection (T-HTTP-26).
- ``GET`` without ``Last-Event-ID`` opens a **new** standalone stream (with a priming event on
  2025-11-25, T-HTTP-11); the previous one is ended in the log (resuming it replays its rest, then
  the GET ends). ``GET`` + ``Last-Event-ID`` of the current stream takes that stream over.
- Bounds: logging starts with the session's first GET, so a session that never opened one logs
  nothing (``notify`` returns False: nobody holds its stream); the holder stops ``linger`` seconds
  after its connection dropped, or when the session is deleted or expires; the log keeps the
  EventLog's limits per stream (``MemoryEventLog``: the newest ``max_events``, ``open_ttl``).

``GET`` + ``Last-Event-ID`` of a POST's stream resumes that stream: the events after the id are
replayed, the response included, then the GET ends; the POST's own connection, if still open, is
told to let go (Bus key ``control:<session>:<stream>``), so each message is written to exactly one
connection (T-HTTP-26).

An id that does not name a stream of *this* session (another session's, a forged or an expired
one) replays nothing and is answered ``400`` (T-HTTP-32): not 404, which would tell the client its
session is gone (T-HTTP-40).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any

from anyport._exceptions import INTERNAL_ERROR
from anyport.protocol import SSE_HEADERS, comment, error_message, message_event, priming_event
from anyport.state import Replay, Subscription, parse_event_id
from anyport.transports.http._asgi import Receive, Send, disconnected
from anyport.transports.http._exchange import (
    DEFAULT_MAX_BUFFERED,
    GET_STREAM,
    POST_STREAM,
    StreamOptions,
    control_key,
    stream_key,
)
from anyport.transports.http._sessions import (
    BROADCAST_KEY,
    HUB_KEY,
    TO_INITIALIZED,
    TO_SUBSCRIBED,
    HTTPSession,
    session_key,
)

__all__ = ["ORPHANED", "GetStreams"]

#: The error a request gets when the replica running it died before it answered.
ORPHANED = "Internal error: the replica serving this request stopped before it answered"

log = logging.getLogger("anyport.http")

#: Seconds a new holder waits for the previous one to acknowledge its takeover (then goes on alone).
RELEASE_WAIT = 2.0

#: Subscriptions being closed in the background (detached holders, holders cancelled before they ran).
_background: set[asyncio.Task[None]] = set()


class _Done(Exception):
    """The stream is over (ended, taken over, session closed, shutdown)."""


class GetStreams:
    """Serves GET streams of legacy sessions and holds their standalone streams; ``close_all`` ends
    them (shutdown)."""

    def __init__(
        self, options: StreamOptions, *, keepalive_interval: float = 15.0, linger: float = 300.0, max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        if linger < 0:
            raise ValueError("linger must be >= 0")
        self.options = options
        #: Frames a standalone stream's connection may fall behind before it is ended (the client
        #: resumes from the event log with ``Last-Event-ID``): a slow reader costs bounded memory.
        self.max_buffered = max_buffered
        self.keepalive_interval = keepalive_interval
        self.linger = linger
        self._stops: set[asyncio.Event] = set()
        self._holders: set[_Holder] = set()
        self._attached = 0

    def __len__(self) -> int:
        """GET connections open in this process."""
        return len(self._stops) + self._attached

    @property
    def holders(self) -> int:
        """Standalone streams held by this process, with or without a connection (lingering)."""
        return len(self._holders)

    def close_all(self) -> None:
        """End every GET connection and stop holding every standalone stream (shutdown); the streams
        stay in the log, so clients resume them elsewhere."""
        for stop in list(self._stops):
            stop.set()
        for holder in list(self._holders):
            holder.close()

    async def aclose(self) -> None:
        self.close_all()
        tasks = [h.task for h in self._holders if h.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def serve(self, session: HTTPSession, last_event_id: str | None, receive: Receive, send: Send) -> bool:
        """Hold one GET connection until it ends; False (nothing sent) when ``last_event_id`` is not ours."""
        if last_event_id is None:
            await self._standalone(session, None, None, receive, send)
            return True
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            return False
        stream_id = parsed[0]
        if stream_id.startswith(POST_STREAM):
            return await self._resume_post(session, stream_id, last_event_id, receive, send)
        if not stream_id.startswith(GET_STREAM):
            return False
        replay = await self.options.events.replay(session.id, last_event_id)
        if replay is None:
            return False
        if replay.ended:
            await _write_replay(replay, send)  # a standalone stream a newer GET replaced: its rest, then the end
            return True
        await self._standalone(session, stream_id, last_event_id, receive, send)
        return True

    # -- the standalone stream ---------------------------------------------------------------------

    async def _standalone(
        self, session: HTTPSession, stream_id: str | None, last_event_id: str | None, receive: Receive, send: Send,
    ) -> None:
        bus, events = self.options.bus, self.options.events
        sid = session.id
        if stream_id is None:
            stream_id = await events.new_stream(sid, prefix=GET_STREAM)
        token = secrets.token_hex(8)
        # Listen first, then announce: whatever is published from now on reaches this holder.
        core = await bus.subscribe(session_key(sid), HUB_KEY)
        live = await bus.subscribe(BROADCAST_KEY)
        listeners = await bus.publish(session_key(sid), {"control": "takeover", "token": token, "stream": stream_id})
        holder = _Holder(
            self, session, stream_id, core, live, token, others=max(0, listeners - 1), resume_from=last_event_id,
        )
        self._holders.add(holder)
        holder.start()
        await self._write(holder, session, receive, send)

    async def _write(self, holder: _Holder, session: HTTPSession, receive: Receive, send: Send) -> None:
        """Write what the holder logs to this GET's connection, until one of them ends."""
        loop = asyncio.get_running_loop()
        gone = loop.create_task(disconnected(receive))
        getter: asyncio.Task[bytes | None] | None = None
        self._attached += 1
        session.attach()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)})
            while True:
                if getter is None:
                    getter = loop.create_task(holder.frames.get())
                done, _ = await asyncio.wait({getter, gone}, timeout=self.keepalive_interval, return_when=asyncio.FIRST_COMPLETED)
                if gone in done:
                    return  # the holder lingers and goes on logging (T-HTTP-30/31)
                if getter not in done:
                    await send({"type": "http.response.body", "body": comment(), "more_body": True})
                    continue
                frame, getter = getter.result(), None
                if frame is None:
                    break  # taken over, session closed, shutdown
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # the client went away while we wrote
        finally:
            self._attached -= 1
            session.detach()  # a client that holds its GET stream is not idle; from now on it may be
            for task in (getter, gone):
                if task is not None:
                    task.cancel()
            holder.detach()

    # -- a POST's stream, resumed ------------------------------------------------------------------

    async def _resume_post(self, session: HTTPSession, stream_id: str, last_event_id: str, receive: Receive, send: Send) -> bool:
        bus, events = self.options.bus, self.options.events
        sid = session.id
        # Listen first, then take over and read the log: nothing falls between the two.
        token = secrets.token_hex(8)
        sub = await bus.subscribe(stream_key(sid, stream_id), control_key(sid, stream_id))
        await bus.publish(control_key(sid, stream_id), {"control": "takeover", "token": token})
        replay = await events.replay(sid, last_event_id)
        if replay is None:
            await sub.aclose()
            return False
        stop = asyncio.Event()
        self._stops.add(stop)
        session.attach()
        try:
            await self._run_post(replay, sub, token, stop, receive, send, sid=sid)
        finally:
            session.detach()
            self._stops.discard(stop)
            await sub.aclose()
        return True

    async def _run_post(
        self, replay: Replay, sub: Subscription, token: str, stop: asyncio.Event, receive: Receive, send: Send, *, sid: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        gone = loop.create_task(disconnected(receive))
        stopped = loop.create_task(stop.wait())
        getter: asyncio.Task[tuple[str, dict[str, Any]]] | None = None
        last_seq = -1

        async def write(body: bytes) -> None:
            await send({"type": "http.response.body", "body": body, "more_body": True})

        # With leases (Redis), look every half lease whether the stream's writer is still alive.
        orphaned = getattr(self.options.events, "orphaned", None)
        wait = self.keepalive_interval if orphaned is None else min(self.keepalive_interval, self.options.lease / 2)

        try:
            await send({"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)})
            for ev in replay.events:
                last_seq = ev.seq
                if ev.message is not None:
                    await write(message_event(ev.message, event_id=ev.id))  # T-HTTP-31
            if replay.ended:
                raise _Done
            while True:
                if getter is None:
                    getter = loop.create_task(sub.get())
                done, _ = await asyncio.wait(
                    {getter, gone, stopped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if gone in done:
                    return
                if stopped in done:
                    raise _Done  # shutdown
                if getter not in done:
                    if orphaned is not None and await self._fail_orphan(orphaned, sid, replay.stream_id, write):
                        raise _Done
                    await write(comment())
                    continue
                try:
                    _key, msg = getter.result()
                except EOFError:
                    raise _Done from None
                getter = None
                control = msg.get("control")
                if control == "takeover":
                    if msg.get("token") != token:
                        raise _Done  # a newer GET holds this stream now
                    continue
                if control in ("closed", "end"):
                    raise _Done  # session deleted / the POST's stream is complete (T-HTTP-17)
                message = msg.get("message")
                event_id = msg.get("id")
                parsed = parse_event_id(event_id) if isinstance(event_id, str) else None
                if not isinstance(message, dict) or parsed is None or parsed[1] <= last_seq:
                    continue  # already replayed from the log: exactly once
                last_seq = parsed[1]
                await write(message_event(message, event_id=event_id))
        except _Done:
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # the client went away while we wrote
        finally:
            for task in (getter, gone, stopped):
                if task is not None:
                    task.cancel()


    async def _fail_orphan(self, orphaned: Any, sid: str, stream_id: str, write: Any) -> bool:
        """The replica writing this stream died (its lease ran out): answer each request it left
        unanswered with an error, logged for other resumers, end the stream. False while it lives."""
        try:
            left = await orphaned(sid, stream_id)
        except Exception:
            log.warning("could not check the writer of stream %s", stream_id, exc_info=True)
            return False
        if left is None:
            return False
        events, bus = self.options.events, self.options.bus
        for request_id in left:
            message = error_message(request_id, {"code": INTERNAL_ERROR, "message": ORPHANED})
            event_id = await events.append(sid, stream_id, message)
            await write(message_event(message, event_id=event_id))
        await events.end_stream(sid, stream_id)
        await bus.publish(stream_key(sid, stream_id), {"control": "end"})
        log.warning("stream %s of session %s: its replica stopped; %d request(s) answered with an error", stream_id, sid[:8], len(left))
        return True


class _Holder:
    """One session's standalone stream, held by this process: it logs what the Bus brings for the
    session and hands each event to the GET connection while one is attached (``frames``).

    Two subscriptions: ``core`` (the session's key and ``HUB_KEY``: notify, the hub's notifications,
    control messages) for the holder's whole life, and ``live`` (``BROADCAST_KEY``) only while a
    connection is attached, so ``StreamableHTTPApp.broadcast`` counts connected streams.
    """

    def __init__(
        self, streams: GetStreams, session: HTTPSession, stream_id: str, core: Subscription, live: Subscription,
        token: str, *, others: int, resume_from: str | None,
    ) -> None:
        self.streams = streams
        self.options = streams.options
        self.session = session
        self.stream_id = stream_id
        self.core = core
        self.live: Subscription | None = live
        self.token = token
        #: Other holders that heard our takeover: each answers ``released`` before we read the log.
        self.others = others
        self.resume_from = resume_from
        #: SSE frames for the attached connection; None ends it.
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.attached = True
        self.detached_at = 0.0
        self.task: asyncio.Task[None] | None = None
        self._core_get: asyncio.Task[tuple[str, dict[str, Any]]] | None = None
        self._live_get: asyncio.Task[tuple[str, dict[str, Any]]] | None = None
        self._closed = False

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.task.add_done_callback(self._finished)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def detach(self) -> None:
        """The connection is gone: go on logging for ``linger`` seconds, without ``broadcast``."""
        if self.attached:
            self.attached = False
            self.detached_at = time.monotonic()
            self.frames = asyncio.Queue()  # what was not written is in the log
            if self.live is not None:
                _spawn_close(self.live)  # wakes the pump: its live getter ends with EOFError

    def _emit(self, frame: bytes, *, replay: bool = False) -> None:
        """A frame for the attached connection. A replay from the log is written whole (the log is
        bounded); live events beyond ``max_buffered`` unwritten frames end the connection."""
        if self.attached:
            if not replay and self.frames.qsize() >= self.streams.max_buffered:
                # The client reads too slowly: end its connection; every event is in the log, so it
                # resumes where it was with Last-Event-ID (T-HTTP-30/31), nothing is lost.
                log.debug("the standalone stream of session %s fell behind: connection ended", self.session.id[:8])
                self.detach()  # drops the frames not written: they are in the log
                self.frames.put_nowait(None)  # the connection's writer ends the response
                return
            self.frames.put_nowait(frame)

    def _finished(self, _task: asyncio.Task[None]) -> None:
        # A callback, not a finally: a task cancelled before it ever ran ends here too.
        self.streams._holders.discard(self)
        self.frames.put_nowait(None)  # ends the attached connection, if any
        for getter in (self._core_get, self._live_get):
            if getter is not None:
                getter.cancel()
        if not self._closed:
            self._closed = True
            for sub in (self.core, self.live):
                if sub is not None:
                    _spawn_close(sub)

    async def _run(self) -> None:
        try:
            pending = await self._handover()
            await self._open()
            for msg in pending:
                await self._handle(msg)
            while True:
                item = await self._next(self.streams.keepalive_interval)
                if item is None:
                    if not self.attached and (
                        self.session.closed or time.monotonic() - self.detached_at >= self.streams.linger
                    ):
                        return  # nobody came back: stop logging (the stream stays resumable in the log)
                    continue
                await self._handle(item[1])
        except _Done:
            return
        except Exception:
            log.warning("the standalone stream of session %s failed", self.session.id[:8], exc_info=True)
        finally:
            self.frames.put_nowait(None)  # end the connection now, not after the clean-up
            for getter in (self._core_get, self._live_get):
                if getter is not None:
                    getter.cancel()
            self._core_get = self._live_get = None
            if not self._closed:
                self._closed = True
                await self.core.aclose()
                if self.live is not None:
                    await self.live.aclose()

    async def _handover(self) -> list[dict[str, Any]]:
        """Wait for our own takeover to come back and for the previous holder's ``released``; the
        messages that arrive meanwhile and are ours (not logged by the previous holder) are returned."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RELEASE_WAIT
        pending: list[dict[str, Any]] = []
        echoed = False
        released = 0
        while not echoed or released < self.others:
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.debug("session %s: the previous holder did not release its stream in time", self.session.id[:8])
                break
            item = await self._next(remaining)
            if item is None:
                continue
            core, msg = item
            control = msg.get("control")
            if not core:
                # broadcast() reaches connected streams at most once: while another holder is being
                # replaced, which of us it reached is not known, so it is left to that one.
                if self.others == 0:
                    pending.append(msg)
            elif control == "takeover":
                if msg.get("token") == self.token:
                    echoed = True
                else:
                    await self._release(msg, stop=echoed)  # older than ours: acknowledge, keep going
            elif control == "released":
                if msg.get("token") == self.token:
                    released += 1
            elif control is not None:
                await self._handle(msg)
            elif echoed or self.others == 0:
                # Before our takeover the previous holder logs what comes (it heard it too); after it, we do.
                pending.append(msg)
        return pending

    async def _open(self) -> None:
        """The start of the connection: the missed events (resumed), or a priming event (new stream)."""
        events = self.options.events
        if self.resume_from is not None:
            replay = await events.replay(self.session.id, self.resume_from)
            if replay is None:
                raise _Done  # the session's events were dropped meanwhile
            for ev in replay.events:
                if ev.message is not None:
                    self._emit(message_event(ev.message, event_id=ev.id), replay=True)  # T-HTTP-31
            if replay.ended:
                raise _Done
            return
        rev = self.session.conn.revision
        if rev is not None and rev.priming_event:
            event_id = await self._append(None)
            self._emit(priming_event(event_id, retry_ms=self.options.retry_ms))  # T-HTTP-11

    async def _handle(self, msg: dict[str, Any]) -> None:
        control = msg.get("control")
        if control is not None:
            if control == "takeover" and msg.get("token") != self.token:
                await self._release(msg, stop=True)  # a newer GET holds the stream now
            elif control == "closed":
                raise _Done  # session deleted
            elif control == "subscriptions":
                uris = msg.get("uris")
                if isinstance(uris, list):
                    self.session.subscriptions = frozenset(u for u in uris if isinstance(u, str))
            return
        message = msg.get("message")
        if not isinstance(message, dict) or not self._wanted(msg):
            return
        event_id = await self._append(message)
        self._emit(message_event(message, event_id=event_id))

    def _wanted(self, msg: dict[str, Any]) -> bool:
        """The hub's fanout filters here, where the session's state is (M-05, F-RES-03)."""
        to = msg.get("to")
        if to == TO_INITIALIZED:
            return self.session.conn.initialized
        if to == TO_SUBSCRIBED:
            return msg.get("uri") in self.session.subscriptions
        return True

    async def _release(self, msg: dict[str, Any], *, stop: bool) -> None:
        if stop and msg.get("stream") != self.stream_id:
            await self.options.events.end_stream(self.session.id, self.stream_id)  # replaced by a new stream
        await self.options.bus.publish(session_key(self.session.id), {"control": "released", "token": msg.get("token")})
        if stop:
            raise _Done

    async def _append(self, message: dict[str, Any] | None) -> str:
        try:
            return await self.options.events.append(self.session.id, self.stream_id, message)
        except KeyError:
            raise _Done from None  # the session's events were dropped (DELETE) or the stream swept

    async def _next(self, timeout: float | None) -> tuple[bool, dict[str, Any]] | None:
        """``(from core, message)``; None after ``timeout`` or when the live subscription ended."""
        loop = asyncio.get_running_loop()
        if self._core_get is None:
            self._core_get = loop.create_task(self.core.get())
        waits = {self._core_get}
        if self.live is not None:
            if self._live_get is None:
                self._live_get = loop.create_task(self.live.get())
            waits.add(self._live_get)
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if self._core_get in done:
            getter, self._core_get = self._core_get, None
            try:
                return True, getter.result()[1]
            except EOFError:
                raise _Done from None
        if self._live_get is not None and self._live_get in done:
            getter, self._live_get = self._live_get, None
            try:
                return False, getter.result()[1]
            except EOFError:
                self.live = None  # detached: broadcast() is for connected streams only
        return None


def _spawn_close(sub: Subscription) -> None:
    task = asyncio.get_running_loop().create_task(sub.aclose())
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _write_replay(replay: Replay, send: Send) -> None:
    with contextlib.suppress(OSError):
        await send({"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)})
        for ev in replay.events:
            if ev.message is not None:
                await send({"type": "http.response.body", "body": message_event(ev.message, event_id=ev.id), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
