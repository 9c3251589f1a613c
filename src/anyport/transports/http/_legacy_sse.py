"""The deprecated HTTP+SSE transport of 2024-11-05 (T-SSE-*), for clients that predate Streamable HTTP.

```
GET  /sse                          -> 200 text/event-stream
                                      event: endpoint   data: /messages/?session_id=<32 hex>
POST /messages/?session_id=<hex>   -> 202 "Accepted"; the answer comes on the GET stream
                                      as event: message
```

Each GET stream is one connection: a ``StreamRuntime`` (the same loop that serves stdio) runs
over an in-memory ``MessageStream`` whose inbound side is fed by the POSTs and whose outbound
side is the SSE stream. So the connection negotiates any legacy revision the client initializes
with, and server->client requests, progress and log notifications all travel on the stream.
Closing the stream ends the session and cancels its running handlers (T-SSE-07); there is no
resumption and no DELETE. Kept behind ``create_app(..., legacy_sse=True)`` (T-SSE-08).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from anyport._exceptions import INVALID_REQUEST, PARSE_ERROR, ConnectionClosedError, ParseError
from anyport.limits import Limits
from anyport.protocol import SSE_HEADERS, comment, dumps, error_message, loads, named_event
from anyport.runtime import PRINCIPAL, StreamRuntime
from anyport.runtime._heap import Releaser, prepare as prepare_trim, trim_heap
from anyport.transports.http._asgi import Receive, Send, disconnected, send_body
from anyport.transports.http._exchange import DEFAULT_MAX_BUFFERED, Room

if TYPE_CHECKING:
    from anyport.runtime import Application

__all__ = ["LegacySSE", "SSEChannel"]

log = logging.getLogger("anyport.http.sse")

_SESSION_ID = re.compile(r"[0-9a-f]{32}")
_END = None


class SSEChannel:
    """The ``MessageStream`` of one SSE connection: POST bodies in, stream events out.

    At most ``max_buffered`` messages wait in the outbox for a client that reads slowly; a sender
    beyond that waits for the stream writer to make room (or fails once the stream is closed).
    """

    def __init__(self, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        #: With auth: the principal of each message in the inbox, in order (see ``receive``).
        self._principals: collections.deque[Any] = collections.deque()
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.max_buffered = max_buffered
        self._room = Room()
        self.closed = False

    def deliver(self, data: bytes, principal: Any = None) -> None:
        """A message POSTed by the client (with auth: by ``principal``, the one that opened the stream
        or the same caller with a newer token, e.g. after a step-up)."""
        if not self.closed:
            if principal is not None:
                self._principals.append(principal)
            self.inbox.put_nowait(data)

    async def send(self, data: bytes) -> None:
        while True:
            if self.closed:
                raise ConnectionClosedError("the SSE stream is closed")
            if self.outbox.qsize() < self.max_buffered:
                self.outbox.put_nowait(data)
                return
            await self._room.wait()

    def taken(self) -> None:
        """The stream writer took a message: room for the next one."""
        self._room.free()

    async def receive(self) -> bytes | None:
        if self.closed:
            return None
        item = await self.inbox.get()
        if item is _END:
            self.inbox.put_nowait(_END)  # stay at EOF
        elif self._principals:
            # The connection's loop runs in this task: what it starts for this message sees the
            # principal that POSTed it (ctx.principal, the scopes of the call).
            PRINCIPAL.set(self._principals.popleft())
        return item

    def close(self) -> None:
        """End both directions: the server loop sees EOF, the stream writer ends the response."""
        if not self.closed:
            self.closed = True
            # What was not written or read is dropped now, not when the last reference goes.
            for queue in (self.inbox, self.outbox):
                while not queue.empty():
                    queue.get_nowait()
            self._principals.clear()
            self.inbox.put_nowait(_END)
            self.outbox.put_nowait(_END)
            self.taken()  # a sender waiting for room learns that the stream is closed

    async def aclose(self) -> None:
        self.close()


class _Connection:
    __slots__ = ("channel", "id", "owner", "runner")

    def __init__(self, session_id: str, channel: SSEChannel, runner: asyncio.Task[None], owner: str | None = None) -> None:
        self.id = session_id
        self.channel = channel
        self.runner = runner
        #: The key of the principal that opened the stream (auth only): only it may POST to it.
        self.owner = owner


def _error_body(status: int, code: int, message: str) -> tuple[int, bytes]:
    return status, dumps(error_message(None, {"code": code, "message": message}))


async def _reject(send: Send, status: int, code: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    status, body = _error_body(status, code, message)
    await send_body(send, status, body, b"application/json", headers)


class LegacySSE:
    """The two endpoints of the 2024-11-05 transport; ``StreamableHTTPApp`` routes to them."""

    def __init__(
        self,
        server: Application,
        *,
        sse_path: str = "/sse",
        messages_path: str = "/messages/",
        max_connections: int = 10_000,
        keepalive_interval: float = 15.0,
        request_timeout: float | None = 300.0,
        max_inflight: int = Limits().max_inflight,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        for name, value in (("sse_path", sse_path), ("messages_path", messages_path)):
            if not value.startswith("/"):
                raise ValueError(f"{name} must start with '/'")
        self.server = server
        self.sse_path = sse_path
        self.messages_path = messages_path
        self.max_connections = max_connections
        self.keepalive_interval = keepalive_interval
        self.request_timeout = request_timeout
        self.max_inflight = max_inflight
        self.max_buffered = max_buffered
        self.connections: dict[str, _Connection] = {}
        #: Gives memory back after many connections (or the last one) ended (``_release``).
        self._releaser = Releaser(self._release)

    # -- GET /sse --------------------------------------------------------------------------------

    async def stream(self, root_path: str, receive: Receive, send: Send, *, owner: str | None = None) -> None:
        """Open a connection and hold its event stream until the client or the server ends it.
        ``owner``: the authenticated principal's key; its handlers see that principal (the runner
        task inherits the request's context)."""
        if len(self.connections) >= self.max_connections:
            await _reject(send, 503, INVALID_REQUEST, "Service Unavailable: too many SSE connections", [(b"retry-after", b"5")])
            return
        if not self.connections:
            prepare_trim()  # before the first connection: see anyport.runtime._heap.prepare (a no-op after)
        session_id = secrets.token_hex(16)  # T-SSE-06: per-connection, unguessable
        channel = SSEChannel(self.max_buffered)
        session = StreamRuntime(self.server, channel, request_timeout=self.request_timeout, id=session_id)
        session.conn.max_inflight = self.max_inflight
        runner = asyncio.get_running_loop().create_task(session.run())
        conn = _Connection(session_id, channel, runner, owner)
        self.connections[session_id] = conn
        log.debug("SSE connection %s opened", session_id[:8])
        gone = asyncio.get_running_loop().create_task(disconnected(receive))
        getter: asyncio.Task[bytes | None] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)})
            endpoint = f"{root_path.rstrip('/')}{self.messages_path}?session_id={session_id}"
            await send({"type": "http.response.body", "body": named_event("endpoint", endpoint), "more_body": True})  # T-SSE-02
            while True:
                if getter is None:
                    getter = asyncio.get_running_loop().create_task(channel.outbox.get())
                done, _ = await asyncio.wait({getter, gone}, timeout=self.keepalive_interval, return_when=asyncio.FIRST_COMPLETED)
                if gone in done:
                    return  # T-SSE-07: the client closed the stream
                if getter not in done:
                    await send({"type": "http.response.body", "body": comment(), "more_body": True})
                    continue
                data, getter = getter.result(), None
                channel.taken()
                if data is _END:
                    break  # the server ends the connection (shutdown)
                await send({"type": "http.response.body", "body": named_event("message", data), "more_body": True})  # T-SSE-04
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away while we wrote
        finally:
            if getter is not None:
                getter.cancel()
            gone.cancel()
            self.connections.pop(session_id, None)
            channel.close()  # the server loop sees EOF and cancels what still runs
            await asyncio.wait({runner}, timeout=5)
            self._releaser.ended(last=not self.connections)
            if runner.done() and not runner.cancelled() and runner.exception() is not None:
                log.error("SSE connection %s failed", session_id[:8], exc_info=runner.exception())
            log.debug("SSE connection %s closed", session_id[:8])

    # -- POST /messages/ -------------------------------------------------------------------------

    async def post(
        self, query_string: bytes, content_type: str | None, read_body: Callable[[], Awaitable[bytes | None]], send: Send,
        *, max_body_bytes: int, owner: str | None = None, scope_refusal: Callable[[Any], Any] | None = None,
        rate_limited: Callable[[Any, Send], Awaitable[bool]] | None = None,
    ) -> None:
        """One client message for a connection: 202 here, the answer on that connection's stream.
        A connection opened by another principal is unknown (404); ``scope_refusal`` may refuse
        the message (403 ``insufficient_scope``) and ``rate_limited`` answer it (429, per-tool
        rates) before it reaches the connection."""
        values = parse_qs(query_string.decode("latin-1")).get("session_id")
        if not values:
            await _reject(send, 400, INVALID_REQUEST, "Bad Request: session_id is required")
            return
        session_id = values[0].strip().lower()
        if not _SESSION_ID.fullmatch(session_id):
            await _reject(send, 400, INVALID_REQUEST, "Bad Request: invalid session_id")
            return
        conn = self.connections.get(session_id)
        if conn is None or conn.channel.closed or conn.owner != owner:
            await _reject(send, 404, INVALID_REQUEST, "Not Found: unknown or closed session")
            return
        if content_type is not None and content_type.split(";", 1)[0].strip().lower() != "application/json":
            await _reject(send, 415, INVALID_REQUEST, "Unsupported Media Type: Content-Type must be application/json")
            return
        body = await read_body()
        if body is None:
            await _reject(send, 413, INVALID_REQUEST, f"Payload Too Large: the limit is {max_body_bytes} bytes")
            return
        try:
            parsed: Any = loads(body)
        except ParseError as exc:
            await _reject(send, 400, PARSE_ERROR, exc.message)
            return
        if not isinstance(parsed, dict | list):
            await _reject(send, 400, INVALID_REQUEST, "Bad Request: the body must be a JSON-RPC message")
            return
        refusal = scope_refusal(parsed) if scope_refusal is not None else None
        if refusal is not None:
            await _reject(send, refusal.status, INVALID_REQUEST, refusal.message, refusal.headers)
            return
        if rate_limited is not None and await rate_limited(parsed, send):
            return
        if conn.channel.closed:
            await _reject(send, 404, INVALID_REQUEST, "Not Found: unknown or closed session")
            return
        if conn.channel.inbox.qsize() >= self.max_buffered:
            # The connection is not keeping up (its client does not read the stream): refuse rather
            # than queue without bound; nothing of this message was taken.
            await _reject(send, 503, INVALID_REQUEST, "Service Unavailable: too many messages waiting on this connection", [(b"retry-after", b"1")])
            return
        conn.channel.deliver(body, PRINCIPAL.get() if owner is not None else None)
        await send_body(send, 202, b"Accepted", b"text/plain; charset=utf-8")

    def _release(self) -> None:
        """Many connections ended (or the last one): the table shrinks to what is left (dicts never
        shrink by themselves) and the C heap returns its free pages (``anyport.runtime._heap``)."""
        self.connections = dict(self.connections)
        trim_heap()

    # -- shutdown ---------------------------------------------------------------------------------

    def end(self, session_id: str) -> bool:
        """End one connection's stream (its application ended the session); False when there is none."""
        conn = self.connections.get(session_id)
        if conn is None:
            return False
        conn.channel.close()
        return True

    def close_all(self) -> None:
        """End every stream (server shutdown); safe to call from the event loop at any time."""
        for conn in list(self.connections.values()):
            conn.channel.close()

    async def aclose(self) -> None:
        self._releaser.cancel()
        self.close_all()
        runners = [c.runner for c in self.connections.values()]
        if runners:
            await asyncio.wait(runners, timeout=5)
