"""The client's runtime over one MessageStream: id correlation, timeouts that cancel, progress
routing, and answers to the server's requests (legacy era)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from anyport._exceptions import (
    BrokenConnectionError,
    ConnectionClosedError,
    InternalError,
    JSONRPCError,
    MethodNotFoundError,
    TransportError,
    error_from_response,
)
from anyport.protocol import (
    ClientConnection,
    Notification,
    Request,
    Response,
    cancelled_notification,
    classify,
    clip,
    dumps,
    error_message,
    loads,
    notification,
    request,
    result_message,
)
from anyport.runtime import MessageStream, await_answer

#: The ``reason`` of our ``notifications/cancelled``: after a timeout, after the caller cancelled.
_TIMEOUT = "timeout"
_REASONS = (_TIMEOUT, "cancelled by the caller")

__all__ = ["ClientSession", "ProgressCallback", "RequestHandler"]

log = logging.getLogger("anyport.client")

ProgressCallback = Callable[[float, float | None, str | None], Any]
RequestHandler = Callable[[dict[str, Any]], Awaitable[Any]]


class ClientSession:
    def __init__(
        self,
        stream: MessageStream,
        conn: ClientConnection,
        *,
        request_handlers: Mapping[str, RequestHandler] | None = None,
        notification_handler: Callable[[str, dict[str, Any]], Any] | None = None,
    ) -> None:
        self.stream = stream
        self.conn = conn
        self.request_handlers = request_handlers or {}
        self.notification_handler = notification_handler
        self._waiters: dict[str | int, asyncio.Future[Any]] = {}
        self._progress: dict[str | int, ProgressCallback] = {}
        self._incoming: dict[str | int, asyncio.Task[None]] = {}
        self._callbacks: set[asyncio.Future[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._closed = False

    def start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    async def send(self, message: dict[str, Any]) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise ConnectionClosedError("the client is closed")
        await self.stream.send(dumps(message))

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self.send(notification(method, params))

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        cancel_on_timeout: bool = True,
    ) -> Any:
        """Send a request and wait for its result; a JSON-RPC error raises its exception class."""
        if self._failure is not None:
            raise self._failure
        id_ = self.conn.outgoing.start(method)
        if on_progress is not None:
            params = dict(params or {})
            meta = dict(params.get("_meta") or {})
            meta["progressToken"] = id_  # U-06: unique among our active requests
            params["_meta"] = meta
            self._progress[id_] = on_progress
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[id_] = fut
        async def abandon(reason: str) -> None:
            if cancel_on_timeout or reason != _TIMEOUT:
                await self._cancel(id_, reason)  # L-16

        try:
            await self.send(request(id_, method, params))
            return await await_answer(
                fut, timeout, abandon=abandon, timed_out=f"{method}: no answer within {timeout} s", reasons=_REASONS,
            )
        finally:
            self._waiters.pop(id_, None)
            self._progress.pop(id_, None)
            self.conn.outgoing.forget(id_)

    async def _cancel(self, id_: int, reason: str) -> None:
        if self.conn.outgoing.pending.get(id_) == "initialize":
            return  # L-12: never cancel initialize
        if self._failure is None and not self._closed:
            with contextlib.suppress(TransportError):
                await self.send(cancelled_notification(id_, reason))

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.stream.receive()
                if data is None:
                    break
                self._on_frame(data)
            reason: BaseException
            if self._closed:
                reason = ConnectionClosedError("the client is closed")
            else:
                exit_error = getattr(self.stream, "exit_error", None)
                reason = await exit_error() if exit_error is not None else BrokenConnectionError("the server closed the connection")
        except TransportError as exc:
            reason = exc
        except Exception as exc:  # pragma: no cover - defensive: never leave callers hanging
            reason = BrokenConnectionError(f"reading from the server failed: {exc!r}")
            reason.__cause__ = exc
        self._fail_all(reason)

    def _fail_all(self, reason: BaseException) -> None:
        self._failure = reason
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(reason)
        for task in self._incoming.values():
            task.cancel()

    def _on_frame(self, data: bytes) -> None:
        try:
            obj = loads(data)
        except JSONRPCError:
            log.warning("ignoring a malformed message from the server: %.200r", data)
            return
        for item in obj if isinstance(obj, list) else [obj]:
            try:
                msg = classify(item)
            except JSONRPCError as exc:
                log.warning("ignoring an invalid message from the server: %s", exc.message)
                continue
            if isinstance(msg, Response):
                fut = self._waiters.get(msg.id)
                if fut is not None and not fut.done():
                    if msg.error is not None:
                        fut.set_exception(error_from_response(msg.error))
                    else:
                        fut.set_result(msg.result)
            elif isinstance(msg, Notification):
                self._on_notification(msg)
            elif isinstance(msg, Request):
                task = asyncio.get_running_loop().create_task(self._answer(msg))
                key = msg.id
                self._incoming[key] = task

                def done(_t: asyncio.Task[None], key: str | int = key) -> None:
                    self._incoming.pop(key, None)

                task.add_done_callback(done)

    def _on_notification(self, msg: Notification) -> None:
        params = msg.params
        if msg.method == "notifications/progress":
            cb = self._progress.get(params.get("progressToken"))  # type: ignore[arg-type]
            progress = params.get("progress")
            if cb is not None and isinstance(progress, (int, float)):
                total = params.get("total")
                message = params.get("message")
                try:
                    out = cb(progress, total if isinstance(total, (int, float)) else None, message if isinstance(message, str) else None)
                    self._background(out)
                except Exception:
                    log.exception("progress callback failed")
            return
        if msg.method == "notifications/cancelled":
            task = self._incoming.get(params.get("requestId"))  # type: ignore[arg-type]
            if task is not None:
                task.cancel()
            return
        if self.notification_handler is not None:
            try:
                out = self.notification_handler(msg.method, params)
                self._background(out)
            except Exception:
                log.exception("notification handler failed for %s", msg.method)

    def _background(self, out: Any) -> None:
        """Run an awaitable a callback returned, keeping a reference until it ends."""
        if inspect.isawaitable(out):
            task = asyncio.ensure_future(out)
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)

    async def _answer(self, req: Request) -> None:
        try:
            if req.method == "ping":
                reply = result_message(req.id, {})
            else:
                handler = self.request_handlers.get(req.method)
                if handler is None:
                    raise MethodNotFoundError(f"Method not found: {clip(req.method)}")
                reply = result_message(req.id, await handler(req.params))
        except asyncio.CancelledError:
            return
        except JSONRPCError as exc:
            reply = error_message(req.id, exc.to_error())
        except Exception as exc:
            log.exception("handler for %s failed", req.method)
            reply = error_message(req.id, InternalError(str(exc) or type(exc).__name__).to_error())
        with contextlib.suppress(TransportError):
            await self.send(reply)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._incoming.values()):
            task.cancel()
        await self.stream.aclose()
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 5.0)
            if not self._reader.done():
                self._reader.cancel()
        self._fail_all(ConnectionClosedError("the client is closed"))
