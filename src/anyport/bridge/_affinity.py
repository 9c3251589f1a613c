"""Bridge replicas behind a load balancer that does not stick sessions to replicas.

A legacy session's child is a process of one replica. With the bridge's Redis (``redis=URL``) and
an ``advertise_url`` (where the other replicas reach this one), each replica writes down in Redis
which replica holds each session it opened (``<prefix>:{<session>}:bridge-owner`` -> its URL; the
claim expires with the session and is refreshed while the session lives). A request naming a
session this replica does not hold (``Mcp-Session-Id`` on the Streamable HTTP endpoint,
``session_id`` on the HTTP+SSE messages endpoint) is forwarded as it came to the owner, and the
owner's answer (JSON or an SSE stream) is streamed back; a forwarded request carries
``x-anyport-forwarded`` and is served where it lands, never forwarded twice.

When the owner cannot be reached (its replica died), the claim is dropped and the request is
served here: a Streamable HTTP session is restored from its Redis record and gets a new child (what
the old child kept in memory is lost, the session goes on); an HTTP+SSE connection died with its
replica (404, the client connects again). 2026-07-28 requests carry no session: any replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from anyport.bridge._rounds import parked_id

if TYPE_CHECKING:
    import httpx

    from anyport.bridge._asgi import BridgeASGI

__all__ = ["FORWARDED_HEADER", "Affinity"]

log = logging.getLogger("anyport.bridge")

#: Marks a request one replica forwarded to another (served there, never forwarded again).
FORWARDED_HEADER = b"x-anyport-forwarded"
#: Seconds a replica remembers where another replica's session is.
OWNER_CACHE = 5.0
_MAX_CACHED = 10_000
_HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"content-length", b"host",
})
_ENDPOINT_ID = re.compile(rb"session_id=([0-9a-f]{32})")
#: Deletes a claim only if it is still the one given (another replica may have taken over since).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

Scope = dict[str, Any]


class Affinity:
    """The replica routing of ``front`` (a ``BridgeASGI`` with Redis): ``route`` serves a request here or
    forwards it to the replica that holds its session."""

    def __init__(self, front: BridgeASGI, advertise_url: str, *, connect_timeout: float = 2.0) -> None:
        redis = front.http.redis
        if redis is None:
            raise ValueError("replica affinity needs the bridge's Redis (redis=URL)")
        if not advertise_url.startswith(("http://", "https://")):
            raise ValueError(f"advertise URL must be http:// or https://: {advertise_url!r}")
        self.front = front
        self.redis = redis
        #: Where the other replicas reach this one (scheme, host, port; no path).
        self.url = advertise_url.rstrip("/")
        #: Seconds a claim lives without a refresh: the session's idle timeout, and a margin.
        self.ttl = int(front.http.options.limits.session_idle_timeout) + 60
        self.connect_timeout = connect_timeout
        self._release = redis.client.register_script(_RELEASE)
        self._client: httpx.AsyncClient | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        #: session id -> (the replica holding it, when that was read from Redis).
        self._owners: dict[str, tuple[str, float]] = {}
        self._mcp = front.http.path
        legacy = front.http.legacy
        self._messages = (legacy.messages_path.rstrip("/") or "/") if legacy is not None else None
        self._sse = (legacy.sse_path.rstrip("/") or "/") if legacy is not None else None
        front.bridge.hub.on_session_end(self._ended)
        front.bridge.on_parked = self._parked
        #: Requests forwarded to other replicas, and served here after their owner was gone.
        self.forwarded = 0
        self.taken_over = 0

    def key(self, session_id: str) -> str:
        return self.redis.key(session_id, "bridge-owner")

    # -- claims ----------------------------------------------------------------------------------

    async def claim(self, session_id: str, ttl: int | None = None) -> None:
        """This replica holds ``session_id`` (a session, or a parked MRTR call) for ``ttl`` seconds
        (default: the session's)."""
        try:
            await self.redis.client.set(self.key(session_id), self.url, ex=ttl or self.ttl)
        except Exception as exc:  # Redis down: it works here, the other replicas cannot find it
            log.warning("could not record %s as held here: %s", session_id[:8], exc)

    async def owner(self, session_id: str) -> str | None:
        """The replica holding ``session_id``: looked up in Redis, then remembered for ``OWNER_CACHE``
        seconds (a claim only moves when its replica is gone, and a forward that fails forgets it)."""
        now = time.monotonic()
        cached = self._owners.get(session_id)
        if cached is not None and now - cached[1] < OWNER_CACHE:
            return cached[0]
        try:
            value = await self.redis.client.get(self.key(session_id))
        except Exception as exc:
            log.warning("could not look up the replica of session %s: %s", session_id[:8], exc)
            return None
        owner = value.decode() if isinstance(value, bytes) else value
        if owner is not None:
            if len(self._owners) >= _MAX_CACHED:
                self._owners.clear()
            self._owners[session_id] = (owner, now)
        return owner

    async def _parked(self, parked: str) -> None:
        """An MRTR call parked here: its retry, wherever it lands, is forwarded here (as a session's requests are)."""
        await self.claim(parked, int(self.front.bridge.rounds.ttl) + 60)

    def _ended(self, session_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._drop_claim(session_id, self.url))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _drop_claim(self, session_id: str, url: str) -> None:
        with contextlib.suppress(Exception):
            await self._release(keys=[self.key(session_id)], args=[url])

    async def _refresh(self) -> None:
        """Keep the claims of the sessions this replica holds alive while they live."""
        period = max(1.0, self.ttl / 3)
        while True:
            await asyncio.sleep(period)
            ids = self.front.bridge.hub.peer_ids
            if not ids:
                continue
            try:
                async with self.redis.client.pipeline(transaction=False) as pipe:
                    for sid in ids:
                        pipe.expire(self.key(sid), self.ttl)
                    await pipe.execute()
            except Exception as exc:
                log.warning("could not refresh the claims of %d sessions: %s", len(ids), exc)

    # -- ASGI --------------------------------------------------------------------------------------

    async def route(self, scope: Scope, receive: Any, send: Any, local: Any) -> None:
        """Serve an HTTP request: ``local(scope, receive, send)`` here, or forwarded to the replica
        that holds the session it names."""
        headers = dict(scope.get("headers") or ())
        if FORWARDED_HEADER in headers:
            await local(scope, receive, send)  # a replica sent it here: served here
            return
        path = scope.get("path", "").rstrip("/") or "/"
        session_id, here = self._session_of(path, scope, headers)
        if session_id is None and path == self._mcp and scope.get("method") == "POST" and b"mcp-session-id" not in headers:
            # A 2026-07-28 retry answering an MRTR round: to the replica where its call is parked.
            body, more = await _read_body(receive, self.front.http.options.limits.max_body_bytes)
            receive = _replay(body, more, receive)
            parked = None if more else _parked_call(body)
            if parked is not None:
                session_id, here = parked, parked in self.front.bridge.rounds
        if session_id is None:
            await local(scope, receive, self._claiming_send(send, path, scope.get("method")))
            return
        if here:
            await local(scope, receive, send)
            return
        owner = await self.owner(session_id)
        if owner is not None and owner != self.url:
            body, more = await _read_body(receive, self.front.http.options.limits.max_body_bytes)
            if not more:
                if await self._forward(owner, scope, headers, body, receive, send):
                    return
                log.info("the replica %s of session %s cannot be reached: serving it here", owner, session_id[:8])
                self._owners.pop(session_id, None)
                await self._drop_claim(session_id, owner)
                self.taken_over += 1
            receive = _replay(body, more, receive)
        await local(scope, receive, self._claiming_send(send, path, scope.get("method"), session_id))

    def _session_of(self, path: str, scope: Scope, headers: dict[bytes, bytes]) -> tuple[str | None, bool]:
        """(the session a request names, whether this replica holds it)."""
        if path == self._mcp:
            raw = headers.get(b"mcp-session-id")
            if raw is None:
                return None, False
            sid = raw.decode("latin-1")
            return sid, sid in self.front.http.sessions
        if path == self._messages and self.front.http.legacy is not None:
            values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_id")
            if not values:
                return None, False
            sid = values[0].strip().lower()
            return sid, sid in self.front.http.legacy.connections
        return None, False

    def _claiming_send(self, send: Any, path: str, method: str | None, session_id: str | None = None) -> Any:
        """``send``, claiming the session a response opens (or a session taken over) before the client
        can name it anywhere: an ``Mcp-Session-Id`` header, HTTP+SSE's ``endpoint`` event."""
        state = {"done": False}

        async def send_(message: MutableMapping[str, Any]) -> None:
            if not state["done"]:
                if message["type"] == "http.response.start":
                    if session_id is not None:
                        state["done"] = True
                        if message.get("status", 500) < 400:
                            await self.claim(session_id)
                    elif path == self._mcp and method == "POST":
                        state["done"] = True
                        opened = dict(message.get("headers") or ()).get(b"mcp-session-id")
                        if opened is not None:
                            await self.claim(opened.decode("latin-1"))
                    elif not (path == self._sse and method == "GET"):
                        state["done"] = True
                elif message["type"] == "http.response.body":
                    state["done"] = True
                    found = _ENDPOINT_ID.search(message.get("body", b""))
                    if found is not None:
                        await self.claim(found.group(1).decode())
            await send(message)

        return send_

    def start(self) -> None:
        """Keep this replica's claims alive from now on (the lifespan start-up)."""
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh())

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=2)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- forwarding ----------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(None, connect=self.connect_timeout),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
                trust_env=False,  # never through an HTTP proxy of the environment: replica to replica
            )
        return self._client

    async def _forward(
        self, owner: str, scope: Scope, given: dict[bytes, bytes], body: bytes, receive: Any, send: Any,
    ) -> bool:
        """The request to ``owner`` and its answer back (``given``: its headers as a map); False when
        the owner cannot be reached (nothing was sent to the client then)."""
        import httpx

        client = scope.get("client")
        dropped = _HOP_BY_HOP | {b"x-forwarded-for"} if client else _HOP_BY_HOP
        headers = [(k, v) for k, v in scope.get("headers") or () if k not in dropped]
        if b"host" in given:
            headers.append((b"host", given[b"host"]))
        if client:
            before, peer = given.get(b"x-forwarded-for"), client[0].encode()
            headers.append((b"x-forwarded-for", before + b", " + peer if before else peer))
        headers.append((FORWARDED_HEADER, self.url.encode()))
        url = owner + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"")
        if query:
            url += "?" + query.decode("latin-1")
        request = self._http().build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self._http().send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            return False
        self.forwarded += 1
        gone = asyncio.get_running_loop().create_task(_disconnected(receive))
        try:
            out = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
            length = response.headers.get("content-length")
            if length is not None:
                out.append((b"content-length", length.encode()))
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            relay = asyncio.ensure_future(_relay_body(response, send))
            await asyncio.wait({relay, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not relay.done():  # the client went away: so does the request upstream (T-HTTP-16)
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await relay
            else:
                with contextlib.suppress(httpx.HTTPError, OSError):
                    relay.result()
        finally:
            gone.cancel()
            await response.aclose()
        return True


async def _relay_body(response: httpx.Response, send: Any) -> None:
    try:
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _parked_call(body: bytes) -> str | None:
    """The parked call a 2026-07-28 request's ``requestState`` names, if it carries one."""
    if b'"requestState"' not in body:
        return None
    from anyport.protocol import loads

    try:
        message = loads(body)
    except ValueError:
        return None
    params = message.get("params") if isinstance(message, dict) else None
    return parked_id(params.get("requestState")) if isinstance(params, dict) else None


async def _read_body(receive: Any, limit: int) -> tuple[bytes, bool]:
    """The request body, up to ``limit`` bytes; (what was read, whether more is left unread)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
        if size > limit:
            return b"".join(chunks), True


def _replay(body: bytes, more: bool, receive: Any) -> Any:
    """``receive`` for the local app, giving back what was read first."""
    state = {"given": False}

    async def receive_() -> Any:
        if not state["given"]:
            state["given"] = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return receive_


async def _disconnected(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
