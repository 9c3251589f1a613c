"""Streamable HTTP, client side: a ``MessageStream`` over POSTs to one MCP endpoint.

``Client("http://127.0.0.1:8000/mcp")`` runs on this. Each message the session sends is its own
POST (T-HTTP-05, T-H26-03); what comes back on the response is queued for ``receive()``:

- ``application/json``: one message, or each element of a 2025-03-26 batch array (T-HTTP-10);
- ``text/event-stream``: every ``message`` event with data, parsed incrementally (DIGEST §21);
- ``202 Accepted``: nothing (a notification or a response was accepted, T-HTTP-08).

Legacy era: the ``Mcp-Session-Id`` of the initialize response is sent on every later request
(T-HTTP-37), ``MCP-Protocol-Version`` carries the negotiated version (T-HTTP-43), a response
stream that drops before its answer is resumed with GET + ``Last-Event-ID`` after the server's
``retry:`` delay (T-HTTP-30), a 404 to a request that carried the session id ends the
connection with ``SessionTerminatedError`` (T-HTTP-39/40: ``Client`` then starts a new session
and re-sends the request once), and ``aclose()`` DELETEs the session (T-HTTP-41).

Standalone GET stream (legacy era, T-HTTP-19..24): once ``notifications/initialized`` of a legacy
session was accepted, one background GET (``Accept: text/event-stream``, the session id and the
negotiated version, T-HTTP-20) listens for what the server sends unasked: its requests and
notifications join the messages of the POST streams in ``receive()``, so the session answers and
dispatches them the same way. 405 (also 404, or 400 to a GET without ``Last-Event-ID``) means the
server offers no such stream (T-HTTP-21): the listener stops without a word and is not retried.
A stream that ends or breaks is reopened with ``Last-Event-ID`` (T-HTTP-30) after the server's
``retry:`` (T-HTTP-13) or ``default_retry`` seconds, doubled after each attempt that brought
nothing (at most ``max_reconnects`` of those in a row); an event id already delivered is not
delivered again. ``listen`` switches it: ``"auto"`` (default) opens it when the capabilities
exchanged say something may come unasked, ``True`` always, ``False`` never. Never on 2026-07-28
(``subscriptions/listen`` plays that role) and never by the HTTP+SSE transport (``http.sse_client``).

2026-07-28: a request whose ``_meta`` names a protocol version gets ``MCP-Protocol-Version``
equal to it, ``Mcp-Method`` and, for ``tools/call`` / ``prompts/get`` / ``resources/read``,
``Mcp-Name``; values that are not plain visible ASCII are sent as ``=?base64?...?=``
(T-H26-12..16). Cancelling such a request closes its response stream instead of POSTing
``notifications/cancelled`` (T-H26-11). The stream reads every 2026-07-28 ``tools/list`` result
that passes through it: tools whose ``x-mcp-header`` annotations are invalid are dropped from it
(with a warning, T-H26-20), and a later ``tools/call`` of an annotated tool carries
``Mcp-Param-<Name>`` headers for the annotated arguments (T-H26-19, see ``anyport.protocol._param_headers``).

Falling back to HTTP+SSE (T-BC-02..04) is ``Client``'s decision; the stream only records, in
``initialize_refusal``, how the server refused an ``initialize`` POST (its status, whether the
body was a modern JSON-RPC error, or whether a 200 stream opened with an ``endpoint`` event).

HTTP errors never leave a caller waiting: a 4xx/5xx whose body is a JSON-RPC error is delivered
as the answer (with the request's id filled in when the server could not name it); without a
usable body a JSON-RPC error carrying the HTTP status is made up for each request of that POST.

httpx is imported only when a stream is created, so ``import anyport`` stays light; importing
this module loads none of the server side of ``anyport.transports.http``. The stream's parts:
``_Post`` here (one POST with requests and the reading of its response), ``_client_listen``
(the standalone GET stream), ``_client_httpx`` (httpx, shared with ``sse_client``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from anyport._exceptions import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    AuthError,
    BrokenConnectionError,
    ConnectionClosedError,
    JSONRPCError,
    SessionTerminatedError,
    TransportError,
)
from anyport.protocol import (
    REVISIONS,
    ParamHeader,
    SSEParser,
    dumps,
    is_request_id,
    loads,
    meta_version,
    metadata_headers,
    usable_tools,
)
from anyport.transports.http._client_httpx import auth_required, client_for, load_httpx
from anyport.transports.http._client_listen import Listener

if TYPE_CHECKING:
    import httpx

__all__ = ["HTTPRefusal", "StreamableHTTPClientStream"]

log = logging.getLogger("anyport.http.client")

ACCEPT = "application/json, text/event-stream"


#: JSON-RPC error codes only a 2026-07-28-aware server sends (T-BC-05).
_MODERN_CODES = frozenset({-32020, -32021, -32022})


@dataclass(frozen=True, slots=True)
class HTTPRefusal:
    """How the server answered an ``initialize`` POST that did not open a Streamable HTTP session."""

    status: int
    #: The body was a JSON-RPC error with a code only a modern server sends (-32020/-32021/-32022).
    modern_error: bool = False
    #: The answer was an event stream opening with an ``endpoint`` event (T-BC-04).
    endpoint_event: bool = False

    def suggests_sse(self, version: str) -> bool:
        """True when the 2024-11-05 HTTP+SSE transport is worth a try (T-BC-03/04/05).

        The statuses depend on the revision offered: any 4xx but 401/403 up to 2025-06-18,
        only 400/404/405 from 2025-11-25 (401 means authentication, not an old transport).
        """
        if self.endpoint_event:
            return True
        rev = REVISIONS.get(version)
        statuses = rev.fallback_statuses if rev is not None else frozenset({400, 404, 405})
        return self.status in statuses and not self.modern_error


def _error_response(id_: str | int, code: int, message: str, data: Any = None) -> bytes:
    """A JSON-RPC error response to ``id_`` (made up by the client for an answer that cannot come)."""
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return dumps({"jsonrpc": "2.0", "id": id_, "error": err})


def _error_body(body: bytes) -> bool:
    """The body is a JSON-RPC error response (or an array of responses)."""
    try:
        obj = loads(body)
    except JSONRPCError:
        return False
    items = obj if isinstance(obj, list) else [obj]
    return bool(items) and all(isinstance(m, dict) and ("error" in m or "result" in m) for m in items)


def _modern_error_body(body: bytes) -> bool:
    try:
        obj = loads(body)
    except JSONRPCError:
        return False
    err = obj.get("error") if isinstance(obj, dict) else None
    return isinstance(err, dict) and err.get("code") in _MODERN_CODES


class _Post:
    """One POST that carries requests: what it still owes (the answers to ``ids``), the reading of
    its response and its resumption (T-HTTP-30); the state it works on is its stream's."""

    __slots__ = ("handshake", "ids", "initialize", "modern", "stream", "task")

    def __init__(
        self, stream: StreamableHTTPClientStream, ids: set[str | int], modern: bool, initialize: bool = False,
        handshake: bool = False,
    ) -> None:
        self.stream = stream
        self.ids = ids
        self.modern = modern
        self.initialize = initialize
        #: ``initialize`` or ``server/discover``: a 401 to it ends the connection (nothing works without auth).
        self.handshake = handshake or initialize
        self.task: asyncio.Task[None] | None = None

    async def run(self, data: bytes, headers: dict[str, str]) -> None:
        """POST ``data``; read the answers; resume or give up when the response ends without them."""
        s = self.stream
        hx = load_httpx()
        parser = SSEParser()
        try:
            try:
                async with s._client.stream("POST", s.url, content=data, headers=headers) as resp:
                    if self.initialize:
                        sid = resp.headers.get("mcp-session-id")
                        if sid is not None:
                            s.session_id = sid.strip()
                    await self._read_response(resp, parser, sent_session="mcp-session-id" in headers)
            except hx.ConnectError as exc:
                s._fail(BrokenConnectionError(f"cannot connect to {s.url}: {exc!r}"))
                return
            except hx.HTTPError as exc:
                if not self.ids:
                    return
                if self.modern or not parser.last_event_id:
                    self.give_up(INTERNAL_ERROR, f"the HTTP exchange with {s.url} failed: {exc!r}")
                    return
            if self.ids and not self.modern and parser.last_event_id:
                await self._resume(parser)
            if self.ids:
                self.give_up(INTERNAL_ERROR, "the server ended the response stream before the response")
        except AuthError as exc:  # the auth= flow could not authorize: nothing more will get through
            s._fail(exc)
        finally:
            for id_ in self.ids:
                s._posts.pop(id_, None)
                s._cancelled.discard(id_)

    def give_up(self, code: int, message: str, data: Any = None) -> None:
        """Answer every request of this POST still waiting with a made-up JSON-RPC error."""
        s = self.stream
        for id_ in list(self.ids):
            self.ids.discard(id_)
            s._posts.pop(id_, None)
            s._initialize_ids.discard(id_)
            if id_ in s._cancelled:
                s._cancelled.discard(id_)
                continue
            s._queue.put_nowait(_error_response(id_, code, message, data))

    async def _read_response(self, resp: httpx.Response, parser: SSEParser, *, sent_session: bool) -> None:
        s = self.stream
        status = resp.status_code
        ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if status == 202:
            self.give_up(INTERNAL_ERROR, "the server accepted the request (HTTP 202) but sent no response")
            return
        if status >= 300:
            body = await resp.aread()
            if status == 404 and sent_session:
                s._cancelled.update(self.ids)  # the waiters get the connection's failure instead
                s._session_gone()
                return
            if self.initialize:
                s.initialize_refusal = HTTPRefusal(status, modern_error=_modern_error_body(body))
            if status == 401 and self.handshake:  # authentication, never an old transport (T-BC-03)
                s._cancelled.update(self.ids)
                s._fail(auth_required(s.url, resp.headers.get("www-authenticate")))
                return
            if _error_body(body):
                s._deliver(body, self, fill_id=True)
            message = f"HTTP {status} {resp.reason_phrase}: {body[:200].decode('utf-8', 'replace')}".rstrip(": ")
            if status == 401:
                message += " (the server requires authorization: connect with auth=anyport.oauth.OAuth())"
            self.give_up(INVALID_REQUEST if 400 <= status < 500 else INTERNAL_ERROR, message, {"httpStatus": status})
            return
        if ctype == "text/event-stream":
            await self._read_sse(resp, parser)
            return
        body = await resp.aread()
        if ctype == "application/json" or body[:1] in (b"{", b"["):
            s._deliver(body, self)
        self.give_up(INTERNAL_ERROR, f"unexpected response (HTTP {status}, {ctype or 'no content type'})")

    def _endpoint_instead(self) -> None:
        """T-BC-04: an old HTTP+SSE server answered our ``initialize`` POST with its event stream."""
        self.stream.initialize_refusal = HTTPRefusal(200, endpoint_event=True)
        self.give_up(
            INVALID_REQUEST,
            "the server answered with an HTTP+SSE endpoint event: it speaks the 2024-11-05 transport",
            {"httpStatus": 200},
        )

    async def _read_sse(self, resp: httpx.Response, parser: SSEParser) -> bool:
        """Queue the stream's messages until our answers arrived; True when any event came."""
        deliver = self.stream._deliver
        seen = False
        async for chunk in resp.aiter_bytes():
            for ev in parser.feed(chunk):
                seen = True
                if ev.event == "endpoint" and self.initialize:
                    self._endpoint_instead()
                    return seen
                if ev.event == "message" and ev.data.strip():  # a priming event has empty data
                    deliver(ev.data, self)
            if not self.ids:
                return seen  # our answers are in: no need to wait for the server to end the stream
        return seen

    async def _resume(self, parser: SSEParser) -> None:
        """GET + ``Last-Event-ID`` until the answers arrive (T-HTTP-30), honouring ``retry:`` (T-HTTP-13)."""
        s = self.stream
        hx = load_httpx()
        failures = 0
        while self.ids and failures < s.max_reconnects and not s._closed:
            delay = parser.retry / 1000 if parser.retry is not None else s.default_retry
            await asyncio.sleep(delay)
            if all(i in s._cancelled for i in self.ids):
                return
            headers = s._get_headers(parser.last_event_id)
            # Keep what the server told us, but start the new connection on a clean line.
            fresh = SSEParser(parser.last_event_id)
            fresh.retry = parser.retry
            try:
                async with s._client.stream("GET", s.url, headers=headers) as resp:
                    ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                    if resp.status_code != 200 or ctype != "text/event-stream":
                        await resp.aread()
                        if resp.status_code == 404 and s.session_id is not None:
                            s._cancelled.update(self.ids)
                            s._session_gone()
                            return
                        self.give_up(
                            INTERNAL_ERROR,
                            f"the response stream broke and could not be resumed (GET answered HTTP {resp.status_code})",
                            {"httpStatus": resp.status_code},
                        )
                        return
                    progressed = await self._read_sse(resp, fresh)
            except hx.HTTPError:
                progressed = False
            parser.last_event_id = fresh.last_event_id  # T-HTTP-30: kept even when nothing new came
            parser.retry = fresh.retry
            failures = 0 if progressed else failures + 1


class StreamableHTTPClientStream:
    """A ``MessageStream`` to a Streamable HTTP MCP endpoint.

    Args:
        url: the MCP endpoint, e.g. ``http://127.0.0.1:8000/mcp``.
        headers: extra headers for every request (e.g. ``Authorization``).
        timeout: seconds to connect, write, and wait for a pool slot.
        sse_read_timeout: seconds without any bytes before a response is given up (None: never).
            Servers send keep-alive comments on quiet streams, so this only catches dead peers.
        httpx_client: an ``httpx.AsyncClient`` to use (it is not closed by ``aclose()``).
        max_reconnects: GET + ``Last-Event-ID`` attempts in a row that bring nothing new (for
            a broken response stream, and for the standalone GET stream).
        default_retry: seconds to wait before resuming when the server sent no ``retry:``.
        listen: the standalone GET stream of a legacy session (T-HTTP-19): ``"auto"`` opens it
            after ``notifications/initialized`` when the capabilities exchanged allow messages
            nobody asked for (the client declared elicitation, sampling, roots or tasks, or the
            server declared logging, tasks, ``listChanged`` or ``subscribe``); ``True`` always
            opens it, ``False`` never. Its reads are bounded by ``sse_read_timeout`` (servers
            send keep-alive comments), and it holds one connection of the httpx pool.
        auth: an ``httpx.Auth`` every request goes through (e.g. ``anyport.oauth.OAuth``); a 401
            that still reaches the stream fails the connection with ``AuthRequiredError``.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        sse_read_timeout: float | None = 300.0,
        httpx_client: httpx.AsyncClient | None = None,
        max_reconnects: int = 3,
        default_retry: float = 1.0,
        listen: bool | Literal["auto"] = "auto",
        auth: httpx.Auth | None = None,
    ) -> None:
        if listen not in (True, False, "auto"):
            raise ValueError("listen is True, False or 'auto'")
        self.url = url
        self.headers = dict(headers or {})
        self.max_reconnects = max_reconnects
        self.default_retry = default_retry
        self.listen: bool | Literal["auto"] = listen
        self.session_id: str | None = None
        #: The version negotiated by ``initialize`` (sent as ``MCP-Protocol-Version`` afterwards).
        self.protocol_version: str | None = None
        self._client, self._owns_client = client_for(httpx_client, timeout, sse_read_timeout, auth)
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self._posts: dict[str | int, _Post] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._initialize_ids: set[str | int] = set()
        self._cancelled: set[str | int] = set()
        self._failure: TransportError | None = None
        self._closed = False
        #: How the server refused the last ``initialize`` POST (None: it did not).
        self.initialize_refusal: HTTPRefusal | None = None
        self._tool_params: dict[str, list[ParamHeader]] = {}
        self._tools_list_ids: set[str | int] = set()
        self._listener = Listener(self, timeout, sse_read_timeout)  # the standalone GET stream (legacy era)

    @property
    def listening(self) -> bool:
        """True while the standalone GET stream's task runs (connected or waiting to reconnect)."""
        return self._listener.listening

    # -- MessageStream ----------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionClosedError("the HTTP client is closed")
        if self._failure is not None:
            raise self._failure
        try:
            obj = loads(data)
        except JSONRPCError as exc:
            raise ValueError(f"not a JSON-RPC message: {exc.message}") from exc
        items = obj if isinstance(obj, list) else [obj]
        first = items[0] if items and isinstance(items[0], dict) else {}
        requests = [m for m in items if isinstance(m, dict) and "method" in m and is_request_id(m.get("id"))]
        if not requests and first.get("method") == "notifications/cancelled" and not isinstance(obj, list):
            if self._cancel(first):
                return
        headers = self._headers_for(first, modern=self._is_modern(first))
        if not requests:
            await self._post_oneway(data, headers, str(first.get("method") or "response"))
            if first.get("method") == "notifications/initialized" and not isinstance(obj, list):
                await self._listener.start()
            return
        ids: set[str | int] = {m["id"] for m in requests}
        for m in requests:
            if m.get("method") == "initialize":
                self._initialize_ids.add(m["id"])
                self._listener.stop()  # a new handshake: the old session's stream is not ours any more
                params = m.get("params")
                caps = params.get("capabilities") if isinstance(params, dict) else None
                self._listener.client_caps = dict(caps) if isinstance(caps, dict) else {}
            elif m.get("method") == "tools/list" and self._is_modern(m):
                self._tools_list_ids.add(m["id"])
        initialize = any(m.get("method") == "initialize" for m in requests)
        if initialize:
            self.initialize_refusal = None
        handshake = any(m.get("method") == "server/discover" for m in requests)
        post = _Post(self, ids, modern=self._is_modern(first), initialize=initialize, handshake=handshake)
        for id_ in ids:
            self._posts[id_] = post
        task = asyncio.get_running_loop().create_task(post.run(data, headers))
        post.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def receive(self) -> bytes | None:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # every later receive() sees the end too
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        """Stop every exchange, DELETE the session (T-HTTP-41; 405 is fine), close our httpx client."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self.session_id is not None and self._failure is None:
            headers = {**self.headers, "mcp-session-id": self.session_id}
            if self.protocol_version is not None:
                headers["mcp-protocol-version"] = self.protocol_version
            try:
                r = await self._client.delete(self.url, headers=headers, timeout=5.0)
                if r.status_code not in (200, 202, 204, 404, 405):
                    log.debug("DELETE of the session answered %s", r.status_code)
            except Exception as exc:
                log.debug("DELETE of the session failed: %r", exc)
        if self._owns_client:
            await self._client.aclose()
        self._queue.put_nowait(None)

    # -- headers ----------------------------------------------------------------------------------

    @staticmethod
    def _is_modern(msg: Mapping[str, Any]) -> bool:
        return isinstance(meta_version(msg), str)

    def _headers_for(self, msg: Mapping[str, Any], *, modern: bool) -> dict[str, str]:
        headers = {**self.headers, "accept": ACCEPT, "content-type": "application/json"}
        method = msg.get("method")
        if method == "initialize":
            return headers  # a new handshake starts without session or version (T-HTTP-40)
        if modern:
            params = msg.get("params")
            name = params.get("name") if method == "tools/call" and isinstance(params, dict) else None
            decls = self._tool_params.get(name) if isinstance(name, str) else None
            headers.update(metadata_headers(dict(msg), decls))  # T-H26-12..15, T-H26-19
            return headers
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id  # T-HTTP-37
        if self.protocol_version is not None:
            headers["mcp-protocol-version"] = self.protocol_version  # T-HTTP-43
        return headers

    def _filter_tools(self, msg: dict[str, Any]) -> bool:
        """A 2026-07-28 ``tools/list`` result: keep the annotations, drop invalid tools (T-H26-20).

        True when the result was changed.
        """
        result = msg.get("result")
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(tools, list):
            return False
        kept, decls, dropped = usable_tools(tools)
        for name, reason in dropped:
            log.warning("dropping tool %r from tools/list: invalid x-mcp-header (%s)", name, reason)
            self._tool_params.pop(name, None)
        self._tool_params.update(decls)
        if len(kept) == len(tools):
            return False
        assert isinstance(result, dict)
        result["tools"] = kept
        return True

    def _get_headers(self, last_event_id: str) -> dict[str, str]:
        headers = {**self.headers, "accept": "text/event-stream"}
        if last_event_id:
            headers["last-event-id"] = last_event_id
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
        if self.protocol_version is not None:
            headers["mcp-protocol-version"] = self.protocol_version
        return headers

    # -- cancellation -----------------------------------------------------------------------------

    def _cancel(self, msg: Mapping[str, Any]) -> bool:
        """``notifications/cancelled``: True when it was handled by closing the stream (T-H26-11)."""
        params = msg.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        if not is_request_id(request_id):
            return False
        assert isinstance(request_id, (str, int))
        post = self._posts.get(request_id)
        if post is None:
            return False
        self._cancelled.add(request_id)  # its stream may now end without an answer: not an error
        if not post.modern:
            return False  # legacy: POST the notification (T-HTTP-18)
        if post.task is not None:
            post.task.cancel()
        return True

    # -- one-way POSTs ----------------------------------------------------------------------------

    async def _post_oneway(self, data: bytes, headers: dict[str, str], what: str) -> None:
        hx = load_httpx()
        try:
            r = await self._client.post(self.url, content=data, headers=headers)
        except hx.HTTPError as exc:
            raise BrokenConnectionError(f"POST of {what} to {self.url} failed: {exc!r}") from exc
        except AuthError as exc:
            raise self._fail(exc) from None
        if r.status_code < 300:
            return
        if r.status_code == 401:
            raise self._fail(auth_required(self.url, r.headers.get("www-authenticate")))
        if r.status_code == 404 and "mcp-session-id" in headers:
            raise self._session_gone()
        detail = r.text[:300]
        with contextlib.suppress(JSONRPCError):
            body = loads(r.content)
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                detail = str(body["error"].get("message"))
        raise BrokenConnectionError(f"the server refused {what}: HTTP {r.status_code}: {detail}")

    def _session_gone(self) -> SessionTerminatedError:
        exc = SessionTerminatedError(
            f"the server ended session {self.session_id!r} (HTTP 404); connect again to start a new session"
        )
        self._fail(exc)
        return exc

    def _fail(self, exc: TransportError) -> TransportError:
        if self._failure is None:
            self._failure = exc
            self._queue.put_nowait(exc)
            self._listener.cancel()  # the session is gone: nothing more will come for it
        return exc

    # -- what the server sent (on a POST's response or on the standalone GET stream) ----------------

    def _deliver(self, payload: bytes | str, post: _Post | None, *, fill_id: bool = False) -> None:
        """Queue what the server sent; note answers (to ``post``, or to whichever POST awaits
        them when the message came on the standalone stream) and the negotiated version."""
        try:
            obj = loads(payload)
        except JSONRPCError:
            log.warning("ignoring a malformed message from the server: %.200r", payload)
            return
        messages = obj if isinstance(obj, list) else [obj]
        for msg in messages:
            if not isinstance(msg, dict) or "method" in msg:
                continue
            id_ = msg.get("id")
            if fill_id and id_ is None and post is not None and len(post.ids) == 1:
                msg["id"] = id_ = next(iter(post.ids))  # an error the server could not tie to our request
                payload = dumps(obj)
            if is_request_id(id_):
                assert isinstance(id_, (str, int))
                owner = self._posts.pop(id_, None)
                if owner is not None:
                    owner.ids.discard(id_)
                if post is not None:
                    post.ids.discard(id_)
                if id_ in self._tools_list_ids:
                    self._tools_list_ids.discard(id_)
                    if self._filter_tools(msg):
                        payload = dumps(obj)
                if id_ in self._initialize_ids:
                    self._initialize_ids.discard(id_)
                    result = msg.get("result")
                    version = result.get("protocolVersion") if isinstance(result, dict) else None
                    if isinstance(version, str):
                        self.protocol_version = version
                    caps = result.get("capabilities") if isinstance(result, dict) else None
                    self._listener.server_caps = dict(caps) if isinstance(caps, dict) else {}
        self._queue.put_nowait(payload if isinstance(payload, bytes) else payload.encode())
