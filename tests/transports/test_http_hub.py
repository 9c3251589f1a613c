"""Server-initiated notifications over Streamable HTTP: sessions are peers of ``server.hub`` and the
standalone GET stream is a logical stream in the EventLog that outlives its connections.

Against real uvicorn servers on loopback (``running``), with our ``Client`` and its GET listener or
raw GETs read with httpx:

- ``server.notify_list_changed`` reaches every initialized session (M-05) of Streamable HTTP and of
  the 2024-11-05 HTTP+SSE transport; ``server.notify_resource_updated`` only the sessions subscribed
  to the URI (F-RES-02/03), on the GET stream (T-HTTP-19..22), never with a response (T-HTTP-23);
- two replicas sharing the state backends: a notification triggered on one reaches the GET stream
  held by the other, once (DESIGN.md §4, T-HTTP-26);
- a notification sent while the client is between two GETs is logged with an id and replayed
  when it resumes with ``Last-Event-ID``, exactly once, never another stream's or session's
  (T-HTTP-27..32); the stream stops being held ``get_stream_linger`` seconds after its connection
  dropped, and a session that never opened a GET logs nothing;
- DELETE, expiry and shutdown unregister the session's peer (no leak);
- ``json_response=True``: progress and log notifications of a request are dropped, notifications
  unrelated to it still reach the GET stream, server->client requests fail clearly (T-HTTP-10/15/22).

Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest

from anyport import Client, Context, InternalError, Server
from anyport.state import MemoryBus, MemoryEventLog, MemorySessionStore, parse_event_id
from anyport.transports.http import StreamableHTTPApp
from tests.transports._http_helpers import POST_HEADERS, running, until

LEGACY = "2025-11-25"
LIST_CHANGED = "notifications/tools/list_changed"
UPDATED = "notifications/resources/updated"


def make_server(name: str = "hub-test") -> Server:
    """A fresh server per test, so its hub holds only that test's sessions."""
    server = Server(name, version="1.0.0")

    @server.tool()
    def echo(text: str) -> str:
        return text

    @server.resource("note://{id}")
    def note(id: str) -> str:
        return f"note {id}"

    @server.tool()
    async def work(ctx: Context) -> str:
        """Progress and a log line (both about this request), then a change for every session."""
        await ctx.report_progress(1, 2)
        await ctx.log("warning", "working", logger="work")
        await server.notify_list_changed("tools")
        return "done"

    @server.tool()
    async def ask(ctx: Context) -> str:
        answer = await ctx.elicit("Your name?", {"type": "object", "properties": {"name": {"type": "string"}}})
        return answer.action

    return server


class OnLoop:
    """Wraps an ASGI app and remembers the server's event loop, so a test can run coroutines there
    (the hub and the apps belong to that loop; uvicorn runs in another thread)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self.gets: list[dict[str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if scope["type"] == "http" and scope["method"] == "GET":
            self.gets.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


@contextmanager
def serving(server: Server, **options: Any) -> Iterator[tuple[str, OnLoop, StreamableHTTPApp]]:
    http_app = StreamableHTTPApp(server, **options)
    wrapped = OnLoop(http_app)
    with running(wrapped) as base:
        yield base, wrapped, http_app


class Seen:
    """What a client's on_notification received, as (method, params)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, method: str, params: dict[str, Any]) -> None:
        self.items.append((method, params))

    def of(self, method: str) -> list[dict[str, Any]]:
        return [p for m, p in self.items if m == method]


async def settle(seconds: float = 0.3) -> None:
    """Give a duplicate the time to show up, if there were one."""
    await asyncio.sleep(seconds)


# -- raw sessions and GET streams ----------------------------------------------------------------------


async def open_session(c: httpx.AsyncClient, path: str = "/mcp", *, initialized: bool = True) -> dict[str, str]:
    body = {
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
    r = await c.post(path, headers=POST_HEADERS, json=body)
    assert r.status_code == 200, r.text
    h = {**POST_HEADERS, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": LEGACY}
    if initialized:
        await send_initialized(c, h, path)
    return h


async def send_initialized(c: httpx.AsyncClient, h: dict[str, str], path: str = "/mcp") -> None:
    r = await c.post(path, headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert r.status_code == 202


def get_headers(h: dict[str, str], last_event_id: str | None = None) -> dict[str, str]:
    out = {"accept": "text/event-stream", "mcp-session-id": h["mcp-session-id"], "mcp-protocol-version": LEGACY}
    if last_event_id is not None:
        out["last-event-id"] = last_event_id
    return out


class Listener:
    """One raw GET stream, read by a task of the test's loop: its events as (id, message or None)."""

    def __init__(self, c: httpx.AsyncClient, h: dict[str, str], last_event_id: str | None = None, path: str = "/mcp") -> None:
        self.events: list[tuple[str, dict[str, Any] | None]] = []
        self.status: int | None = None
        self.ended = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read(c, path, get_headers(h, last_event_id)))

    async def _read(self, c: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
        buf = ""
        try:
            async with c.stream("GET", path, headers=headers, timeout=httpx.Timeout(10.0, read=30.0)) as r:
                self.status = r.status_code
                async for text in r.aiter_text():
                    buf += text.replace("\r\n", "\n")
                    *blocks, buf = buf.split("\n\n")
                    for block in blocks:
                        event = _event(block)
                        if event is not None:
                            self.events.append(event)
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    @property
    def last_id(self) -> str:
        return self.events[-1][0]

    def messages(self) -> list[dict[str, Any]]:
        return [m for _, m in self.events if m is not None]

    async def close(self) -> None:
        """Drop the connection (the client goes away; the server notices the disconnect)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@asynccontextmanager
async def raw_client(base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10.0)) as c:
        yield c


def note(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params or {}}


# -- list_changed and resources/updated reach HTTP clients ---------------------------------------------


async def test_list_changed_reaches_every_initialized_http_session() -> None:
    """F-TOOL-03 over Streamable HTTP and HTTP+SSE: server.notify_list_changed reaches each client's
    GET listener (T-HTTP-19, T-HTTP-22) once, never as a response (T-HTTP-23); both transports'
    sessions are hub peers."""
    server = make_server()
    with serving(server) as (base, loop, http_app):
        one, two, sse = Seen(), Seen(), Seen()
        async with (
            Client(f"{base}/mcp", era="legacy", timeout=10, on_notification=one) as c1,
            Client(f"{base}/mcp", era="legacy", timeout=10, on_notification=two) as c2,
            Client(f"{base}/sse", era="legacy", timeout=10, transport="sse", on_notification=sse) as c3,
        ):
            assert c1.transport == c2.transport == "streamable-http" and c3.transport == "sse"
            assert await until(lambda: http_app.get_streams.holders == 2 and len(http_app.get_streams) == 2)
            assert len(server.hub.peer_ids) == 3  # two HTTP sessions, one HTTP+SSE connection
            await loop.run(server.notify_list_changed("tools"))
            assert await until(lambda: len(one.items) == len(two.items) == len(sse.items) == 1)
            await settle()
            for seen in (one, two, sse):
                assert seen.items == [(LIST_CHANGED, {})]
            # Triggered while a request runs (from inside the handler): on the GET stream, not the POST's.
            assert (await c1.call_tool("work", {})).text == "done"
            assert await until(lambda: len(one.of(LIST_CHANGED)) == len(two.of(LIST_CHANGED)) == len(sse.of(LIST_CHANGED)) == 2)
            await settle()
            assert len(one.of(LIST_CHANGED)) == len(two.of(LIST_CHANGED)) == 2
    assert server.hub.peer_ids == [] and not server.hub.active  # DELETE, close, shutdown: nothing left


async def test_list_changed_waits_for_the_session_to_be_initialized() -> None:
    """M-05 (no notifications before notifications/initialized): a GET opened between the initialize
    response and notifications/initialized gets list_changed only once the session is initialized."""
    server = make_server()
    with serving(server, keepalive_interval=0.2) as (base, loop, http_app):
        async with raw_client(base) as c:
            h = await open_session(c, initialized=False)
            g = Listener(c, h)
            assert await until(lambda: http_app.get_streams.holders == 1 and len(g.events) == 1)  # the priming event
            await loop.run(server.notify_list_changed("tools"))
            await settle()
            assert g.messages() == []
            await send_initialized(c, h)
            await loop.run(server.notify_list_changed("prompts"))
            assert await until(lambda: len(g.messages()) == 1)
            await settle()
            assert g.messages() == [note("notifications/prompts/list_changed")]
            await g.close()


async def test_resources_updated_reaches_only_the_subscribed_session() -> None:
    """F-RES-03: resources/subscribe over HTTP is recorded for that session (hub and session record);
    notify_resource_updated goes to its GET stream only; unsubscribe stops it. (With a shared
    session store, as replicas have, so the record can be read.)"""
    server = make_server()
    with serving(server, session_store=MemorySessionStore()) as (base, loop, http_app):
        one, two = Seen(), Seen()
        async with (
            Client(f"{base}/mcp", era="legacy", timeout=10, on_notification=one) as c1,
            Client(f"{base}/mcp", era="legacy", timeout=10, on_notification=two) as c2,
        ):
            assert await until(lambda: http_app.get_streams.holders == 2)
            await c1.request("resources/subscribe", {"uri": "note://1"})
            await c2.request("resources/subscribe", {"uri": "note://2"})
            sid1 = c1._session.stream.session_id  # type: ignore[union-attr]
            assert sid1 is not None and server.hub.subscriptions(sid1) == {"note://1"}
            await settle(0.1)
            assert http_app.sessions.records is not None
            record = await loop.run(http_app.sessions.records.get(sid1))
            assert record is not None and record.subscriptions == ["note://1"]  # any replica restores it
            await loop.run(server.notify_resource_updated("note://1"))
            assert await until(lambda: len(one.items) == 1)
            await settle()
            assert one.items == [(UPDATED, {"uri": "note://1"})] and two.items == []
            await loop.run(server.notify_resource_updated("note://3"))  # nobody subscribed
            await c1.request("resources/unsubscribe", {"uri": "note://1"})
            await loop.run(server.notify_resource_updated("note://1"))
            await loop.run(server.notify_resource_updated("note://2"))
            assert await until(lambda: len(two.items) == 1)
            await settle()
            assert one.items == [(UPDATED, {"uri": "note://1"})]
            assert two.items == [(UPDATED, {"uri": "note://2"})]


# -- two replicas sharing the state backends ------------------------------------------------------------


class Replicas:
    """Apps sharing session records, event log and bus, as replicas behind a load balancer without
    sticky sessions would (via Redis): POST and DELETE go to ``a``, GET to ``b``; more apps (``others``)
    serve nothing but share the state. Each app may have its own ``Server`` (as separate processes do)."""

    def __init__(self, a: Server, b: Server, *others: Server) -> None:
        shared: dict[str, Any] = {"session_store": MemorySessionStore(), "event_log": MemoryEventLog(), "bus": MemoryBus()}
        self.a = StreamableHTTPApp(a, legacy_sse=False, keepalive_interval=0.2, **shared)
        self.b = StreamableHTTPApp(b, legacy_sse=False, keepalive_interval=0.2, **shared)
        self.others = [StreamableHTTPApp(s, legacy_sse=False, **shared) for s in others]
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            for app in (self.a, self.b, *self.others):
                await app.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await (self.b if scope["method"] == "GET" else self.a)(scope, receive, send)

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


async def test_a_notification_triggered_on_one_replica_reaches_the_get_stream_held_by_another() -> None:
    """DESIGN.md §4, T-HTTP-26: the session is begun on replica a (its POSTs) and listens on replica b
    (its GET); each replica has its own Server. list_changed and resources/updated triggered on a, on
    b, or on a replica c that never saw the session, reach the GET stream on b once each."""
    server_a, server_b, server_c = make_server("a"), make_server("b"), make_server("c")
    replicas = Replicas(server_a, server_b, server_c)
    seen = Seen()
    with running(replicas) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10, on_notification=seen) as c:
            assert await until(lambda: replicas.b.get_streams.holders == 1)
            sid = c._session.stream.session_id  # type: ignore[union-attr]
            assert sid in server_a.hub.peer_ids and sid in server_b.hub.peer_ids and server_c.hub.peer_ids == []
            await c.request("resources/subscribe", {"uri": "note://7"})  # POSTed to a; the GET is on b
            for server in (server_a, server_b, server_c):
                await replicas.run(server.notify_list_changed("tools"))
            assert await until(lambda: len(seen.items) == 3)
            await replicas.run(server_c.notify_resource_updated("note://7"))
            await replicas.run(server_c.notify_resource_updated("note://8"))
            await replicas.run(server_a.notify_resource_updated("note://7"))
            assert await until(lambda: len(seen.items) == 5)
            await settle()
            assert seen.items == [(LIST_CHANGED, {})] * 3 + [(UPDATED, {"uri": "note://7"})] * 2
            assert len(replicas.a.get_streams) == 0 and replicas.a.get_streams.holders == 0
    for server in (server_a, server_b, server_c):
        assert server.hub.peer_ids == [] and not server.hub.active


async def test_replicas_sharing_one_server_deliver_once() -> None:
    """T-HTTP-26: two apps on one Server and one Bus (the session is a peer through both) publish a
    hub notification once, not once per app."""
    server = make_server()
    replicas = Replicas(server, server)
    seen = Seen()
    with running(replicas) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10, on_notification=seen) as c:
            assert await until(lambda: replicas.b.get_streams.holders == 1)
            await c.request("resources/subscribe", {"uri": "note://1"})
            assert len(server.hub.peer_ids) == 1
            await replicas.run(server.notify_list_changed("tools"))
            await replicas.run(server.notify_resource_updated("note://1"))
            assert await until(lambda: len(seen.items) == 2)
            await settle()
            assert seen.items == [(LIST_CHANGED, {}), (UPDATED, {"uri": "note://1"})]
    assert server.hub.peer_ids == []


# -- the standalone stream outlives its connection ------------------------------------------------------


class Cuttable:
    """Wraps an ASGI app: ``cut()`` drops every open GET connection as a network failure would. The
    server sees a disconnect; the client sees its stream end and resumes with Last-Event-ID."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self.gets: list[dict[str, str]] = []
        self._cuts: set[asyncio.Event] = set()

    def cut(self) -> None:
        assert self.loop is not None
        def cut_all() -> None:
            for ev in list(self._cuts):
                ev.set()

        self.loop.call_soon_threadsafe(cut_all)

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        self.gets.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        cut = asyncio.Event()
        self._cuts.add(cut)
        started = False

        async def inner_receive() -> dict[str, Any]:
            getter = asyncio.ensure_future(receive())
            waiter = asyncio.ensure_future(cut.wait())
            done, _ = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                waiter.cancel()
                return getter.result()  # type: ignore[no-any-return]
            getter.cancel()
            return {"type": "http.disconnect"}

        async def inner_send(message: dict[str, Any]) -> None:
            nonlocal started
            if cut.is_set():
                raise OSError("connection cut")
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, inner_receive, inner_send)
        finally:
            self._cuts.discard(cut)
            if cut.is_set() and started:
                with contextlib.suppress(Exception):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_our_client_gets_what_was_sent_while_its_get_was_down_exactly_once() -> None:
    """T-HTTP-30, T-HTTP-31: the GET connection drops; list_changed and resources/updated sent before
    the client is back are logged on its standalone stream; the client resumes with Last-Event-ID
    (after the retry: of the priming event, T-HTTP-13) and gets each once, then live ones."""
    server = make_server()
    http_app = StreamableHTTPApp(server, sse_retry_ms=400, keepalive_interval=0.2)
    cuttable = Cuttable(http_app)
    seen = Seen()
    with running(cuttable) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10, on_notification=seen) as c:
            await c.request("resources/subscribe", {"uri": "note://1"})
            assert await until(lambda: len(http_app.get_streams) == 1)
            await cuttable.run(server.notify_list_changed("tools"))
            assert await until(lambda: len(seen.items) == 1)
            cuttable.cut()
            assert await until(lambda: len(http_app.get_streams) == 0)
            assert http_app.get_streams.holders == 1  # lingering: still logging
            await cuttable.run(server.notify_list_changed("prompts"))
            await cuttable.run(server.notify_resource_updated("note://1"))
            assert len(cuttable.gets) == 1  # the client is not back yet
            assert await until(lambda: len(seen.items) == 3)
            assert len(cuttable.gets) == 2
            resumed = parse_event_id(cuttable.gets[1].get("last-event-id", ""))
            assert resumed is not None and resumed[0].startswith("g")
            assert "last-event-id" not in cuttable.gets[0]  # the first GET opened a new stream
            await cuttable.run(server.notify_list_changed("resources"))
            assert await until(lambda: len(seen.items) == 4)
            await settle()
    assert seen.items == [
        (LIST_CHANGED, {}), ("notifications/prompts/list_changed", {}), (UPDATED, {"uri": "note://1"}),
        ("notifications/resources/list_changed", {}),
    ]


async def test_resume_replays_missed_events_once_and_never_another_streams() -> None:
    """T-HTTP-27..32 with raw GETs: events logged while no GET was attached carry ids of the standalone
    stream; GET + Last-Event-ID replays exactly those after the id, then goes on live; another
    session's id gets 400; a newer GET without Last-Event-ID starts a new stream and ends the old one."""
    server = make_server()
    with serving(server, keepalive_interval=0.2) as (base, loop, http_app):
        async with raw_client(base) as c:
            h1, h2 = await open_session(c), await open_session(c)
            await c.post("/mcp", headers=h1, json={"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": "note://1"}})
            g1, g2 = Listener(c, h1), Listener(c, h2)
            assert await until(lambda: len(g1.events) == len(g2.events) == 1)  # priming events
            primed1, primed2 = g1.last_id, g2.last_id
            assert parse_event_id(primed1)[0].startswith("g")  # type: ignore[index]
            await g1.close()
            await g2.close()
            assert await until(lambda: len(http_app.get_streams) == 0)
            assert http_app.get_streams.holders == 2
            await loop.run(server.notify_list_changed("tools"))
            await loop.run(server.notify_resource_updated("note://1"))
            assert await loop.run(http_app.notify(h2["mcp-session-id"], "notifications/message", {"level": "info", "data": "for 2"}))
            # Session 2's id on session 1: nothing replayed, 400 (T-HTTP-32).
            r = await c.get("/mcp", headers=get_headers(h1, primed2))
            assert r.status_code == 400
            r1 = Listener(c, h1, primed1)
            assert await until(lambda: len(r1.events) == 2)
            assert r1.messages() == [note(LIST_CHANGED), note(UPDATED, {"uri": "note://1"})]
            ids = [i for i, _ in r1.events]
            assert [parse_event_id(i) for i in ids] == [(parse_event_id(primed1)[0], 1), (parse_event_id(primed1)[0], 2)]  # type: ignore[index]
            await loop.run(server.notify_list_changed("prompts"))  # live, after the replay
            assert await until(lambda: len(r1.events) == 3)
            await settle()
            assert len(r1.events) == 3 and r1.messages()[-1] == note("notifications/prompts/list_changed")
            assert len(set(i for i, _ in r1.events)) == 3
            # A newer GET without Last-Event-ID: a new stream; the old one ends.
            fresh = Listener(c, h1)
            assert await r1.ended.wait() is True
            assert await until(lambda: len(fresh.events) == 1)
            assert parse_event_id(fresh.last_id)[0] != parse_event_id(primed1)[0]  # type: ignore[index]
            late = await c.get("/mcp", headers=get_headers(h1, ids[0]))  # the old stream: its rest, then the end
            assert late.status_code == 200
            assert [m for m in _data_lines(late.text)] == [note(UPDATED, {"uri": "note://1"}), note("notifications/prompts/list_changed")]
            await fresh.close()
            # Session 2 gets its own events only (not session 1's resources/updated), each once.
            r2 = Listener(c, h2, primed2)
            assert await until(lambda: len(r2.events) == 3)
            await settle()
            assert r2.messages() == [
                note(LIST_CHANGED), note("notifications/message", {"level": "info", "data": "for 2"}),
                note("notifications/prompts/list_changed"),
            ]
            await r2.close()


def _event(block: str) -> tuple[str, dict[str, Any] | None] | None:
    """(id, message) of one SSE event block with an id; None for comments (keep-alives)."""
    fields: dict[str, list[str]] = {}
    for line in block.split("\n"):
        name, sep, value = line.partition(":")
        if sep and not line.startswith(":"):
            fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
    if "id" not in fields:
        return None
    data = "\n".join(fields.get("data", []))
    return fields["id"][-1], (json.loads(data) if data.strip() else None)


def _data_lines(text: str) -> list[dict[str, Any]]:
    events = [_event(block) for block in text.replace("\r\n", "\n").split("\n\n")]
    return [m for ev in events if ev is not None for m in [ev[1]] if m is not None]


async def test_a_resume_on_another_replica_takes_the_stream_over_without_loss_or_duplicates() -> None:
    """T-HTTP-26, T-HTTP-31: the stream is held (lingering) by replica b; the client resumes on replica
    a, which takes it over: the events b logged are replayed, later ones are logged by a only."""
    server = make_server()
    shared: dict[str, Any] = {"session_store": MemorySessionStore(), "event_log": MemoryEventLog(), "bus": MemoryBus()}
    a = StreamableHTTPApp(server, path="/a", legacy_sse=False, keepalive_interval=0.2, **shared)
    b = StreamableHTTPApp(server, path="/b", legacy_sse=False, keepalive_interval=0.2, **shared)

    async def router(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await a.aclose()
            await b.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await (b if scope["path"].startswith("/b") else a)(scope, receive, send)

    wrapped = OnLoop(router)
    with running(wrapped) as base:
        async with raw_client(base) as c:
            h = await open_session(c, "/a")
            g = Listener(c, h, path="/b")
            assert await until(lambda: len(g.events) == 1)
            await wrapped.run(server.notify_list_changed("tools"))
            assert await until(lambda: len(g.events) == 2)
            last = g.last_id
            await g.close()
            await wrapped.run(server.notify_list_changed("prompts"))  # logged by b, lingering
            assert b.get_streams.holders == 1
            r = Listener(c, h, last, path="/a")
            assert await until(lambda: len(r.events) == 1 and b.get_streams.holders == 0 and a.get_streams.holders == 1)
            await wrapped.run(server.notify_list_changed("resources"))  # logged by a
            assert await until(lambda: len(r.events) == 2)
            await settle()
            assert r.messages() == [note("notifications/prompts/list_changed"), note("notifications/resources/list_changed")]
            stream = parse_event_id(last)[0]  # type: ignore[index]
            assert [parse_event_id(i) for i, _ in r.events] == [(stream, 2), (stream, 3)]
            await r.close()
    assert server.hub.peer_ids == []


# -- bounds and clean-up ---------------------------------------------------------------------------------


async def test_no_get_no_log_and_a_dropped_get_is_held_only_for_the_linger_time() -> None:
    """Bounds of the standalone stream: a session that never opened a GET logs nothing (notify says
    False); after its GET drops the stream is held get_stream_linger seconds, then nothing more is
    logged for it, while what was logged meanwhile can still be resumed."""
    server = make_server()
    with serving(server, keepalive_interval=0.1, get_stream_linger=0.4) as (base, loop, http_app):
        async with raw_client(base) as c:
            h = await open_session(c)
            sid = h["mcp-session-id"]
            assert await loop.run(http_app.notify(sid, "notifications/message", {"level": "info", "data": 0})) is False
            await loop.run(server.notify_list_changed("tools"))
            g = Listener(c, h)
            assert await until(lambda: len(g.events) == 1)
            assert g.messages() == []  # nothing from before the first GET
            primed = g.last_id
            await g.close()
            assert await loop.run(http_app.notify(sid, "notifications/message", {"level": "info", "data": 1})) is True
            assert await until(lambda: http_app.get_streams.holders == 0, timeout=3)
            assert await loop.run(http_app.notify(sid, "notifications/message", {"level": "info", "data": 2})) is False
            r = Listener(c, h, primed)
            assert await until(lambda: len(r.events) == 1)
            await settle()
            assert r.messages() == [note("notifications/message", {"level": "info", "data": 1})]
            await r.close()


async def test_delete_expiry_and_shutdown_unregister_the_peer() -> None:
    """T-HTTP-39, T-HTTP-42: DELETE and idle expiry end the session's peer and its standalone stream
    (hub peer count back to 0, no stream held); a client holding its GET stream is not idle."""
    server = make_server()
    with serving(server, keepalive_interval=0.1, session_idle_timeout=0.5) as (base, _loop, http_app):
        async with Client(f"{base}/mcp", era="legacy", timeout=10):
            assert await until(lambda: http_app.get_streams.holders == 1)
            assert len(server.hub.peer_ids) == 1
        assert await until(lambda: http_app.get_streams.holders == 0)  # aclose() DELETEd the session
        assert server.hub.peer_ids == [] and len(http_app.sessions) == 0
        async with raw_client(base) as raw:
            h = await open_session(raw)
            g = Listener(raw, h)
            assert await until(lambda: len(g.events) == 1)
            await asyncio.sleep(0.8)  # longer than the idle timeout, but the GET is held
            r = await raw.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            assert r.status_code == 200
            await g.close()
            assert await until(lambda: len(http_app.get_streams) == 0)
            await asyncio.sleep(0.8)
            other = await open_session(raw)  # any lookup sweeps the idle sessions
            assert server.hub.peer_ids == [other["mcp-session-id"]]
            assert await until(lambda: http_app.get_streams.holders == 0)
            r = await raw.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 2, "method": "ping"})
            assert r.status_code == 404
    assert server.hub.peer_ids == [] and not server.hub.active  # shutdown


# -- json_response ----------------------------------------------------------------------------------------


async def test_json_response_notifications_unrelated_to_the_request_still_reach_the_get_stream() -> None:
    """T-HTTP-10, T-HTTP-15, T-HTTP-22 with json_response=True: the reply is one JSON object, so the
    request's progress and log notifications are dropped; the list_changed the handler triggers is
    unrelated to the request and arrives on the GET stream; elicitation fails with a clear error."""
    server = make_server()
    seen = Seen()
    logs: list[dict[str, Any]] = []
    progress: list[tuple[Any, ...]] = []
    with serving(server, json_response=True) as (base, _loop, http_app):
        async with Client(
            f"{base}/mcp", era="legacy", timeout=10, on_notification=seen, on_log=logs.append, log_level="debug",
            on_elicit=lambda p: {"action": "accept", "content": {"name": "Ada"}},
        ) as c:
            assert await until(lambda: http_app.get_streams.holders == 1)
            result = await c.call_tool("work", {}, on_progress=lambda *a: progress.append(a))
            assert result.text == "done"
            assert await until(lambda: len(seen.items) == 1)
            with pytest.raises(InternalError, match="json_response"):
                await c.call_tool("ask", {})
            await settle()
    assert seen.items == [(LIST_CHANGED, {})]
    assert logs == [] and progress == []


@pytest.mark.parametrize("json_response", [False, True])
async def test_a_handler_notifying_another_session_uses_that_sessions_get_stream(json_response: bool) -> None:
    """T-HTTP-22: a notification for another session, sent from inside a handler, goes to that
    session's GET stream in both reply modes (never on the POST's reply)."""
    server = make_server()
    holder: list[StreamableHTTPApp] = []

    @server.tool()
    async def poke(session_id: str) -> str:
        return "sent" if await holder[0].notify(session_id, "notifications/message", {"level": "info", "data": "poke"}) else "nobody"

    seen = Seen()
    with serving(server, json_response=json_response) as (base, _loop, http_app):
        holder.append(http_app)
        async with (
            Client(f"{base}/mcp", era="legacy", timeout=10, listen=False) as caller,
            Client(f"{base}/mcp", era="legacy", timeout=10, on_notification=seen, on_log=lambda p: seen("log", p)) as target,
        ):
            assert await until(lambda: http_app.get_streams.holders == 1)
            sid = target._session.stream.session_id  # type: ignore[union-attr]
            assert (await caller.call_tool("poke", {"session_id": sid})).text == "sent"
            assert await until(lambda: len(seen.items) == 1)
    assert seen.items == [("log", {"level": "info", "data": "poke"})]
