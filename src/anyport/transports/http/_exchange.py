"""One POST that carries requests: run their handlers and queue what they produce for the
response writer (``_respond.PostResponse``).

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
import contextvars
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anyport._exceptions import (
    BrokenConnectionError,
    InternalError,
)
from anyport.limits import Limits
from anyport.protocol import (
    CancelRequested,
    Event,
    IncomingRequest,
    NotificationReceived,
    Reply,
    ResponseReceived,
    ServerConnection,
    cancelled_notification,
    notification,
    request,
)
from anyport.runtime import answer_inline, await_answer, hand_notification
from anyport.state import Bus, EventLog
from anyport.transports.http._sessions import HTTPSession

if TYPE_CHECKING:
    from anyport.runtime import Application

__all__ = [
    "DISCONNECTED", "GET_STREAM", "POLL", "POST_STREAM", "TAKEOVER", "Exchange", "ExchangeOutlet", "DEFAULT_MAX_BUFFERED", "Item", "Room",
    "StreamOptions", "control_key", "resumable", "stream_key",
]

log = logging.getLogger("anyport.http")


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
    #: Seconds the replica writing a stream holds it without renewing; a GET resuming a stream whose
    #: writer stopped renewing (its replica died) ends it with an error for each unanswered request.
    #: Only with an event log that keeps leases (``claim_stream``/``orphaned``: Redis).
    lease: float = 30.0


@dataclass(slots=True)
class Item:
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


DISCONNECTED = object()
TAKEOVER = object()  # a GET resumed this stream: it now holds the client's connection
POLL = object()  # time to close the connection early (polling, T-HTTP-12)


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
        self._progress: dict[Any, Item] = {}
        #: Handlers waiting for room in the queue.
        self._room = Room()
        self.outstanding = 0
        #: Handler tasks (requests that could not be answered inline).
        self._handlers: list[asyncio.Task[dict[str, Any]]] = []
        self._has_requests = False
        #: The ids of the requests this POST carries (a resumable stream records them with its lease).
        self.request_ids: list[str | int] = []
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
                self.outstanding += 1
                self._has_requests = True
                self.request_ids.append(ev.id)
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
                self.outstanding += 1
                self._queue.put_nowait(Item(ev.message, final=True))
            elif isinstance(ev, ResponseReceived):
                if self.session is not None:
                    self.session.deliver(ev)
            elif isinstance(ev, CancelRequested):
                if self.session is not None:
                    self.session.cancel(ev.request_id)
            elif isinstance(ev, NotificationReceived):
                hand_notification(self.server, self.session.id if self.session is not None else None, ev)

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
        self._queue.put_nowait(Item(msg, final=True))

    def push(self, message: dict[str, Any]) -> None:
        """A notification for the client, queued now (our own: at most one per request); dropped
        once the stream is gone or when answering JSON."""
        if not self.closed and not self.json_response:
            self._queue.put_nowait(Item(message, final=False))

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
                item = Item(message, final=False, note=True)
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
        if isinstance(item, Item) and item.note:
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
        self._queue.put_nowait(Item(request(id_, method, params), final=False))

        def abandon(reason: str) -> None:
            self.conn.outgoing.forget(id_)
            self.push(cancelled_notification(id_, reason))

        try:
            return await await_answer(
                fut, self.request_timeout, abandon=abandon,
                timed_out=f"{method}: the client did not answer in {self.request_timeout} s",
            )
        finally:
            session.waiters.pop(id_, None)

    # -- what the response writer (``_respond.PostResponse``) asks --------------------------------

    @property
    def running(self) -> bool:
        """Handlers are still running (some request could not be answered inline)."""
        return bool(self._handlers)

    async def next(self, *, forever: bool = False) -> object:
        """The next queued item (an ``Item`` or a signal), or None after a keep-alive interval without one."""
        item = await self._queue.get(None if forever else self.keepalive)
        self._taken(item)
        return item

    def drain(self) -> list[Item]:
        """Everything queued, once every handler finished: the response is complete."""
        items: list[Item] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            assert isinstance(item, Item)
            items.append(item)
        self.outstanding = 0
        self.closed = True
        return items

    def signal(self, what: object) -> None:
        """Wake the writer with ``DISCONNECTED``, ``TAKEOVER`` or ``POLL``."""
        self._queue.put_nowait(what)

    def close(self) -> None:
        """The response is written (or abandoned): what handlers send from now on is dropped."""
        self.closed = True
        self._room.free()

    def disconnected(self) -> None:
        """The client went away."""
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
