"""The HTTP client's standalone GET stream (legacy Streamable HTTP, 2025-03-26..2025-11-25).

``Client("http://...")`` opens one background GET after the legacy handshake and feeds what the
server sends there, unasked, into the same inbound path as the POST streams (T-HTTP-19..24, T-HTTP-30):

- against our ASGI app on uvicorn (a real loopback server): notifications and server->client
  requests on the GET stream, a stateless server (405), a stream the server ends (resumed with
  ``Last-Event-ID``), ``aclose()``, ``listen=False``, the 2024-11-05 HTTP+SSE transport;
- against tiny scripted ASGI apps for what our server does not do: replaying missed events
  (with an overlap), refusing the GET with 404/400/503, ending every GET at once, declaring no
  capabilities at all.

Each test names the requirement IDs (spec/DIGEST.md §7) it checks. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from anyport import Client, Context, Server
from anyport.state import parse_event_id
from anyport.transports.http import StreamableHTTPApp, create_app
from anyport.transports.http._sessions import session_key
from anyport.transports.http.client import StreamableHTTPClientStream
from tests.transports._http_helpers import running, scripted_request, until

LEGACY = "2025-11-25"

server = Server("listen-test", version="1.0.0")
#: The app of the running test (tools run on the server's loop and reach it through this).
CURRENT: list[StreamableHTTPApp] = []


@server.tool()
def echo(text: str) -> str:
    return text


@server.tool()
async def ask_on_get_stream(session_id: str, ctx: Context) -> str:
    """While this tools/call is pending, ask the client on its standalone GET stream (as the
    conformance scenario elicitation-sep1034-client-defaults does), and return its answer."""
    answer = await _ask(CURRENT[-1], session_id, "elicitation/create", {
        "message": "pick a name",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string", "default": "Ada"}}},
    })
    return json.dumps(answer, sort_keys=True)


async def _ask(http_app: StreamableHTTPApp, session_id: str, method: str, params: dict[str, Any]) -> Any:
    """A server->client request published on the session's GET stream only; awaits the POSTed answer."""
    session = await http_app.sessions.get(session_id)
    assert session is not None
    id_ = session.conn.start_request(method)
    fut = session.expect(id_)
    streams = await http_app.bus.publish(
        session_key(session_id), {"message": {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}}
    )
    if streams != 1:
        session.waiters.pop(id_, None)
        raise AssertionError(f"the request reached {streams} GET streams, not 1")
    return await asyncio.wait_for(fut, 5)


class Watched:
    """Wraps an ASGI app: records every HTTP request, the bodies of GET responses, the GETs still
    open, and the server's event loop (so a test can run coroutines on it)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.get_bodies: list[bytearray] = []
        self.open_gets = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((scope["method"], scope["path"], headers))
        if scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        self.get_bodies.append(body)

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        self.open_gets += 1
        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.open_gets -= 1

    def gets(self, path: str = "/mcp") -> list[dict[str, str]]:
        return [h for m, p, h in self.requests if m == "GET" and p == path]

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the server's loop (the server lives in another thread)."""
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


@contextmanager
def serving(**options: Any) -> Iterator[tuple[str, Watched, StreamableHTTPApp]]:
    http_app = create_app(server, **options)
    CURRENT.append(http_app)
    watched = Watched(http_app)
    try:
        with running(watched) as base:
            yield f"{base}/mcp", watched, http_app
    finally:
        CURRENT.remove(http_app)


def stream_of(client: Client) -> StreamableHTTPClientStream:
    session = client._session
    assert session is not None
    stream = session.stream
    assert isinstance(stream, StreamableHTTPClientStream)
    return stream


def ids_in(body: bytes | bytearray) -> list[str]:
    return [line[3:].strip() for line in body.decode().splitlines() if line.startswith("id:")]


# -- our server ------------------------------------------------------------------------------------


async def test_notification_nobody_asked_for_reaches_the_handler_via_the_get_stream() -> None:
    """T-HTTP-19, T-HTTP-20, T-HTTP-22: after the handshake the client opens one GET (Accept:
    text/event-stream, Mcp-Session-Id, MCP-Protocol-Version, no Last-Event-ID); notifications the
    server sends there while no request is in flight reach on_notification."""
    seen: list[tuple[str, dict[str, Any]]] = []
    with serving() as (url, watched, http_app):
        async with Client(url, era="legacy", timeout=10, on_notification=lambda m, p: seen.append((m, p))) as c:
            assert await until(lambda: len(http_app.get_streams) == 1)
            gets = watched.gets()
            assert len(gets) == 1
            sid = stream_of(c).session_id
            assert sid is not None
            assert gets[0]["accept"] == "text/event-stream"
            assert gets[0]["mcp-session-id"] == sid and gets[0]["mcp-protocol-version"] == LEGACY
            assert "last-event-id" not in gets[0]
            assert await watched.run(http_app.broadcast("notifications/tools/list_changed")) == 1
            delivered = await watched.run(http_app.notify(sid, "notifications/resources/updated", {"uri": "note://1"}))
            assert delivered is True
            assert await until(lambda: len(seen) == 2)
            assert seen == [("notifications/tools/list_changed", {}), ("notifications/resources/updated", {"uri": "note://1"})]
            assert (await c.call_tool("echo", {"text": "still fine"})).text == "still fine"
    assert len(watched.gets()) == 1


async def test_server_request_on_the_get_stream_is_answered_out_of_band() -> None:
    """T-HTTP-22: a roots/list request on the GET stream, with no request in flight, is answered by
    the client with a POST (T-HTTP-05), like a request on a POST's stream."""
    with serving() as (url, watched, http_app):
        async with Client(url, era="legacy", timeout=10, roots=["file:///work", "file:///tmp"]) as c:
            sid = stream_of(c).session_id
            assert sid is not None and await until(lambda: len(http_app.get_streams) == 1)
            answer = await watched.run(_ask(http_app, sid, "roots/list", {}))
            assert answer == {"roots": [{"uri": "file:///work"}, {"uri": "file:///tmp"}]}
    posts = [h for m, _, h in watched.requests if m == "POST"]
    assert all(h["mcp-session-id"] == sid for h in posts[1:])


async def test_elicitation_on_the_get_stream_while_a_tool_call_is_pending() -> None:
    """T-HTTP-22 (the conformance scenario elicitation-sep1034-client-defaults): the tool asks on the
    GET stream, not on its own POST stream; the client answers, and the tools/call completes."""
    asked: list[dict[str, Any]] = []

    def on_elicit(params: dict[str, Any]) -> dict[str, Any]:
        asked.append(params)
        return {"action": "accept", "content": {"name": params["requestedSchema"]["properties"]["name"]["default"]}}

    with serving() as (url, _watched, http_app):
        async with Client(url, era="legacy", timeout=10, on_elicit=on_elicit) as c:
            sid = stream_of(c).session_id
            assert sid is not None and await until(lambda: len(http_app.get_streams) == 1)
            result = await c.call_tool("ask_on_get_stream", {"session_id": sid})
    assert not result.is_error, result.text
    assert json.loads(result.text) == {"action": "accept", "content": {"name": "Ada"}}
    assert [p["message"] for p in asked] == ["pick a name"]


async def test_stateless_server_405_costs_exactly_one_get() -> None:
    """T-HTTP-21: a server without a GET stream answers 405; the client stops listening at once,
    never retries, and works POST-only."""
    with serving(stateless=True) as (url, watched, _http_app):
        async with Client(url, era="legacy", timeout=10) as c:
            stream = stream_of(c)
            assert await until(lambda: not stream.listening)
            assert (await c.call_tool("echo", {"text": "post only"})).text == "post only"
            await asyncio.sleep(stream.default_retry * 2.5)  # a retry would have come by now
            assert (await c.call_tool("echo", {"text": "again"})).text == "again"
    assert len(watched.gets()) == 1


async def test_get_stream_ended_by_the_server_is_resumed_with_last_event_id() -> None:
    """T-HTTP-24, T-HTTP-30, T-HTTP-13: the server ends the GET stream; after its retry: (100 ms)
    the client GETs again with Last-Event-ID = the last id it saw; later notifications arrive, and
    nothing is delivered twice."""
    seen: list[dict[str, Any]] = []
    with serving(sse_retry_ms=100) as (url, watched, http_app):
        async with Client(url, era="legacy", timeout=10, on_notification=lambda m, p: seen.append(p)) as c:
            assert await until(lambda: len(http_app.get_streams) == 1)
            assert await watched.run(http_app.broadcast("notifications/message", {"n": 1})) == 1
            assert await until(lambda: len(seen) == 1)
            first_ids = ids_in(watched.get_bodies[0])
            assert len(first_ids) == 2  # the priming event and n=1
            cut_at = time.monotonic()
            assert watched.loop is not None
            watched.loop.call_soon_threadsafe(http_app.get_streams.close_all)
            assert await until(lambda: len(watched.gets()) == 2 and len(http_app.get_streams) == 1)
            reopened_after = time.monotonic() - cut_at
            second = watched.gets()[1]
            assert second["last-event-id"] == first_ids[-1]
            parsed = parse_event_id(second["last-event-id"])
            assert parsed is not None and parsed[0].startswith("g")  # the standalone stream's own id
            assert reopened_after >= 0.09
            assert await watched.run(http_app.broadcast("notifications/message", {"n": 2})) == 1
            assert await until(lambda: len(seen) == 2)
            await asyncio.sleep(0.2)
            assert (await c.call_tool("echo", {"text": "x"})).text == "x"
    assert seen == [{"n": 1}, {"n": 2}]
    assert len(watched.gets()) == 2


async def test_close_ends_the_listener_and_the_server_sees_the_get_end() -> None:
    """T-HTTP-24 (either side may close it): aclose() cancels the listener; no task is left
    pending, and the server's GET handler returns."""
    with serving() as (url, watched, http_app):
        c = Client(url, era="legacy", timeout=10)
        await c.connect()
        stream = stream_of(c)
        assert await until(lambda: len(http_app.get_streams) == 1 and watched.open_gets == 1)
        assert stream.listening
        await c.aclose()
        assert not stream.listening
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        assert pending == []
        assert await until(lambda: len(http_app.get_streams) == 0 and watched.open_gets == 0)
    assert len(watched.gets()) == 1


async def test_listen_false_opens_no_get() -> None:
    """T-HTTP-19 (MAY): listen=False: no GET at all; requests work; the server cannot reach us."""
    with serving() as (url, watched, http_app):
        async with Client(url, era="legacy", timeout=10, listen=False) as c:
            assert (await c.call_tool("echo", {"text": "quiet"})).text == "quiet"
            await asyncio.sleep(0.2)
            assert await watched.run(http_app.broadcast("notifications/tools/list_changed")) == 0
    assert watched.gets() == []
    with pytest.raises(ValueError):
        Client(url, listen="sometimes")  # type: ignore[arg-type]


async def test_no_get_in_the_modern_era_nor_over_http_sse() -> None:
    """T-HTTP-19 is legacy Streamable HTTP only: 2026-07-28 has subscriptions/listen instead, and
    the 2024-11-05 HTTP+SSE transport (T-SSE-01) already reads its one GET stream."""
    with serving(legacy_sse=True) as (url, watched, _http_app):
        async with Client(url, era="modern", timeout=10, listen=True) as c:
            assert c.era == "modern"
            assert (await c.call_tool("echo", {"text": "m"})).text == "m"
        sse_url = url.removesuffix("/mcp") + "/sse"
        async with Client(sse_url, era="legacy", timeout=10, listen=True) as c:
            assert c.transport == "sse"
            assert (await c.call_tool("echo", {"text": "s"})).text == "s"
    assert watched.gets("/mcp") == []
    assert len(watched.gets("/sse")) == 1


def test_an_unclosed_client_does_not_keep_the_process_alive() -> None:
    """The listener is a task of the caller's loop, no thread: a program that returns without
    closing the client exits while the GET stream is open."""
    with serving() as (url, watched, http_app):
        program = textwrap.dedent(f"""
            import asyncio
            from anyport import Client

            async def main() -> None:
                c = Client({url!r}, era="legacy", timeout=10)
                await c.connect()
                for _ in range(200):
                    if c._session.stream.listening and c._session.stream.session_id:
                        break
                    await asyncio.sleep(0.01)
                print("listening", c._session.stream.listening, flush=True)

            asyncio.run(main())
        """)
        proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "listening True"
        assert len(watched.gets()) == 1
        deadline = time.monotonic() + 5
        while len(http_app.get_streams) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(http_app.get_streams) == 0


# -- scripted servers -------------------------------------------------------------------------------

SID = "scripted-session"
Reply = tuple[int, list[tuple[str, str]], list[bytes], bool]  # status, headers, chunks, hold open


def _init_result(caps: dict[str, Any]) -> dict[str, Any]:
    return {"protocolVersion": LEGACY, "capabilities": caps, "serverInfo": {"name": "scripted", "version": "0"}}


class Scripted:
    """A raw ASGI app: initialize / notifications / tools/list / DELETE built in; GETs answered by
    ``on_get(n, headers)`` (n counts from 1). A reply may hold the GET open until the client leaves."""

    def __init__(self, on_get: Callable[[int, dict[str, str]], Awaitable[Reply]], caps: dict[str, Any] | None = None) -> None:
        self.on_get = on_get
        self.caps = {"tools": {"listChanged": True}} if caps is None else caps
        self.gets: list[tuple[float, dict[str, str]]] = []
        self.posts: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = await scripted_request(scope, receive, send)
        if request is None:
            return
        body, headers = request
        method = scope["method"]
        hold = False
        if method == "GET":
            self.gets.append((time.monotonic(), headers))
            status, hdrs, chunks, hold = await self.on_get(len(self.gets), headers)
        elif method == "DELETE":
            status, hdrs, chunks = 204, [], []
        else:
            msg = json.loads(body)
            self.posts.append(msg)
            if "id" not in msg or "method" not in msg:
                status, hdrs, chunks = 202, [], []
            else:
                result: Any = {"tools": []} if msg["method"] == "tools/list" else {}
                if msg["method"] == "initialize":
                    result = _init_result(self.caps)
                out = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode()
                status, hdrs, chunks = 200, [("content-type", "application/json"), ("mcp-session-id", SID)], [out]
        await send({"type": "http.response.start", "status": status, "headers": [(k.encode(), v.encode()) for k, v in hdrs]})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if hold:
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await send({"type": "http.response.body", "body": b""})


def _event(id_: str, n: int, retry: int | None = None) -> bytes:
    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": n}}
    head = f"retry: {retry}\n" if retry is not None else ""
    return f"{head}id: {id_}\ndata: {json.dumps(note)}\n\n".encode()


SSE = [("content-type", "text/event-stream")]


async def test_resumed_get_stream_replays_missed_events_once_even_when_the_server_overlaps() -> None:
    """T-HTTP-30, T-HTTP-31, T-HTTP-13, T-HTTP-28: the first GET ends after e1, e2 (retry: 80);
    the client waits 80 ms and GETs with Last-Event-ID: e2; the server replays e2 again (ids are
    unique, so it is a redelivery) plus the missed e3: the handler sees 1, 2, 3 exactly once."""

    async def on_get(n: int, headers: dict[str, str]) -> Reply:
        if n == 1:
            return 200, SSE, [_event("e1", 1, retry=80), _event("e2", 2)], False
        return 200, SSE, [_event("e2", 2), _event("e3", 3)], True

    app = Scripted(on_get)
    logged: list[Any] = []
    with running(app) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10, on_log=lambda p: logged.append(p["data"])):
            assert await until(lambda: len(logged) >= 3)
            await asyncio.sleep(0.2)
    assert logged == [1, 2, 3]
    assert len(app.gets) == 2
    (t1, h1), (t2, h2) = app.gets
    assert "last-event-id" not in h1 and h2["last-event-id"] == "e2"
    assert h2["mcp-session-id"] == SID and h2["accept"] == "text/event-stream"
    assert t2 - t1 >= 0.075


@pytest.mark.parametrize("status", [405, 404, 400])
async def test_refused_get_means_no_stream_and_is_not_retried(status: int) -> None:
    """T-HTTP-21: 405 means no GET stream; servers that answer 404 or 400 to the GET mean the same.
    One GET, then the client goes on POST-only."""

    async def on_get(n: int, headers: dict[str, str]) -> Reply:
        return status, [("content-type", "text/plain")], [b"no"], False

    app = Scripted(on_get)
    with running(app) as base:
        stream = StreamableHTTPClientStream(f"{base}/mcp", default_retry=0.02, max_reconnects=3)
        async with Client(stream, era="legacy", timeout=10) as c:
            assert await until(lambda: not stream.listening)
            await asyncio.sleep(0.2)
            await c.list_tools()
    assert len(app.gets) == 1


@pytest.mark.parametrize(
    "reply",
    [
        (503, [("content-type", "text/plain")], [b"busy"], False),  # a passing trouble: tried again
        (200, SSE, [], False),  # an event stream that ends at once, empty
    ],
)
async def test_attempts_that_bring_nothing_are_bounded(reply: Reply) -> None:
    """T-HTTP-24, T-HTTP-30: attempts that bring nothing are retried with backoff, at most
    max_reconnects in a row; then the listener stops (the connection itself stays usable)."""

    async def on_get(n: int, headers: dict[str, str]) -> Reply:
        return reply

    app = Scripted(on_get)
    with running(app) as base:
        stream = StreamableHTTPClientStream(f"{base}/mcp", default_retry=0.02, max_reconnects=2)
        async with Client(stream, era="legacy", timeout=10) as c:
            assert await until(lambda: not stream.listening)
            await asyncio.sleep(0.3)
            await c.list_tools()
    assert len(app.gets) == 3  # the first GET and 2 reconnects
    times = [t for t, _ in app.gets]
    assert times[2] - times[1] >= times[1] - times[0] >= 0.015  # backoff: the delay does not shrink


async def test_polling_server_keeps_the_listener_going() -> None:
    """T-HTTP-12, T-HTTP-13, T-HTTP-24: a server that ends each GET after an event (polling) is
    reconnected every time, with the latest Last-Event-ID, however many times it happens."""

    async def on_get(n: int, headers: dict[str, str]) -> Reply:
        if n <= 6:
            return 200, SSE, [_event(f"p{n}", n, retry=10)], False
        return 200, SSE, [b": quiet now\n\n"], True

    app = Scripted(on_get)
    logged: list[Any] = []
    with running(app) as base:
        stream = StreamableHTTPClientStream(f"{base}/mcp", max_reconnects=1)
        async with Client(stream, era="legacy", timeout=10, on_log=lambda p: logged.append(p["data"])):
            assert await until(lambda: len(app.gets) == 7)
            assert stream.listening
    assert logged == [1, 2, 3, 4, 5, 6]
    assert [h.get("last-event-id") for _, h in app.gets] == [None, "p1", "p2", "p3", "p4", "p5", "p6"]


async def test_auto_listens_only_when_the_capabilities_allow_unasked_messages() -> None:
    """T-HTTP-19 (MAY): with listen="auto" (the default) a session whose capabilities rule out
    anything unasked (server: tools without listChanged; client: no elicitation, sampling, roots)
    opens no GET; listen=True opens it anyway; a client that can be asked opens it too."""

    async def on_get(n: int, headers: dict[str, str]) -> Reply:
        return 200, SSE, [b": hello\n\n"], True

    app = Scripted(on_get, caps={"tools": {}})
    with running(app) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10) as c:
            await c.list_tools()
            await asyncio.sleep(0.2)
        assert app.gets == []
        async with Client(f"{base}/mcp", era="legacy", timeout=10, listen=True) as c:
            assert await until(lambda: len(app.gets) == 1)
        async with Client(f"{base}/mcp", era="legacy", timeout=10, roots=["file:///r"]) as c:
            assert await until(lambda: len(app.gets) == 2)
    assert all(h["accept"] == "text/event-stream" for _, h in app.gets)
