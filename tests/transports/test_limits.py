"""``anyport.Limits``: one place for every limit, and what a client sees when it meets one.

Limits tested elsewhere: ``max_message_bytes`` (test_stdio_bad_input, test_hardening: -32600 with
the id), ``max_body_bytes`` (test_http_server: 413), ``body_timeout`` (test_http_edge: 408),
``max_sessions`` (test_http_capacity: 503 + Retry-After), ``session_idle_timeout``
(test_hardening: ended on a timer), ``max_events_per_stream`` / ``max_streams_per_session``
(test_memory_state). Here: the object itself, how it reaches the app and the CLI, ``max_inflight``
(-32000 on stdio and on a legacy HTTP session) and ``max_buffered_events`` (backpressure with
progress coalescing, U-08).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import orjson
import pytest

from anyport import Context, Limits, Server
from anyport.protocol import IncomingRequest
from anyport.transports.http import create_app
from anyport.transports.http._exchange import Exchange
from anyport.transports.http._respond import PostResponse
from tests.transports._http_helpers import POST_HEADERS, client, initialize, modern_body, running, sse_messages
from tests.transports.hardening_app import app as hardening_app
from tests.transports.test_hardening import spawn_stdio, stop_stdio

SERVER_BUSY = -32000


@pytest.mark.parametrize(
    "bad",
    [{"max_sessions": 0}, {"max_inflight": -1}, {"body_timeout": 0.0}, {"max_buffered_events": True}, {"max_sessions": 2.5}],
)
def test_limits_refuse_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Limits"):
        Limits(**bad)


def test_limits_reach_the_app_and_single_keywords_override_them() -> None:
    limits = Limits(max_sessions=7, session_idle_timeout=12, max_body_bytes=1000, max_buffered_events=3, max_events_per_stream=9, max_streams_per_session=4)
    app = create_app(hardening_app, limits=limits, max_sessions=5)
    assert app.limits.max_sessions == 5 and app.limits.session_idle_timeout == 12
    assert app.sessions.max_sessions == 5 and app.sessions.idle_timeout == 12 and app.gate.max_body_bytes == 1000
    assert app.legacy is not None and app.legacy.max_connections == 5 and app.legacy.max_buffered == 3
    assert app.events.max_events == 9 and app.events.max_streams == 4  # type: ignore[attr-defined]
    assert create_app(hardening_app).limits == Limits()
    with pytest.raises(ValueError):
        create_app(hardening_app, max_body_bytes=0)


async def test_stdio_requests_over_max_inflight_get_32000_with_their_id() -> None:
    """--max-inflight 2: a third request while two run is refused at once with -32000 and its own id;
    once one is cancelled (U-04) there is room again."""
    p = await spawn_stdio("--max-inflight", "2")
    try:
        await p.initialize("2025-11-25")
        for id_ in ("a", "b"):
            await p.send({"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": "spin", "arguments": {"steps": 10**9}}})
        await asyncio.sleep(0.2)
        await p.send({"jsonrpc": "2.0", "id": "c", "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}})
        busy = await p.read()
        assert busy["id"] == "c" and busy["error"]["code"] == SERVER_BUSY and busy["error"]["data"] == {"limit": 2}, busy
        await p.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "a"}})
        await asyncio.sleep(0.2)
        await p.send({"jsonrpc": "2.0", "id": "d", "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "y"}}})
        ok = await p.read()
        assert ok["id"] == "d" and ok["result"]["content"][0]["text"] == "y", ok
    finally:
        await stop_stdio(p)


def test_http_session_over_max_inflight_gets_32000_and_stateless_is_not_limited() -> None:
    """A legacy session with max_inflight=1: a second request while one runs gets -32000 with its id;
    a DELETE ends the running one. Stateless 2026-07-28 requests are each their own connection."""
    app = create_app(hardening_app, limits=Limits(max_inflight=1))
    with running(app) as base, client(base) as c:
        h = initialize(c, "2025-11-25")
        started = threading.Event()

        def spin() -> None:
            with httpx.Client(base_url=base, timeout=5) as s, s.stream(
                "POST", "/mcp", headers=h, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "spin", "arguments": {"steps": 10**9}}}
            ) as r:
                started.set()
                for _ in r.iter_bytes():
                    pass

        t = threading.Thread(target=spin, daemon=True)
        t.start()
        assert started.wait(5)
        time.sleep(0.2)
        r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}})
        msgs = sse_messages(r.text) if r.headers["content-type"].startswith("text/event-stream") else [r.json()]
        assert msgs[-1]["id"] == 2 and msgs[-1]["error"]["code"] == SERVER_BUSY, msgs
        for i in range(3):  # 2026-07-28 requests meanwhile: not counted against the session
            body = modern_body(10 + i, "tools/call", {"name": "echo", "arguments": {"text": "m"}})
            r = c.post("/mcp", headers={**POST_HEADERS, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "echo"}, json=body)
            assert r.status_code == 200 and "error" not in r.text, r.text
        assert c.delete("/mcp", headers=h).status_code == 204
        t.join(5)
        assert not t.is_alive()


class _SlowClient:
    """An ASGI ``send`` that writes nothing until released: a client that stopped reading."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.release = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            await self.release.wait()
            self.bodies.append(message.get("body", b""))

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # never disconnects
        return {}


async def test_backpressure_coalesces_progress_and_holds_other_messages_U08(monkeypatch: pytest.MonkeyPatch) -> None:
    """max_buffered_events=4: a handler that sends 2,000 progress and 10 log notifications to a client
    that does not read never has more than 4 waiting. Progress is coalesced (the latest wins, values
    still increase: U-08), logs wait for room and all arrive, in order; nothing is lost once the
    client reads again. (The handler's own progress rate limit is lifted here: it is tested below.)"""
    monkeypatch.setattr(Context, "PROGRESS_PER_SECOND", 1e12)
    server = Server("bp")
    progressed = 0

    @server.tool()
    async def chatty(ctx: Context) -> str:
        nonlocal progressed
        for i in range(1, 2001):
            await ctx.report_progress(i, 2000)
            progressed = i
            if i % 200 == 0:
                await ctx.info(f"log {i // 200}")
        return "done"

    conn = server.open_connection()
    events = conn.receive_obj(
        modern_body(1, "tools/call", {"name": "chatty", "arguments": {}, "_meta": {"progressToken": "t", "io.modelcontextprotocol/logLevel": "info"}})
    ).events
    assert isinstance(events[0], IncomingRequest)
    tasks: list[asyncio.Task[Any]] = []

    def spawn(coro: Any, context: Any = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, context=context)
        tasks.append(task)
        return task

    exchange = Exchange(server, conn, None, modern=True, batch=False, json_response=False, request_timeout=None, keepalive=30, spawn=spawn, max_buffered=4)
    exchange.start(events)
    slow = _SlowClient()
    writer = asyncio.get_running_loop().create_task(PostResponse(exchange, []).write(slow.receive, slow.send))  # type: ignore[arg-type]
    await asyncio.sleep(0.3)
    assert exchange._buffered <= 4
    assert 200 <= progressed < 2000  # held back at the first log that found no room
    slow.release.set()
    await asyncio.wait_for(writer, 10)
    messages = sse_messages(b"".join(slow.bodies).decode())
    progress = [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]
    logs = [m["params"]["data"] for m in messages if m.get("method") == "notifications/message"]
    assert progress == sorted(set(progress)) and progress[-1] == 2000 and len(progress) < 2000
    assert logs == [f"log {i}" for i in range(1, 11)]
    assert messages[-1]["result"]["content"][0]["text"] == "done"


_INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def _scope(method: str, headers: dict[str, str]) -> dict[str, Any]:
    base = {"host": "127.0.0.1", "accept": "application/json, text/event-stream", "content-type": "application/json"}
    return {
        "type": "http", "method": method, "path": "/mcp", "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
        "headers": [(k.encode(), v.encode()) for k, v in {**base, **headers}.items()],
    }


async def _post(app: Any, body: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    sent = [{"type": "http.request", "body": orjson.dumps(body), "more_body": False}]

    async def receive() -> dict[str, Any]:
        return sent.pop() if sent else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    await asyncio.wait_for(app(_scope("POST", headers), receive, send), 5)
    return out


def _sse_events(bodies: list[bytes]) -> list[tuple[str | None, Any]]:
    """(id, data) of each SSE event written."""
    events = []
    for block in b"".join(bodies).decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "id" in fields or "data" in fields:
            events.append((fields.get("id"), orjson.loads(fields["data"]) if fields.get("data") else None))
    return events


async def test_a_standalone_stream_that_falls_behind_is_ended_and_resumes_from_the_log_T_HTTP_30() -> None:
    """max_buffered_events=8: a GET stream whose client stops reading while 100 notifications arrive
    holds at most 8 frames, then its connection is ended; a GET with Last-Event-ID gets every
    message it missed from the event log, exactly once (T-HTTP-30/31)."""
    app = create_app(Server("g"), limits=Limits(max_buffered_events=8))
    start = await _post(app, _INIT, {})
    sid = dict(start[0]["headers"])[b"mcp-session-id"].decode()
    h = {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
    await _post(app, {"jsonrpc": "2.0", "method": "notifications/initialized"}, h)
    gate = asyncio.Event()
    bodies: list[bytes] = []

    async def slow_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            await gate.wait()
            bodies.append(message.get("body", b""))

    async def connected() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    get = asyncio.get_running_loop().create_task(app(_scope("GET", {**h, "accept": "text/event-stream"}), connected, slow_send))
    await asyncio.sleep(0.1)
    for i in range(100):
        assert await app.notify(sid, "notifications/message", {"level": "info", "data": i})
    await asyncio.sleep(0.1)
    gate.set()
    await asyncio.wait_for(get, 5)  # ended by the server: the client fell behind
    first = _sse_events(bodies)
    got = [data["params"]["data"] for _, data in first if data is not None]
    assert len(got) <= 10 and got == list(range(len(got)))
    last_id = first[-1][0]
    assert last_id is not None
    more: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            more.append(message.get("body", b""))

    async def leave_soon() -> dict[str, Any]:
        await asyncio.sleep(0.3)
        return {"type": "http.disconnect"}

    await asyncio.wait_for(app(_scope("GET", {**h, "accept": "text/event-stream", "last-event-id": last_id}), leave_soon, send), 5)
    rest = [data["params"]["data"] for _, data in _sse_events(more) if data is not None]
    assert got + rest == list(range(100))
    await app.aclose()


async def test_http_sse_posts_beyond_max_buffered_waiting_messages_get_503() -> None:
    """An HTTP+SSE connection whose loop does not keep up (its client does not read the stream) holds
    at most max_buffered_events unprocessed POSTs; the next gets 503 + Retry-After, nothing taken."""
    from anyport.transports.http._legacy_sse import LegacySSE, SSEChannel, _Connection

    legacy = LegacySSE(Server("s"), max_buffered=3)
    channel = SSEChannel(3)
    stalled = asyncio.get_running_loop().create_task(asyncio.sleep(3600))  # a loop that reads nothing
    sid = "ab" * 16
    legacy.connections[sid] = _Connection(sid, channel, stalled)
    statuses = []
    for i in range(5):
        out: list[dict[str, Any]] = []

        async def send(message: dict[str, Any], out: list[dict[str, Any]] = out) -> None:
            out.append(message)

        async def body(i: int = i) -> bytes:
            return orjson.dumps({"jsonrpc": "2.0", "id": i, "method": "ping"})

        await legacy.post(f"session_id={sid}".encode(), "application/json", body, send, max_body_bytes=1000)
        statuses.append(out[0]["status"])
        if out[0]["status"] == 503:
            assert (b"retry-after", b"1") in out[0]["headers"]
    assert statuses == [202, 202, 202, 503, 503] and channel.inbox.qsize() == 3
    stalled.cancel()


async def test_progress_is_rate_limited_at_the_source_U09_U08() -> None:
    """U-09: a handler reporting 20,000 times as fast as it can sends a burst, then at most
    PROGRESS_PER_SECOND a second; the values still increase (U-08) and the one reaching total goes."""
    server = Server("rate")

    @server.tool()
    async def hot(ctx: Context) -> str:
        for i in range(1, 20_001):
            await ctx.report_progress(i, 20_000)
        return "done"

    with running(create_app(server)) as base, client(base) as c:
        started = time.monotonic()
        r = c.post("/mcp", headers={**POST_HEADERS, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "hot"},
                   json=modern_body(1, "tools/call", {"name": "hot", "arguments": {}, "_meta": {"progressToken": "h"}}))
        elapsed = time.monotonic() - started
    messages = sse_messages(r.text)
    values = [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]
    assert values == sorted(set(values)) and values[-1] == 20_000 and values[:10] == list(range(1, 11))
    assert len(values) <= Context.PROGRESS_BURST + Context.PROGRESS_PER_SECOND * elapsed + 2, (len(values), elapsed)
    assert messages[-1]["result"]["content"][0]["text"] == "done"


async def test_http_sse_gives_memory_back_when_its_connections_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a burst of HTTP+SSE connections ended (256 of them, or the last of at least 32), the
    table is rebuilt and the C heap trimmed, half a second later, with no traffic needed (issue 10,
    build item 4); a few connections ending on a quiet server trim nothing."""
    from anyport.transports.http import _legacy_sse

    trims: list[int] = []
    monkeypatch.setattr(_legacy_sse, "trim_heap", lambda: trims.append(1) or True)
    legacy = _legacy_sse.LegacySSE(Server("m"))

    async def gone() -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}

    async def send(_message: dict[str, Any]) -> None:
        pass

    await asyncio.gather(*(legacy.stream("", gone, send) for _ in range(5)))
    await asyncio.sleep(0.7)
    assert not legacy.connections and trims == []  # a quiet server
    await asyncio.gather(*(legacy.stream("", gone, send) for _ in range(40)))
    assert trims == []
    await asyncio.sleep(0.7)
    assert trims == [1]
    await legacy.aclose()


def test_event_log_limits_what_a_resuming_client_sees_T_HTTP_30_T_HTTP_32() -> None:
    """max_streams_per_session=2, max_events_per_stream=3: after three POST streams of 12 events each,
    a Last-Event-ID of the oldest stream is a 400 (T-HTTP-32: not a stream of this session any more);
    one of the newest stream replays only the 3 events still kept (T-HTTP-30)."""
    app = create_app(hardening_app, limits=Limits(max_events_per_stream=3, max_streams_per_session=2))
    with running(app) as base, client(base) as c:
        h = initialize(c)
        streams = []
        for n in range(3):
            call = {"jsonrpc": "2.0", "id": 10 + n, "method": "tools/call", "params": {"name": "spin", "arguments": {"steps": 20}, "_meta": {"progressToken": "t"}}}
            r = c.post("/mcp", headers=h, json=call)
            streams.append([line[4:] for line in r.text.splitlines() if line.startswith("id: ")])
        assert all(len(ids) > 3 for ids in streams)
        get = {**h, "accept": "text/event-stream"}
        r = c.get("/mcp", headers={**get, "last-event-id": streams[0][0]})
        assert r.status_code == 400 and "Last-Event-ID" in r.json()["error"]["message"]
        r = c.get("/mcp", headers={**get, "last-event-id": streams[2][0]})
        replayed = [line[4:] for line in r.text.splitlines() if line.startswith("id: ")]
        assert r.status_code == 200 and replayed == streams[2][-3:]
        assert sse_messages(r.text)[-1]["id"] == 12  # the final answer is among the newest


async def test_http_sse_connections_over_max_sessions_get_503() -> None:
    """max_sessions also bounds open HTTP+SSE connections: one more GET /sse is 503 + Retry-After."""
    from anyport.transports.http._legacy_sse import LegacySSE

    legacy = LegacySSE(Server("c"), max_connections=2)
    both = asyncio.Event()
    held: list[asyncio.Task[None]] = []
    starts: list[dict[str, Any]] = []

    async def hold() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            starts.append(message)
            if len(starts) == 2:
                both.set()

    for _ in range(2):
        held.append(asyncio.get_running_loop().create_task(legacy.stream("", hold, send)))
    await asyncio.wait_for(both.wait(), 5)
    await legacy.stream("", hold, send)  # refused at once
    assert [s["status"] for s in starts] == [200, 200, 503]
    assert (b"retry-after", b"5") in starts[-1]["headers"]
    for task in held:
        task.cancel()
    await asyncio.gather(*held, return_exceptions=True)
    await legacy.aclose()
