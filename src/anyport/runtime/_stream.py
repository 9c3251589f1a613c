"""Serve an ``Application`` over one ``MessageStream`` (stdio, the in-memory pair, an HTTP+SSE
connection, any byte-stream transport).

The read loop hands every frame to the protocol core, answers what the core answered, runs each
admitted request inline when its handler never waits (``answer_inline``) and otherwise in its own
task (so requests run concurrently and can be cancelled), and correlates the client's answers to
server->client requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import weakref
from typing import TYPE_CHECKING, Any

from anyport._exceptions import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    ConnectionClosedError,
    TransportError,
    error_from_response,
)
from anyport.protocol import (
    CancelRequested,
    IncomingRequest,
    NotificationReceived,
    Reply,
    ResponseReceived,
    ServerConnection,
    cancelled_notification,
    dumps,
    error_message,
    notification,
    request,
)
from anyport.protocol._framing import HEAD_BYTES, head_id
from anyport.runtime._asking import await_answer

if TYPE_CHECKING:
    from anyport.runtime._ports import Application, MessageStream, Outlet

__all__ = ["StreamRuntime", "answer_inline", "hand_notification", "serve_stream"]

log = logging.getLogger("anyport.server")


def answer_inline(app: Application, req: IncomingRequest, outlet: Outlet) -> dict[str, Any] | None:
    """The response to ``req`` at once when its handler never waits (``Application.inline_safe``),
    by a plain call in a copy of the current context (as a task would run it); None when the
    request needs a task of its own. Every runtime asks this first, for every request."""
    if app.inline_safe(req):
        return contextvars.copy_context().run(app.reply_now, req, outlet)
    return None


def hand_notification(app: Application, session_id: str | None, ev: NotificationReceived) -> None:
    """A client's notification the core left to the application (``Application.client_notification``);
    an application that raises is logged, the connection goes on."""
    try:
        app.client_notification(session_id, ev.method, ev.params)
    except Exception:
        log.exception("client_notification(%s) failed", ev.method)


class _Outlet:
    """A request's way back to the client on a bidirectional stream.

    It refers to its session weakly: the session keeps its outlet, and a closed session must not
    wait for the cycle collector (with no traffic it never runs) to free what it held.
    """

    __slots__ = ("_session", "session_id")

    def __init__(self, session: StreamRuntime) -> None:
        self._session = weakref.ref(session)
        self.session_id = session.id

    def _live(self) -> StreamRuntime:
        session = self._session()
        if session is None:
            raise ConnectionClosedError("the session is closed")
        return session

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self._live().send(notification(method, params))

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        return await self._live().request(method, params)


class StreamRuntime:
    """One connection's runtime; also a ``Peer`` of ``app.hub`` (list_changed, resource updates)."""

    def __init__(
        self,
        server: Application,
        stream: MessageStream,
        *,
        request_timeout: float | None = 300.0,
        id: str | None = None,
    ) -> None:
        self.server = server
        self.stream = stream
        self.conn: ServerConnection = server.open_connection()
        self.request_timeout = request_timeout
        self._tasks: dict[str | int, asyncio.Task[None]] = {}
        self._waiters: dict[str | int, asyncio.Future[Any]] = {}
        self._closed = False
        #: The session's id in the hub (an HTTP+SSE connection passes its ``session_id``).
        self.id = id or f"conn-{secrets.token_hex(8)}"
        self._outlet = _Outlet(self)
        server.hub.register(self)

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """A server-initiated notification; only a legacy session past ``initialize`` takes one (M-05)."""
        if self._closed or self.conn.revision is None or not self.conn.initialized:
            return
        try:
            await self.send(notification(method, params))
        except TransportError:
            pass

    async def send(self, message: dict[str, Any] | list[Any]) -> None:
        if self._closed:
            raise ConnectionClosedError("the session is closed")
        await self.stream.send(dumps(message))

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        """A server->client request (legacy era): elicitation, sampling, roots."""
        id_ = self.conn.start_request(method)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[id_] = fut

        async def abandon(reason: str) -> None:
            self.conn.outgoing.forget(id_)
            if not self._closed:
                with contextlib.suppress(TransportError):
                    await self.send(cancelled_notification(id_, reason))

        try:
            await self.send(request(id_, method, params))
            return await await_answer(
                fut, self.request_timeout, abandon=abandon,
                timed_out=f"{method}: the client did not answer in {self.request_timeout} s",
            )
        finally:
            self._waiters.pop(id_, None)

    def running(self) -> list[asyncio.Task[None]]:
        """The tasks of requests still running."""
        return [t for t in self._tasks.values() if not t.done()]

    async def run(self) -> None:
        """Serve until the client closes its end (T-STDIO-11: exit on EOF)."""
        try:
            while True:
                data = await self.stream.receive()
                if data is None:
                    break
                await self.feed(data)
        finally:
            await self.close()

    async def feed(self, data: bytes) -> None:
        """One frame from the client. Whatever goes wrong with it is answered (with its id when
        that can be read) and costs no other frame: nothing raised here reaches the read loop."""
        try:
            received = self.conn.receive_data(data)
            if received.batch:
                self._spawn(self._run_batch(received.events), None)
                return
            for ev in received.events:
                if type(ev) is IncomingRequest:
                    # Most requests never wait: they are answered now, in order, onto the stream. A
                    # stream that cannot take the answer yet holds up reading, as it should (the
                    # stdio pump pauses its input).
                    msg = answer_inline(self.server, ev, self._outlet)
                    if msg is None:
                        self._spawn(self._run_request(ev), ev.id)
                    elif self.conn.finish(ev.id):
                        await self._deliver(msg)
                else:
                    await self._on_event(ev)
        except TransportError:
            return  # the stream is gone: nobody to answer
        except Exception:
            await self._internal_error(data)

    async def _internal_error(self, data: bytes) -> None:
        log.exception("internal error while handling a message")
        with contextlib.suppress(Exception):
            await self.send_error_frame("Internal error", INTERNAL_ERROR, id_=head_id(bytes(data[:HEAD_BYTES])))

    async def send_error_frame(self, message: str, code: int = INVALID_REQUEST, *, id_: str | int | None = None) -> None:
        """Answer a frame the transport could not deliver (e.g. over the size limit), with the id
        of its request when the transport could read it (J-08)."""
        omit = self.conn.revision is None or self.conn.revision.error_id_optional
        await self.send(error_message(id_, {"code": code, "message": message}, omit_missing_id=omit))

    async def _on_event(self, ev: Any) -> None:
        if isinstance(ev, Reply):
            await self.send(ev.message)
        elif isinstance(ev, ResponseReceived):
            fut = self._waiters.get(ev.id)
            if fut is not None and not fut.done():
                if ev.error is not None:
                    fut.set_exception(error_from_response(ev.error))
                else:
                    fut.set_result(ev.result)
        elif isinstance(ev, CancelRequested):
            task = self._tasks.get(ev.request_id)
            if task is not None:
                task.cancel()
        elif isinstance(ev, NotificationReceived):
            hand_notification(self.server, self.id, ev)

    def _spawn(self, coro: Any, key: str | int | None, context: contextvars.Context | None = None) -> None:
        task = asyncio.get_running_loop().create_task(coro, context=context)
        k: str | int = id(task) if key is None else key
        self._tasks[k] = task

        def done(_t: asyncio.Task[None]) -> None:
            self._tasks.pop(k, None)

        task.add_done_callback(done)

    async def _answer(self, req: IncomingRequest) -> dict[str, Any] | None:
        try:
            msg = await self.server.reply(req, self._outlet)
        except asyncio.CancelledError:
            self.conn.finish(req.id)
            return None  # U-04 / T-STDIO-14: nothing more for a cancelled request
        return msg if self.conn.finish(req.id) else None

    async def _run_request(self, req: IncomingRequest) -> None:
        msg = await self._answer(req)
        if msg is not None:
            await self._deliver(msg)

    async def _deliver(self, msg: dict[str, Any]) -> None:
        """An answer onto the stream, unless the session closed; a broken stream loses only it."""
        if not self._closed:
            try:
                await self.stream.send(dumps(msg))
            except TransportError:
                pass

    async def _run_batch(self, events: list[Any]) -> None:
        replies: list[dict[str, Any]] = []
        jobs = []
        for ev in events:
            if isinstance(ev, IncomingRequest):
                jobs.append(self._answer(ev))
            elif isinstance(ev, Reply):
                replies.append(ev.message)
            else:
                await self._on_event(ev)
        for msg in await asyncio.gather(*jobs):
            if msg is not None:
                replies.append(msg)
        if replies and not self._closed:
            await self.send(replies)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.server.hub.unregister(self.id)
        for task in list(self._tasks.values()):
            task.cancel()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(ConnectionClosedError("the session closed"))
        await self.stream.aclose()


async def serve_stream(app: Application, stream: MessageStream) -> None:
    """Serve ``app`` over ``stream`` until the peer closes it."""
    await StreamRuntime(app, stream).run()
