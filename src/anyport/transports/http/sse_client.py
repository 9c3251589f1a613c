"""The deprecated HTTP+SSE transport of 2024-11-05, client side (T-SSE-*, T-BC-02..04).

```
GET  <sse url>          -> 200 text/event-stream; first event: endpoint, data: /messages/?session_id=...
POST <endpoint>         -> 202; the answer arrives on the GET stream as an event named message
```

``start()`` opens the GET stream and waits (bounded) for its first event. Anything but an
``endpoint`` event, a non-200 status or another content type raises ``NotAnSSEEndpointError``,
which tells ``Client`` this URL does not serve the old transport. The endpoint is resolved
against the SSE URL and refused when it points at another origin (T-SSE-06): the messages we
POST must not go anywhere the user did not name.

Every later message is POSTed to the endpoint (T-SSE-03); every ``message`` event of the GET
stream is queued for ``receive()`` (T-SSE-04). A POST the server refuses answers the requests it
carried with a made-up JSON-RPC error, so no caller waits forever; the stream ending ends the
connection (T-SSE-07: no resumption, no DELETE).

httpx is imported only when a stream is created; importing this module loads none of the server
side of ``anyport.transports.http``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from anyport._exceptions import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    AuthError,
    BrokenConnectionError,
    ConnectionClosedError,
    JSONRPCError,
    NotAnSSEEndpointError,
)
from anyport.protocol import SSEParser, brief, dumps, is_request_id, loads
from anyport.transports.http._client_httpx import auth_required, client_for, load_httpx

if TYPE_CHECKING:
    import httpx

__all__ = ["LegacySSEClientStream", "NotAnSSEEndpointError"]  # the error lives in anyport._exceptions

log = logging.getLogger("anyport.http.sse_client")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def resolve_endpoint(sse_url: str, data: str) -> str:
    """The URL to POST to: ``data`` resolved against ``sse_url``; another origin is refused (T-SSE-06)."""
    try:
        endpoint = urljoin(sse_url, data.strip())
        other = _origin(endpoint) != _origin(sse_url)
    except ValueError as exc:  # a port out of range, an unclosed "[": not a URL we can POST to
        raise NotAnSSEEndpointError(f"the server named an invalid endpoint ({brief(data)}): {exc}") from exc
    if other:
        raise NotAnSSEEndpointError(
            f"the server named an endpoint on another origin ({brief(endpoint)}); refusing to POST there"
        )
    return endpoint


def _request_ids(obj: Any) -> list[str | int]:
    items = obj if isinstance(obj, list) else [obj]
    return [m["id"] for m in items if isinstance(m, dict) and "method" in m and is_request_id(m.get("id"))]


class LegacySSEClientStream:
    """A ``MessageStream`` over the 2024-11-05 HTTP+SSE transport.

    Args:
        url: the SSE endpoint, e.g. ``http://127.0.0.1:8000/sse``.
        headers: extra headers for the GET and every POST (e.g. ``Authorization``).
        timeout: seconds to connect, write, and wait for a pool slot.
        sse_read_timeout: seconds without any bytes before the stream is given up (None: never).
        endpoint_timeout: seconds to wait for the first event after the GET was answered.
        httpx_client: an ``httpx.AsyncClient`` to use (it is not closed by ``aclose()``).
        auth: an ``httpx.Auth`` for the GET and every POST (e.g. ``anyport.oauth.OAuth``).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        sse_read_timeout: float | None = 300.0,
        endpoint_timeout: float = 10.0,
        httpx_client: httpx.AsyncClient | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.endpoint_timeout = endpoint_timeout
        #: Where messages are POSTed, once ``start()`` read the ``endpoint`` event.
        self.endpoint: str | None = None
        self._client, self._owns_client = client_for(httpx_client, timeout, sse_read_timeout, auth)
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self._response: httpx.Response | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    # -- opening ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """GET the SSE URL and read the ``endpoint`` event (T-SSE-02), within ``endpoint_timeout``."""
        hx = load_httpx()
        headers = {**self.headers, "accept": "text/event-stream", "cache-control": "no-cache"}
        request = self._client.build_request("GET", self.url, headers=headers)
        try:
            resp = await self._client.send(request, stream=True)
        except hx.HTTPError as exc:
            await self._close_client()
            raise BrokenConnectionError(f"GET {self.url} failed: {exc!r}") from exc
        except AuthError:
            await self._close_client()
            raise
        self._response = resp
        try:
            if resp.status_code == 401:
                raise auth_required(self.url, resp.headers.get("www-authenticate"))
            ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if resp.status_code != 200 or ctype != "text/event-stream":
                raise NotAnSSEEndpointError(
                    f"GET {self.url} answered HTTP {resp.status_code} ({ctype or 'no content type'}), "
                    "not an HTTP+SSE event stream",
                    status=resp.status_code,
                )
            parser = SSEParser()
            chunks = resp.aiter_bytes()
            try:
                pending = await asyncio.wait_for(self._first_event(chunks, parser), self.endpoint_timeout)
            except TimeoutError:
                raise NotAnSSEEndpointError(
                    f"GET {self.url}: no endpoint event within {self.endpoint_timeout} s", status=200
                ) from None
            except hx.HTTPError as exc:
                raise BrokenConnectionError(f"the event stream of {self.url} broke: {exc!r}") from exc
        except BaseException:
            await self.aclose()
            raise
        self._reader = asyncio.get_running_loop().create_task(self._read(chunks, parser, pending))

    async def _first_event(self, chunks: Any, parser: SSEParser) -> list[bytes]:
        """Read up to the first event; it must be ``endpoint``. Returns messages already received after it."""
        async for chunk in chunks:
            events = parser.feed(chunk)
            if not events:
                continue
            first, rest = events[0], events[1:]
            if first.event != "endpoint":
                raise NotAnSSEEndpointError(
                    f"GET {self.url}: the first event is {first.event!r}, not endpoint", status=200
                )
            self.endpoint = resolve_endpoint(self.url, first.data)
            return [ev.data.encode() for ev in rest if ev.event == "message" and ev.data.strip()]
        raise NotAnSSEEndpointError(f"GET {self.url}: the stream ended before an endpoint event", status=200)

    async def _read(self, chunks: Any, parser: SSEParser, pending: list[bytes]) -> None:
        hx = load_httpx()
        for data in pending:
            self._queue.put_nowait(data)
        try:
            async for chunk in chunks:
                for ev in parser.feed(chunk):
                    if ev.event == "message" and ev.data.strip():
                        self._queue.put_nowait(ev.data.encode())
                    elif ev.event != "message":
                        log.debug("ignoring an SSE event of type %r", ev.event)
        except hx.HTTPError as exc:
            if not self._closed:
                self._queue.put_nowait(BrokenConnectionError(f"the event stream of {self.url} broke: {exc!r}"))
                return
        except asyncio.CancelledError:
            return
        if not self._closed:
            self._queue.put_nowait(BrokenConnectionError(f"the server closed the event stream of {self.url}"))

    # -- MessageStream ----------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionClosedError("the HTTP+SSE client is closed")
        if self.endpoint is None:
            raise ConnectionClosedError("the HTTP+SSE client is not started")
        hx = load_httpx()
        try:
            obj = loads(data)
        except JSONRPCError as exc:
            raise ValueError(f"not a JSON-RPC message: {exc.message}") from exc
        headers = {**self.headers, "content-type": "application/json"}
        try:
            r = await self._client.post(self.endpoint, content=data, headers=headers)
        except hx.HTTPError as exc:
            raise BrokenConnectionError(f"POST to {self.endpoint} failed: {exc!r}") from exc
        if r.status_code < 300:
            return
        if r.status_code == 401:
            raise auth_required(self.endpoint, r.headers.get("www-authenticate"))
        ids = _request_ids(obj)
        detail = r.text[:200]
        if not ids:
            raise BrokenConnectionError(f"the server refused a message: HTTP {r.status_code}: {detail}")
        code = INVALID_REQUEST if 400 <= r.status_code < 500 else INTERNAL_ERROR
        for id_ in ids:  # answer the waiting requests instead of leaving them to time out
            err = {"code": code, "message": f"HTTP {r.status_code}: {detail}".rstrip(": "), "data": {"httpStatus": r.status_code}}
            self._queue.put_nowait(dumps({"jsonrpc": "2.0", "id": id_, "error": err}))

    async def receive(self) -> bytes | None:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)
            return None
        if isinstance(item, BaseException):
            self._queue.put_nowait(item)  # every later receive() sees the failure too
            raise item
        return item

    async def aclose(self) -> None:
        """Close the event stream (this ends the connection on the server, T-SSE-07)."""
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)
        if self._response is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._response.aclose(), 5)
        await self._close_client()
        self._queue.put_nowait(None)

    async def _close_client(self) -> None:
        if self._owns_client:
            with contextlib.suppress(Exception):
                await self._client.aclose()
