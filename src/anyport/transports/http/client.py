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
(``subscriptions/listen`` plays that role) and never by the HTTP+SSE transport (``sse_client``).

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

httpx is imported only when a stream is created, so ``import anyport`` stays light.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from anyport._exceptions import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
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

if TYPE_CHECKING:
    import httpx

__all__ = ["HTTPRefusal", "StreamableHTTPClientStream"]

log = logging.getLogger("anyport.http.client")

ACCEPT = "application/json, text/event-stream"
#: Seconds ``send(notifications/initialized)`` waits for the answer to the listening GET, so what the
#: server sends unasked right after the handshake is not lost (the GET goes on in the background).
LISTEN_OPEN_WAIT = 2.0
#: Upper bound of the backoff between listening GETs that brought nothing (seconds).
LISTEN_MAX_DELAY = 30.0
#: How many event ids of the standalone stream are remembered to drop redeliveries.
_SEEN_EVENT_IDS = 1024
#: Client capabilities that let the server ask something (elicitation/create, sampling, roots/list, tasks).
_ASKABLE_CLIENT_CAPS = ("elicitation", "sampling", "roots", "tasks")


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


# -- the stream ------------------------------------------------------------------------------------


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the HTTP client transport needs httpx: pip install httpx") from exc
    return httpx


def client_for(
    httpx_client: httpx.AsyncClient | None, timeout: float, sse_read_timeout: float | None
) -> tuple[httpx.AsyncClient, bool]:
    """The given httpx client (not ours to close), or a new one (ours): ``(client, owned)``."""
    if httpx_client is not None:
        return httpx_client, False
    hx = _httpx()
    return hx.AsyncClient(timeout=hx.Timeout(timeout, read=sse_read_timeout), follow_redirects=False), True


def _may_speak_unasked(server_caps: Mapping[str, Any], client_caps: Mapping[str, Any]) -> bool:
    """True when the capabilities exchanged allow server messages no request asked for.

    The server may ask the client (it declared elicitation, sampling, roots or tasks), or the server
    declared logging, tasks, or any ``listChanged`` / ``subscribe`` capability.
    """
    if any(key in client_caps for key in _ASKABLE_CLIENT_CAPS):
        return True
    if "logging" in server_caps or "tasks" in server_caps:
        return True
    return any(
        isinstance(cap, dict) and (cap.get("listChanged") is True or cap.get("subscribe") is True)
        for cap in server_caps.values()
    )


def _error_response(id_: str | int, code: int, message: str, data: Any = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return dumps({"jsonrpc": "2.0", "id": id_, "error": err})


class _Post:
    """What one POST that carries requests still owes: the answers to these ids."""

    __slots__ = ("ids", "initialize", "modern", "task")

    def __init__(self, ids: set[str | int], modern: bool, initialize: bool = False) -> None:
        self.ids = ids
        self.modern = modern
        self.initialize = initialize
        self.task: asyncio.Task[None] | None = None


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
    ) -> None:
        if listen not in (True, False, "auto"):
            raise ValueError("listen is True, False or 'auto'")
        self.url = url
        self.headers = dict(headers or {})
        self.max_reconnects = max_reconnects
        self.default_retry = default_retry
        self.listen: bool | Literal["auto"] = listen
        self._timeout = timeout
        self._sse_read_timeout = sse_read_timeout
        self.session_id: str | None = None
        #: The version negotiated by ``initialize`` (sent as ``MCP-Protocol-Version`` afterwards).
        self.protocol_version: str | None = None
        self._client, self._owns_client = client_for(httpx_client, timeout, sse_read_timeout)
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
        # The standalone GET stream (legacy era).
        self._client_caps: dict[str, Any] = {}
        self._server_caps: dict[str, Any] = {}
        self._listener: asyncio.Task[None] | None = None
        self._seen_order: deque[str] = deque()
        self._seen: set[str] = set()

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
                await self._start_listening()
            return
        ids: set[str | int] = {m["id"] for m in requests}
        for m in requests:
            if m.get("method") == "initialize":
                self._initialize_ids.add(m["id"])
                self._stop_listening()  # a new handshake: the old session's stream is not ours any more
                params = m.get("params")
                caps = params.get("capabilities") if isinstance(params, dict) else None
                self._client_caps = dict(caps) if isinstance(caps, dict) else {}
            elif m.get("method") == "tools/list" and self._is_modern(m):
                self._tools_list_ids.add(m["id"])
        initialize = any(m.get("method") == "initialize" for m in requests)
        if initialize:
            self.initialize_refusal = None
        post = _Post(ids, modern=self._is_modern(first), initialize=initialize)
        for id_ in ids:
            self._posts[id_] = post
        task = asyncio.get_running_loop().create_task(self._exchange(post, data, headers, initialize=initialize))
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
        hx = _httpx()
        try:
            r = await self._client.post(self.url, content=data, headers=headers)
        except hx.HTTPError as exc:
            raise BrokenConnectionError(f"POST of {what} to {self.url} failed: {exc!r}") from exc
        if r.status_code < 300:
            return
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

    def _fail(self, exc: TransportError) -> None:
        if self._failure is None:
            self._failure = exc
            self._queue.put_nowait(exc)
            if self._listener is not None:
                self._listener.cancel()  # the session is gone: nothing more will come for it

    # -- exchanges: a POST that carries requests --------------------------------------------------

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
                    self._server_caps = dict(caps) if isinstance(caps, dict) else {}
        self._queue.put_nowait(payload if isinstance(payload, bytes) else payload.encode())

    def _give_up(self, post: _Post, code: int, message: str, data: Any = None) -> None:
        """Answer every request of ``post`` still waiting with a made-up JSON-RPC error."""
        for id_ in list(post.ids):
            post.ids.discard(id_)
            self._posts.pop(id_, None)
            self._initialize_ids.discard(id_)
            if id_ in self._cancelled:
                self._cancelled.discard(id_)
                continue
            self._queue.put_nowait(_error_response(id_, code, message, data))

    async def _exchange(self, post: _Post, data: bytes, headers: dict[str, str], *, initialize: bool) -> None:
        hx = _httpx()
        parser = SSEParser()
        try:
            try:
                async with self._client.stream("POST", self.url, content=data, headers=headers) as resp:
                    if initialize:
                        sid = resp.headers.get("mcp-session-id")
                        if sid is not None:
                            self.session_id = sid.strip()
                    await self._read_response(resp, post, parser, sent_session="mcp-session-id" in headers)
            except hx.ConnectError as exc:
                self._fail(BrokenConnectionError(f"cannot connect to {self.url}: {exc!r}"))
                return
            except hx.HTTPError as exc:
                if not post.ids:
                    return
                if post.modern or not parser.last_event_id:
                    self._give_up(post, INTERNAL_ERROR, f"the HTTP exchange with {self.url} failed: {exc!r}")
                    return
            if post.ids and not post.modern and parser.last_event_id:
                await self._resume(post, parser)
            if post.ids:
                self._give_up(post, INTERNAL_ERROR, "the server ended the response stream before the response")
        finally:
            for id_ in post.ids:
                self._posts.pop(id_, None)
                self._cancelled.discard(id_)

    async def _read_response(self, resp: httpx.Response, post: _Post, parser: SSEParser, *, sent_session: bool) -> None:
        status = resp.status_code
        ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if status == 202:
            self._give_up(post, INTERNAL_ERROR, "the server accepted the request (HTTP 202) but sent no response")
            return
        if status >= 300:
            body = await resp.aread()
            if status == 404 and sent_session:
                self._cancelled.update(post.ids)  # the waiters get the connection's failure instead
                self._session_gone()
                return
            if post.initialize:
                self.initialize_refusal = HTTPRefusal(status, modern_error=self._modern_error_body(body))
            if self._error_body(body):
                self._deliver(body, post, fill_id=True)
            self._give_up(
                post, INVALID_REQUEST if 400 <= status < 500 else INTERNAL_ERROR,
                f"HTTP {status} {resp.reason_phrase}: {body[:200].decode('utf-8', 'replace')}".rstrip(": "),
                {"httpStatus": status},
            )
            return
        if ctype == "text/event-stream":
            await self._read_sse(resp, post, parser)
            return
        body = await resp.aread()
        if ctype == "application/json" or body[:1] in (b"{", b"["):
            self._deliver(body, post)
        self._give_up(post, INTERNAL_ERROR, f"unexpected response (HTTP {status}, {ctype or 'no content type'})")

    @staticmethod
    def _error_body(body: bytes) -> bool:
        """The body is a JSON-RPC error response (or an array of responses)."""
        try:
            obj = loads(body)
        except JSONRPCError:
            return False
        items = obj if isinstance(obj, list) else [obj]
        return bool(items) and all(isinstance(m, dict) and ("error" in m or "result" in m) for m in items)

    @staticmethod
    def _modern_error_body(body: bytes) -> bool:
        try:
            obj = loads(body)
        except JSONRPCError:
            return False
        err = obj.get("error") if isinstance(obj, dict) else None
        return isinstance(err, dict) and err.get("code") in _MODERN_CODES

    def _endpoint_instead(self, post: _Post) -> None:
        """T-BC-04: an old HTTP+SSE server answered our ``initialize`` POST with its event stream."""
        self.initialize_refusal = HTTPRefusal(200, endpoint_event=True)
        self._give_up(
            post, INVALID_REQUEST,
            "the server answered with an HTTP+SSE endpoint event: it speaks the 2024-11-05 transport",
            {"httpStatus": 200},
        )

    async def _read_sse(self, resp: httpx.Response, post: _Post, parser: SSEParser) -> bool:
        """Queue the stream's messages until our answers arrived; True when any event came."""
        seen = False
        async for chunk in resp.aiter_bytes():
            for ev in parser.feed(chunk):
                seen = True
                if ev.event == "endpoint" and post.initialize:
                    self._endpoint_instead(post)
                    return seen
                if ev.event == "message" and ev.data.strip():  # a priming event has empty data
                    self._deliver(ev.data, post)
            if not post.ids:
                return seen  # our answers are in: no need to wait for the server to end the stream
        return seen

    async def _resume(self, post: _Post, parser: SSEParser) -> None:
        """GET + ``Last-Event-ID`` until the answers arrive (T-HTTP-30), honouring ``retry:`` (T-HTTP-13)."""
        hx = _httpx()
        failures = 0
        while post.ids and failures < self.max_reconnects and not self._closed:
            delay = parser.retry / 1000 if parser.retry is not None else self.default_retry
            await asyncio.sleep(delay)
            if all(i in self._cancelled for i in post.ids):
                return
            headers = self._get_headers(parser.last_event_id)
            # Keep what the server told us, but start the new connection on a clean line.
            fresh = SSEParser(parser.last_event_id)
            fresh.retry = parser.retry
            try:
                async with self._client.stream("GET", self.url, headers=headers) as resp:
                    ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                    if resp.status_code != 200 or ctype != "text/event-stream":
                        await resp.aread()
                        if resp.status_code == 404 and self.session_id is not None:
                            self._cancelled.update(post.ids)
                            self._session_gone()
                            return
                        self._give_up(
                            post, INTERNAL_ERROR,
                            f"the response stream broke and could not be resumed (GET answered HTTP {resp.status_code})",
                            {"httpStatus": resp.status_code},
                        )
                        return
                    progressed = await self._read_sse(resp, post, fresh)
            except hx.HTTPError:
                progressed = False
            parser.last_event_id = fresh.last_event_id  # T-HTTP-30: kept even when nothing new came
            parser.retry = fresh.retry
            failures = 0 if progressed else failures + 1

    # -- the standalone GET stream (legacy era, T-HTTP-19..24) -----------------------------------

    @property
    def listening(self) -> bool:
        """True while the standalone GET stream's task runs (connected or waiting to reconnect)."""
        return self._listener is not None and not self._listener.done()

    def _wants_listener(self) -> bool:
        if self.listen is False or self._closed or self._failure is not None or self.protocol_version is None:
            return False
        rev = REVISIONS.get(self.protocol_version)
        if rev is not None and rev.modern:
            return False  # 2026-07-28 has no GET stream: subscriptions/listen plays that role
        return self.listen is True or _may_speak_unasked(self._server_caps, self._client_caps)

    async def _start_listening(self) -> None:
        """After ``notifications/initialized``: open the GET stream, wait (bounded) for its answer."""
        self._stop_listening()
        if not self._wants_listener():
            return
        opened = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._listen(opened))
        self._listener = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(opened.wait(), LISTEN_OPEN_WAIT)

    def _stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None
        self._seen_order.clear()
        self._seen.clear()

    def _listen_delay(self, retry_ms: int | None, failures: int) -> float:
        """The server's ``retry:`` (T-HTTP-13) or ``default_retry``; doubled per empty attempt, capped."""
        base = retry_ms / 1000 if retry_ms is not None else self.default_retry
        if failures <= 1:
            return base
        return max(base, min(base * (1 << (failures - 1)), LISTEN_MAX_DELAY))

    @staticmethod
    def _listen_refusal(status: int, resumed: bool) -> Literal["stop", "again", "fresh"]:
        """What a GET answered with something else than an event stream means.

        405 is "no GET stream here" (T-HTTP-21); servers also say it with 404 or 400. A 400 to a
        ``Last-Event-ID`` is a resumption refused (an expired or unknown id): start a new stream.
        408, 429 and 5xx are passing troubles: try again later. Anything else (401, 403, 406, a
        2xx that is no event stream, ...) will not get better by asking again.
        """
        if status in (408, 429) or status >= 500:
            return "again"
        if status == 400 and resumed:
            return "fresh"
        return "stop"

    def _listen_timeout(self) -> Any:
        hx = _httpx()
        return hx.Timeout(self._timeout, read=self._sse_read_timeout)

    def _first_time(self, event_id: str) -> bool:
        """False for an event id of the standalone stream already delivered (a replay overlap)."""
        if not event_id:
            return True
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        self._seen_order.append(event_id)
        if len(self._seen_order) > _SEEN_EVENT_IDS:
            self._seen.discard(self._seen_order.popleft())
        return True

    async def _listen(self, opened: asyncio.Event) -> None:
        """Hold the standalone GET stream until close(), a refusal, or too many empty attempts."""
        hx = _httpx()
        last_id = ""
        retry_ms: int | None = None
        failures = 0
        try:
            while not self._closed and self._failure is None:
                parser = SSEParser(last_id)
                parser.retry = retry_ms
                progressed = False
                try:
                    async with self._client.stream(
                        "GET", self.url, headers=self._get_headers(last_id), timeout=self._listen_timeout()
                    ) as resp:
                        opened.set()
                        ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                        if resp.status_code != 200 or ctype != "text/event-stream":
                            await resp.aread()
                            verdict = self._listen_refusal(resp.status_code, bool(last_id))
                            if verdict == "stop":
                                log.debug("no standalone GET stream (HTTP %s): not listening", resp.status_code)
                                return
                            if verdict == "fresh":
                                log.debug("resumption with Last-Event-ID refused (HTTP 400): opening a new stream")
                                parser.last_event_id = ""
                        else:
                            async for chunk in resp.aiter_bytes():
                                progressed = True  # bytes, even a keep-alive comment: the server is there
                                for ev in parser.feed(chunk):
                                    if ev.event == "message" and ev.data.strip() and self._first_time(ev.id):
                                        self._deliver(ev.data, None)  # T-HTTP-22: into the one inbound path
                except hx.HTTPError as exc:
                    log.debug("the standalone GET stream broke: %r", exc)
                opened.set()
                last_id = parser.last_event_id  # T-HTTP-30: kept even when nothing new came
                retry_ms = parser.retry
                failures = 0 if progressed else failures + 1
                if failures > self.max_reconnects:
                    log.debug("the standalone GET stream brought nothing %d times in a row: not listening", failures)
                    return
                await asyncio.sleep(self._listen_delay(retry_ms, failures))
        except Exception:  # never let the listener take the connection down
            log.debug("the standalone GET stream failed", exc_info=True)
        finally:
            opened.set()
