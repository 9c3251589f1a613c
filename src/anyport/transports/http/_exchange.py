"""One POST that carries requests: run their handlers and write what they produce.

The answer is ``application/json`` (the final message, or a 2025-03-26 batch of them) or an SSE
stream that carries the handlers' notifications, and on legacy sessions their server->client
requests, before the final responses (T-HTTP-10, T-HTTP-14, T-HTTP-15, T-HTTP-17, T-H26-05..07).

Closing the response stream cancels the handlers on 2026-07-28 (T-H26-11); on legacy revisions
it does not (T-HTTP-18): they run on, and ``notifications/cancelled`` or DELETE can stop them.

On a legacy session the SSE stream is resumable (T-HTTP-27..31): it gets a stream id from the
``EventLog``, every event carries the id ``<stream-id>:<seq>`` and is appended to the log before it
is written, a 2025-11-25 stream opens with a priming event (T-HTTP-11), and each event is also
published on the Bus key ``stream_key(session, stream)`` for a GET that resumed the stream. When the
connection drops (or is closed early for polling, T-HTTP-12, or taken over by a resuming GET) the
exchange goes on logging and publishing until every response is out, then ends the stream.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anyport._exceptions import (
    BrokenConnectionError,
    InternalError,
)
from anyport.limits import Limits
from anyport.protocol import (
    SSE_HEADERS,
    CancelRequested,
    Event,
    IncomingRequest,
    Reply,
    ResponseReceived,
    ServerConnection,
    comment,
    dumps,
    message_event,
    notification,
    priming_event,
    request,
    retry_field,
    status_for,
)
from anyport.runtime import answer_inline, await_answer
from anyport.state import Bus, EventLog, Subscription
from anyport.transports.http._sessions import HTTPSession

if TYPE_CHECKING:
    from anyport.runtime import Application

__all__ = ["ASGIMessage", "Exchange", "ExchangeOutlet", "answer_at_once", "resumable", "Receive", "Send", "GET_STREAM", "POST_STREAM", "StreamOptions", "control_key", "disconnected", "send_body", "send_json", "stream_key"]

log = logging.getLogger("anyport.http")

ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]

#: Stream-id prefixes: a POST's response stream, or a session's standalone GET stream.
POST_STREAM = "p"
GET_STREAM = "g"


def stream_key(session_id: str, stream_id: str) -> str:
    """Bus key on which a resumable stream's events are published for a resuming GET."""
    return f"stream:{session_id}:{stream_id}"


def control_key(session_id: str, stream_id: str) -> str:
    """Bus key on which a resuming GET tells the current holder of a stream to let go."""
    return f"control:{session_id}:{stream_id}"


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """Resumability of legacy-session SSE streams (T-HTTP-11..13, T-HTTP-27..31)."""

    events: EventLog
    bus: Bus
    #: ``retry:`` in milliseconds, sent in the priming event and before an early close (T-HTTP-13).
    retry_ms: int | None = None
    #: Close a POST stream's connection this many seconds after it opened (0: right after the
    #: priming event); the stream stays logically open and the client resumes with GET (T-HTTP-12).
    #: Only on revisions with priming events (2025-11-25), whose clients know to reconnect.
    poll_after: float | None = None


@dataclass(slots=True)
class _Item:
    message: dict[str, Any] | None
    final: bool
    #: A notification a handler sent: counted against ``Exchange.max_buffered``.
    note: bool = False


#: Notifications a response stream holds for a client that reads slowly (``Limits.max_buffered_events``).
DEFAULT_MAX_BUFFERED = Limits().max_buffered_events


class Room:
    """Where senders to a bounded queue wait for its reader to take something (or for it to close).

    One future serves every waiter; each waiter checks the queue again when it wakes.
    """

    __slots__ = ("_fut",)

    def __init__(self) -> None:
        self._fut: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        fut = self._fut
        if fut is None or fut.done():
            fut = self._fut = asyncio.get_running_loop().create_future()
        await fut

    def free(self) -> None:
        """The reader took something, or the queue closed: wake the waiters."""
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)


class _Mailbox:
    """What the handlers produced, in order, for the one coroutine that writes the response.

    An ``asyncio.Queue`` without its bookkeeping (an Event and three deques per POST) and with a
    timeout on ``get`` that needs no task.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque[object] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: object) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def get_nowait(self) -> object:
        return self._items.popleft()

    async def get(self, timeout: float | None) -> object:
        """The next item; None when ``timeout`` seconds pass without one."""
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                if timeout is None:
                    await waiter
                else:
                    async with asyncio.timeout(timeout):
                        await waiter
            except TimeoutError:
                return None
            finally:
                self._waiter = None
        return self._items.popleft()


_DISCONNECTED = object()
_TAKEOVER = object()  # a GET resumed this stream: it now holds the client's connection
_POLL = object()  # time to close the connection early (polling, T-HTTP-12)


class ExchangeOutlet:
    """A handler's way back to the client: this POST's response stream.

    Made per handler and not kept by the exchange: no reference cycle, so an answered POST is
    freed at once by reference counting, not later by the garbage collector. Without an exchange
    (a request answered at once, ``answer_at_once``) the response is already written: what is sent
    later is dropped, and a question can no longer be asked.
    """

    __slots__ = ("_exchange", "session")

    def __init__(self, exchange: Exchange | None, session: HTTPSession | None) -> None:
        self._exchange = exchange
        #: The legacy session this request belongs to (None when stateless or 2026-07-28). Server
        #: code may keep it to notify the client later: ``await session.notify(method, params)``.
        self.session = session

    @property
    def session_id(self) -> str | None:
        return None if self.session is None else self.session.id

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        if self._exchange is not None:
            await self._exchange.offer(notification(method, params))

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        if self._exchange is None:
            raise BrokenConnectionError(f"{method}: the response was already sent")
        return await self._exchange.ask(method, params)


def resumable(session: HTTPSession | None, *, modern: bool, json_response: bool) -> bool:
    """Whether a POST's response is a resumable SSE stream (legacy session, SSE replies)."""
    return session is not None and not modern and not json_response


async def answer_at_once(
    conn: ServerConnection, req: IncomingRequest, answer: dict[str, Any], session: HTTPSession | None,
    send: Send, headers: list[tuple[bytes, bytes]], *, modern: bool, json_response: bool,
    stream: StreamOptions | None = None,
) -> None:
    """The common POST, without an ``Exchange``: one request already answered inline
    (``anyport.runtime.answer_inline``), written in one piece. With ``stream`` (a legacy session's
    resumable SSE response) its events are logged first, as ``Exchange`` logs them."""
    msg = answer if conn.finish(req.id) else None
    try:
        if stream is not None and session is not None and msg is not None:
            _, body = await _logged_stream(stream, session.id, conn, [msg])
            await _send_sse_whole(send, body, headers)
            return
        await _write_one(send, msg, headers, modern=modern, json_response=json_response)
    except OSError:
        pass  # the client went away; a logged stream can still be resumed


async def _logged_stream(
    stream: StreamOptions, sid: str, conn: ServerConnection, messages: Iterable[dict[str, Any]]
) -> tuple[str, bytes]:
    """A complete resumable stream: a new stream in the event log, its priming event (T-HTTP-11)
    and every message logged (T-HTTP-27..31), the stream ended; its id and its SSE bytes."""
    stream_id = await stream.events.new_stream(sid, prefix=POST_STREAM)
    parts: list[bytes] = []
    rev = conn.revision
    if rev is not None and rev.priming_event:
        event_id = await _append(stream, sid, stream_id, None)
        if event_id is not None:
            parts.append(priming_event(event_id, retry_ms=stream.retry_ms))
    for message in messages:
        event_id = await _append(stream, sid, stream_id, message)
        parts.append(message_event(message, event_id=event_id))
    await stream.events.end_stream(sid, stream_id)
    return stream_id, b"".join(parts)


async def _append(stream: StreamOptions, sid: str, stream_id: str, message: dict[str, Any] | None) -> str | None:
    try:
        return await stream.events.append(sid, stream_id, message)
    except KeyError:
        return None  # the session's events were dropped (DELETE): nothing to resume any more


async def _write_one(
    send: Send, msg: dict[str, Any] | None, headers: list[tuple[bytes, bytes]], *, modern: bool, json_response: bool
) -> None:
    """The response to a POST of one request: JSON, or SSE that carries only the answer (an error
    that has an HTTP status of its own goes as JSON with it, T-H26-13), or 202 when the request was
    cancelled (U-04)."""
    if msg is None:
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    status = status_for(msg, modern=modern)
    if json_response or status != 200:
        await send_body(send, status, dumps(msg), b"application/json", headers)
        return
    await _send_sse_whole(send, message_event(msg), headers)


class Exchange:
    """The requests of one POST body, their handlers, and the response that carries their output."""

    def __init__(
        self,
        server: Application,
        conn: ServerConnection,
        session: HTTPSession | None,
        *,
        modern: bool,
        batch: bool,
        json_response: bool,
        request_timeout: float | None,
        keepalive: float,
        spawn: Callable[[Coroutine[Any, Any, dict[str, Any]], contextvars.Context | None], asyncio.Task[dict[str, Any]]],
        stream: StreamOptions | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        self.server = server
        self.conn = conn
        self.session = session
        self.modern = modern
        self.batch = batch
        self.json_response = json_response
        self.request_timeout = request_timeout
        self.keepalive = keepalive
        self._spawn = spawn
        self._queue = _Mailbox()
        self.max_buffered = max_buffered
        #: Handlers' notifications queued and not yet taken by the writer.
        self._buffered = 0
        #: The newest queued progress notification per progressToken (coalesced when the queue is full).
        self._progress: dict[Any, _Item] = {}
        #: Handlers waiting for room in the queue.
        self._room = Room()
        self._outstanding = 0
        #: Handler tasks (requests that could not be answered inline).
        self._handlers: list[asyncio.Task[dict[str, Any]]] = []
        self._has_requests = False
        #: The response is complete or its connection is gone: nothing more reaches the client.
        self.closed = False
        #: Resumable: a legacy session answered with SSE and state to log events in.
        self.stream = stream if resumable(session, modern=modern, json_response=json_response) else None
        #: This stream's id in the event log, once the SSE response began.
        self.stream_id: str | None = None

    # -- handler side --------------------------------------------------------------------------

    def start(self, events: list[Event]) -> None:
        """Run every admitted request; queue what the protocol core answered by itself."""
        for ev in events:
            if isinstance(ev, IncomingRequest):
                self._outstanding += 1
                self._has_requests = True
                outlet = ExchangeOutlet(self, self.session)
                answer = answer_inline(self.server, ev, outlet)  # no task, no turn of the event loop
                if answer is not None:
                    self._complete(ev, answer)
                    continue
                task = self._spawn(self.server.reply(ev, outlet), None)
                task.add_done_callback(self._finished(ev))
                self._handlers.append(task)
                if self.session is not None:
                    self.session.track(ev.id, task)
            elif isinstance(ev, Reply):
                self._outstanding += 1
                self._queue.put_nowait(_Item(ev.message, final=True))
            elif isinstance(ev, ResponseReceived):
                if self.session is not None:
                    self.session.deliver(ev)
            elif isinstance(ev, CancelRequested):
                if self.session is not None:
                    self.session.cancel(ev.request_id)

    @property
    def has_handlers(self) -> bool:
        return self._has_requests

    def _finished(self, req: IncomingRequest) -> Callable[[asyncio.Task[dict[str, Any]]], None]:
        # A done callback, not code in the task: a task cancelled before it ever ran still ends here.
        def done(task: asyncio.Task[dict[str, Any]]) -> None:
            self._handlers.remove(task)
            self._complete(req, None if task.cancelled() else task.result())

        return done

    def _complete(self, req: IncomingRequest, msg: dict[str, Any] | None) -> None:
        if not self.conn.finish(req.id):
            msg = None  # cancelled by the client: nothing is sent for it (U-04)
        self._queue.put_nowait(_Item(msg, final=True))

    def push(self, message: dict[str, Any]) -> None:
        """A notification for the client, queued now (our own: at most one per request); dropped
        once the stream is gone or when answering JSON."""
        if not self.closed and not self.json_response:
            self._queue.put_nowait(_Item(message, final=False))

    async def offer(self, message: dict[str, Any]) -> None:
        """A handler's notification, with backpressure. The stream holds at most ``max_buffered`` of
        them for the writer. When it is full, a progress notification replaces the newest queued one
        of the same progressToken (the latest progress wins; values still increase, U-08); anything
        else waits for the writer to make room. Dropped once the stream is gone or when answering
        JSON."""
        token = _progress_token(message)
        while not self.closed and not self.json_response:
            if self._buffered < self.max_buffered:
                self._buffered += 1
                item = _Item(message, final=False, note=True)
                if token is not None:
                    self._progress[token] = item
                self._queue.put_nowait(item)
                break
            queued = self._progress.get(token) if token is not None else None
            if queued is not None:
                queued.message = message
                break
            await self._room.wait()

    def _taken(self, item: object) -> None:
        """The writer took ``item`` off the queue: room for one more notification."""
        if isinstance(item, _Item) and item.note:
            self._buffered -= 1
            message = item.message
            token = _progress_token(message) if message is not None else None
            if token is not None and self._progress.get(token) is item:
                del self._progress[token]
            self._room.free()

    async def ask(self, method: str, params: dict[str, Any]) -> Any:
        """A server->client request on this POST's stream; the answer comes back as another POST."""
        session = self.session
        if self.modern or session is None:
            raise InternalError(f"{method}: server->client requests need a legacy session (2026-07-28 uses MRTR)")
        if self.json_response:
            raise InternalError(f"{method}: server->client requests need an SSE response (json_response is on)")
        if self.closed:
            raise BrokenConnectionError(f"{method}: the response stream is closed")
        id_ = self.conn.start_request(method)
        fut = session.expect(id_)
        self._queue.put_nowait(_Item(request(id_, method, params), final=False))

        def abandon(reason: str) -> None:
            self.conn.outgoing.forget(id_)
            self.push(notification("notifications/cancelled", {"requestId": id_, "reason": reason}))

        try:
            return await await_answer(
                fut, self.request_timeout, abandon=abandon,
                timed_out=f"{method}: the client did not answer in {self.request_timeout} s",
            )
        finally:
            session.waiters.pop(id_, None)

    # -- response side -------------------------------------------------------------------------

    def respond(self, receive: Receive, send: Send, headers: list[tuple[bytes, bytes]]) -> Awaitable[None]:
        """Write the response: at once when every handler already finished, else as they produce it."""
        if not self._handlers:
            if self.stream is None or not self._has_requests:
                return self._respond_ready(send, headers)
            return self._respond_resumable_ready(send, headers, self.stream)
        return self._respond_streaming(receive, send, headers)

    async def _respond_streaming(self, receive: Receive, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        watcher = asyncio.get_running_loop().create_task(self._watch(receive))
        session = self.session if self.stream is None else None  # a resumable stream attaches by itself
        if session is not None:
            session.attach()
        try:
            if self.json_response or not self.has_handlers:
                await self._respond_json(send, headers)
                return
            if self.stream is not None:
                await self._respond_resumable(send, headers, self.stream)
                return
            # Hold the headers back briefly: an early error gets its own HTTP status (T-H26-13).
            item = await self._next()
            if item is _DISCONNECTED:
                return
            if isinstance(item, _Item) and not self.batch and item.final and item.message is not None:
                status = status_for(item.message, modern=self.modern)
                if status != 200:
                    self._outstanding -= 1
                    await send_json(send, status, item.message, headers)
                    return
            await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
            while True:
                if item is _DISCONNECTED:
                    return
                if isinstance(item, _Item):
                    if item.final:
                        self._outstanding -= 1
                    if item.message is not None:
                        await send({"type": "http.response.body", "body": message_event(item.message), "more_body": True})
                else:
                    # Nothing for a while: a comment keeps proxies from closing the connection.
                    await send({"type": "http.response.body", "body": comment(), "more_body": True})
                if self._outstanding <= 0:
                    break
                item = await self._next()
            await send({"type": "http.response.body", "body": b"", "more_body": False})  # T-HTTP-17
        except OSError:
            self._on_disconnect()  # the client went away while we wrote
        finally:
            self.closed = True
            self._room.free()
            watcher.cancel()
            if session is not None:
                session.detach()

    async def _respond_resumable(self, send: Send, headers: list[tuple[bytes, bytes]], stream: StreamOptions) -> None:
        """A legacy session's SSE stream: ids, priming, event log, polling, hand-over to a resuming GET."""
        assert self.session is not None
        sid = self.session.id
        rev = self.conn.revision
        priming = rev is not None and rev.priming_event
        loop = asyncio.get_running_loop()
        self.stream_id = stream_id = await stream.events.new_stream(sid, prefix=POST_STREAM)
        key = stream_key(sid, stream_id)
        control = await stream.bus.subscribe(control_key(sid, stream_id))
        relay = loop.create_task(self._relay_control(control))
        poll: asyncio.TimerHandle | None = None
        attached = True
        session = self.session
        session.attach()

        def detach() -> None:
            nonlocal attached
            if attached:
                attached = False
                session.detach()

        try:
            try:
                await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
                if priming:
                    event_id = await _append(stream, sid, stream_id, None)
                    if event_id is not None:
                        body = priming_event(event_id, retry_ms=stream.retry_ms)
                        await send({"type": "http.response.body", "body": body, "more_body": True})  # T-HTTP-11
                        if stream.poll_after is not None:
                            poll = loop.call_later(max(0.0, stream.poll_after), self._queue.put_nowait, _POLL)
            except OSError:
                detach()
            while self._outstanding > 0:
                item = await self._next()
                if item is _DISCONNECTED or item is _TAKEOVER or item is _POLL:
                    if attached:
                        detach()
                        if item is not _DISCONNECTED:
                            # T-HTTP-12/13: the stream stays open; the client resumes it with GET.
                            await self._end_body(send, retry_ms=stream.retry_ms if item is _POLL else None)
                    continue
                if isinstance(item, _Item):
                    if item.final:
                        self._outstanding -= 1
                    if item.message is None:
                        continue
                    event_id = await _append(stream, sid, stream_id, item.message)
                    if event_id is not None:
                        await stream.bus.publish(key, {"id": event_id, "message": item.message})
                    if attached:
                        try:
                            event = message_event(item.message, event_id=event_id)
                            await send({"type": "http.response.body", "body": event, "more_body": True})
                        except OSError:
                            detach()
                elif attached:
                    try:
                        await send({"type": "http.response.body", "body": comment(), "more_body": True})
                    except OSError:
                        detach()
            await stream.events.end_stream(sid, stream_id)
            await stream.bus.publish(key, {"control": "end"})
            if attached:
                await self._end_body(send)  # T-HTTP-17
        finally:
            detach()
            if poll is not None:
                poll.cancel()
            relay.cancel()
            await control.aclose()

    @staticmethod
    async def _end_body(send: Send, *, retry_ms: int | None = None) -> None:
        try:
            if retry_ms is not None:
                await send({"type": "http.response.body", "body": retry_field(retry_ms), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass

    async def _relay_control(self, control: Subscription) -> None:
        """A GET that resumed this stream asks for it: stop writing to our own connection."""
        try:
            while True:
                _key, message = await control.get()
                if message.get("control") == "takeover":
                    self._queue.put_nowait(_TAKEOVER)
        except EOFError:
            return

    async def _next(self, *, forever: bool = False) -> object:
        """The next queued item, or None after a keep-alive interval without one."""
        item = await self._queue.get(None if forever else self.keepalive)
        self._taken(item)
        return item

    async def _respond_ready(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        """Every handler already finished (inline): write the whole response at once, no tasks."""
        items: list[_Item] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            assert isinstance(item, _Item)
            items.append(item)
        self._outstanding = 0
        self.closed = True
        try:
            if self.json_response or not self._has_requests:
                await self._send_finals([i.message for i in items if i.final and i.message is not None], send, headers)
                return
            first = items[0] if items else None
            if first is not None and not self.batch and first.final and first.message is not None:
                status = status_for(first.message, modern=self.modern)
                if status != 200:
                    await send_json(send, status, first.message, headers)  # T-H26-13
                    return
            body = b"".join(message_event(i.message) for i in items if i.message is not None)
            await _send_sse_whole(send, body, headers)
        except OSError:
            pass  # the client went away; nothing is running that could notice

    async def _respond_resumable_ready(self, send: Send, headers: list[tuple[bytes, bytes]], stream: StreamOptions) -> None:
        """A legacy session's SSE stream whose handlers all finished inline: log every event (a client
        that loses the connection can still resume, T-HTTP-27..31), end the stream, and write it in
        one piece. No control subscription, relay or watcher: the stream is complete before anyone
        could ask to take it over."""
        assert self.session is not None
        messages: list[dict[str, Any]] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Item) and item.message is not None:
                messages.append(item.message)
        self._outstanding = 0
        self.closed = True
        self.stream_id, body = await _logged_stream(stream, self.session.id, self.conn, messages)
        try:
            await _send_sse_whole(send, body, headers)
        except OSError:
            pass  # the client went away: it can resume from the log

    async def _send_finals(self, finals: list[dict[str, Any]], send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        if self.batch and finals:
            await send_body(send, 200, dumps(finals), b"application/json", headers)
        else:
            # One answer, or none when every request was cancelled (U-04).
            await _write_one(send, finals[0] if finals else None, headers, modern=self.modern, json_response=True)

    async def _respond_json(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        finals: list[dict[str, Any]] = []
        while self._outstanding > 0:
            item = await self._next(forever=True)
            if item is _DISCONNECTED:
                return
            assert isinstance(item, _Item)
            if item.final:
                self._outstanding -= 1
                if item.message is not None:
                    finals.append(item.message)
        await self._send_finals(finals, send, headers)

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                self._on_disconnect()
                self._queue.put_nowait(_DISCONNECTED)
                return

    def _on_disconnect(self) -> None:
        if self.closed or self.stream is not None:
            return  # a resumable stream goes on into the event log
        self.closed = True
        self._room.free()  # handlers waiting for room go on: what they send now is dropped
        if self.modern:
            # T-H26-11: a closed response stream cancels the request; nothing more is sent.
            for task in self._handlers:
                task.cancel()


def _progress_token(message: dict[str, Any]) -> Any:
    """The progressToken of a ``notifications/progress`` message, else None."""
    if message.get("method") != "notifications/progress":
        return None
    params = message.get("params")
    return params.get("progressToken") if isinstance(params, dict) else None


async def send_body(
    send: Send, status: int, body: bytes, content_type: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """A whole response with ``Content-Length``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_sse_whole(send: Send, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """A whole SSE response, every event in one body: the stream ends with it (T-HTTP-17)."""
    await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(send: Send, status: int, body: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send_body(send, status, dumps(body), b"application/json", headers)


async def disconnected(receive: Receive) -> None:
    """Returns when the client closed the connection (of a stream we only write to)."""
    with contextlib.suppress(OSError):
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                return
