"""Resumable SSE streams and the standalone GET stream of legacy Streamable HTTP sessions,
against a real uvicorn on a loopback port (T-HTTP-11..13, T-HTTP-19..32)."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from anyport import Client, Context, Server
from anyport.state import parse_event_id
from anyport.transports.http import StreamableHTTPApp
from tests.transports._http_helpers import POST_HEADERS, client, initialize, running, wait_for

app = Server("resume-test", version="1.0.0")
#: The app the tools below talk to (set by each fixture; tools run on the server's loop).
CURRENT: list[StreamableHTTPApp] = []


@app.tool()
async def steps(n: int, delay: float, ctx: Context) -> str:
    """Report progress n times, ``delay`` seconds apart, then answer."""
    for i in range(1, n + 1):
        await ctx.report_progress(i, n)
        await asyncio.sleep(delay)
    return f"done {n}"


@app.tool()
async def announce(session_id: str, uri: str) -> str:
    """Server code notifying a session out of band (as a subscriptions feature would)."""
    delivered = await CURRENT[-1].notify(session_id, "notifications/resources/updated", {"uri": uri})
    return "delivered" if delivered else "nobody listening"


@app.tool()
async def announce_all() -> str:
    n = await CURRENT[-1].broadcast("notifications/tools/list_changed")
    return f"{n} streams"


def _call(id_: int | str, name: str, arguments: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params}


def _events(text: str) -> list[dict[str, Any]]:
    """Every SSE event of a body: {'id', 'retry', 'data' (parsed JSON or '')}."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        ev: dict[str, Any] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name in ("id", "retry", "event"):
                ev[name] = value
            elif name == "data":
                ev["data"] = json.loads(value) if value.strip() else ""
        if "data" in ev or "id" in ev or "retry" in ev:
            out.append(ev)
    return out


def _sse_headers(h: dict[str, str], last_event_id: str | None = None) -> dict[str, str]:
    out = {"accept": "text/event-stream", "mcp-session-id": h["mcp-session-id"], "mcp-protocol-version": h["mcp-protocol-version"]}
    if last_event_id is not None:
        out["last-event-id"] = last_event_id
    return out


@contextmanager
def _serve(**options: Any) -> Iterator[str]:
    http_app = StreamableHTTPApp(app, keepalive_interval=0.2, **options)  # keep-alives let readers stop soon
    CURRENT.append(http_app)
    try:
        with running(http_app) as url:
            yield url
    finally:
        CURRENT.remove(http_app)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with _serve() as url:
        yield url


@pytest.fixture
def c(base: str) -> Iterator[httpx.Client]:
    with client(base) as cl:
        yield cl


class _GetStream:
    """A GET stream read on a background thread, so the test can act while it is open."""

    def __init__(self, base: str, headers: dict[str, str], path: str = "/mcp") -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=base, timeout=httpx.Timeout(10.0, read=30.0))
        self._thread = threading.Thread(target=self._read, args=(headers,), daemon=True)
        self._thread.start()

    def _read(self, headers: dict[str, str]) -> None:
        buf = ""
        try:
            with self._client.stream("GET", self.path, headers=headers) as r:
                self.status = r.status_code
                for chunk in r.iter_text():
                    buf += chunk
                    *blocks, buf = buf.split("\n\n")
                    for block in blocks:
                        self.events.extend(_events(block + "\n\n"))
                    if self._stop.is_set():
                        break  # leaving the block closes the connection
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def messages(self) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e.get("data")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.close()


# -- ids and priming -----------------------------------------------------------------------------


def test_priming_event_only_on_2025_11_25(c: httpx.Client) -> None:
    """T-HTTP-11: a 2025-11-25 POST stream opens with an id and empty data; older revisions get
    no priming event, but their events carry ids too (T-HTTP-27)."""
    h = initialize(c, version="2025-11-25")
    r = c.post("/mcp", headers=h, json=_call(1, "steps", {"n": 1, "delay": 0}, token="t"))
    evs = _events(r.text)
    assert evs[0]["data"] == "" and "retry" not in evs[0]
    stream, seq = parse_event_id(evs[0]["id"]) or ("", -1)
    assert stream.startswith("p") and seq == 0
    assert [parse_event_id(e["id"]) for e in evs] == [(stream, i) for i in range(len(evs))]
    assert evs[-1]["data"]["id"] == 1
    for version in ("2025-06-18", "2025-03-26"):
        h = initialize(c, version=version)
        r = c.post("/mcp", headers=h, json=_call(2, "steps", {"n": 1, "delay": 0}, token="t"))
        evs = _events(r.text)
        assert all(e["data"] for e in evs), version  # no empty-data event
        assert all("id" in e for e in evs)


def test_retry_field_in_the_priming_event() -> None:
    """T-HTTP-13: with sse_retry_ms the priming event carries retry."""
    with _serve(sse_retry_ms=1500) as url:
        with client(url) as c:
            h = initialize(c)
            r = c.post("/mcp", headers=h, json=_call(1, "steps", {"n": 1, "delay": 0}))
            first = _events(r.text)[0]
            assert first["retry"] == "1500" and first["data"] == ""


def test_event_ids_unique_across_the_streams_of_a_session(c: httpx.Client, base: str) -> None:
    """T-HTTP-28, T-HTTP-29: every id names its stream; no id repeats in a session."""
    h = initialize(c)
    ids: list[str] = []
    for i in range(5):
        r = c.post("/mcp", headers=h, json=_call(i, "steps", {"n": 2, "delay": 0}, token=f"t{i}"))
        ids += [e["id"] for e in _events(r.text)]
    g = _GetStream(base, _sse_headers(h))
    try:
        assert wait_for(lambda: g.events != [])
        ids.append(g.events[0]["id"])
    finally:
        g.close()
    assert len(ids) == len(set(ids)) == 5 * 4 + 1
    streams = {parse_event_id(i)[0] for i in ids}  # type: ignore[index]
    assert len(streams) == 6 and sum(s.startswith("g") for s in streams) == 1


# -- replay ----------------------------------------------------------------------------------------


def test_replay_after_last_event_id_exactly_once(c: httpx.Client) -> None:
    """T-HTTP-30, T-HTTP-31: GET + Last-Event-ID replays what followed on that stream, then ends."""
    h = initialize(c)
    r = c.post("/mcp", headers=h, json=_call(1, "steps", {"n": 3, "delay": 0}, token="t"))
    full = _events(r.text)
    assert len(full) == 5  # priming, 3 x progress, response
    for cut in range(len(full)):
        g = c.get("/mcp", headers=_sse_headers(h, full[cut]["id"]))
        assert g.status_code == 200 and g.headers["content-type"] == "text/event-stream"
        assert _events(g.text) == full[cut + 1 :], cut
    # The same again: replay is repeatable and never duplicates within one response.
    g = c.get("/mcp", headers=_sse_headers(h, full[0]["id"]))
    assert [e["id"] for e in _events(g.text)] == [e["id"] for e in full[1:]]


def test_no_replay_across_streams_or_sessions(c: httpx.Client) -> None:
    """T-HTTP-32: an id replays only its own stream; another session's id, or a made-up one, gets 400."""
    h = initialize(c)
    other = initialize(c)
    a = _events(c.post("/mcp", headers=h, json=_call(1, "steps", {"n": 2, "delay": 0}, token="a")).text)
    b = _events(c.post("/mcp", headers=h, json=_call(2, "steps", {"n": 2, "delay": 0}, token="b")).text)
    g = _events(c.get("/mcp", headers=_sse_headers(h, a[0]["id"])).text)
    assert {e["data"]["params"]["progressToken"] for e in g[:-1]} == {"a"} and g[-1]["data"]["id"] == 1
    g = _events(c.get("/mcp", headers=_sse_headers(h, b[1]["id"])).text)
    assert [e["id"] for e in g] == [e["id"] for e in b[2:]]
    # Another session's id: nothing replayed, 400 (not 404: the session itself is fine).
    r = c.get("/mcp", headers=_sse_headers(other, a[0]["id"]))
    assert r.status_code == 400 and r.json()["error"]["code"] == -32600 and "Last-Event-ID" in r.json()["error"]["message"]
    stream = parse_event_id(a[0]["id"])[0]  # type: ignore[index]
    for bogus in ("nonsense", f"{stream}:999", "xyz:1", f"{stream}:-1", ":"):
        r = c.get("/mcp", headers=_sse_headers(h, bogus))
        assert r.status_code == 400, bogus
    # Check order: session before Last-Event-ID; Accept before session.
    r = c.get("/mcp", headers={**_sse_headers(h, a[0]["id"]), "mcp-session-id": "unknown"})
    assert r.status_code == 404
    r = c.get("/mcp", headers={**_sse_headers(h), "accept": "application/json"})
    assert r.status_code == 406
    r = c.get("/mcp", headers={"accept": "text/event-stream"})
    assert r.status_code == 400
    r = c.get("/mcp", headers={**_sse_headers(h), "mcp-protocol-version": "1999-01-01"})
    assert r.status_code == 400
    r = c.get("/mcp", headers={**_sse_headers(h), "origin": "http://evil.example"})
    assert r.status_code == 403


# -- the standalone GET stream -------------------------------------------------------------------


def test_get_stream_delivers_server_notifications(c: httpx.Client, base: str) -> None:
    """T-HTTP-19..23, T-HTTP-26: notify() reaches the session's GET stream only (not the POST's stream),
    never with a response; other sessions get nothing; broadcast reaches every GET stream."""
    h = initialize(c)
    other = initialize(c)
    r = c.post("/mcp", headers=h, json=_call(1, "announce", {"session_id": h["mcp-session-id"], "uri": "res://x"}))
    assert _events(r.text)[-1]["data"]["result"]["content"][0]["text"] == "nobody listening"
    g = _GetStream(base, _sse_headers(h))
    g2 = _GetStream(base, _sse_headers(other))
    try:
        assert wait_for(lambda: len(g.events) >= 1 and len(g2.events) >= 1)
        assert g.status == 200 and g.events[0]["data"] == "" and parse_event_id(g.events[0]["id"])[0].startswith("g")  # type: ignore[index]
        r = c.post("/mcp", headers=h, json=_call(2, "announce", {"session_id": h["mcp-session-id"], "uri": "res://x"}))
        post_events = _events(r.text)
        assert post_events[-1]["data"]["result"]["content"][0]["text"] == "delivered"
        assert all(e["data"] == "" or "method" not in e["data"] for e in post_events)  # not on the POST stream
        assert wait_for(lambda: len(g.messages()) == 1)
        assert g.messages() == [{"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "res://x"}}]
        assert all("id" in e for e in g.events)
        r = c.post("/mcp", headers=other, json=_call(3, "announce_all"))
        assert _events(r.text)[-1]["data"]["result"]["content"][0]["text"] == "2 streams"
        assert wait_for(lambda: len(g.messages()) == 2 and len(g2.messages()) == 1)
        assert g.messages()[1]["method"] == g2.messages()[0]["method"] == "notifications/tools/list_changed"
        assert not any("id" in m and "method" not in m for m in g.messages() + g2.messages())  # T-HTTP-23
        # Resuming the GET stream replays what followed the given id on it.
        replay_from = g.events[1]["id"]
    finally:
        g.close()
        g2.close()
    g3 = _GetStream(base, _sse_headers(h, replay_from))
    try:
        assert wait_for(lambda: len(g3.messages()) == 1)
        assert g3.messages()[0]["method"] == "notifications/tools/list_changed"
    finally:
        g3.close()


def test_a_second_get_stream_replaces_the_first(c: httpx.Client, base: str) -> None:
    """One standalone stream per session: the newer GET takes over, the older one ends (T-HTTP-26)."""
    h = initialize(c)
    first = _GetStream(base, _sse_headers(h))
    try:
        assert wait_for(lambda: first.events != [])
        second = _GetStream(base, _sse_headers(h))
        try:
            assert first.ended.wait(5)
            assert wait_for(lambda: second.events != [])
            r = c.post("/mcp", headers=h, json=_call(1, "announce", {"session_id": h["mcp-session-id"], "uri": "res://y"}))
            assert "delivered" in r.text
            assert wait_for(lambda: len(second.messages()) == 1)
            assert first.messages() == []
            # DELETE ends the GET stream too.
            assert c.delete("/mcp", headers=h).status_code == 204
            assert second.ended.wait(5)
        finally:
            second.close()
    finally:
        first.close()


# -- THE resumption test: the client cuts the stream mid-call --------------------------------------


def test_raw_client_cuts_the_stream_and_resumes_with_get(c: httpx.Client, base: str) -> None:
    """T-HTTP-18, T-HTTP-30, T-HTTP-31: cut after the first progress event; the call runs on; GET +
    Last-Event-ID brings every later event exactly once, the response included."""
    h = initialize(c)
    seen: list[dict[str, Any]] = []
    with c.stream("POST", "/mcp", headers=h, json=_call(7, "steps", {"n": 5, "delay": 0.2}, token="cut")) as r:
        buf = ""
        for chunk in r.iter_text():
            buf += chunk
            *blocks, buf = buf.split("\n\n")
            for block in blocks:
                seen += _events(block + "\n\n")
            if any(e.get("data") for e in seen):
                break  # leaving the block closes the connection
    assert seen[-1]["data"]["params"]["progress"] == 1
    last = seen[-1]["id"]
    time.sleep(0.3)  # events go on into the log meanwhile
    g = c.get("/mcp", headers=_sse_headers(h, last))
    assert g.status_code == 200
    rest = _events(g.text)
    everything = seen + rest
    progress = [e["data"]["params"]["progress"] for e in everything if e["data"] and "method" in e["data"]]
    assert progress == [1, 2, 3, 4, 5]
    answers = [e["data"] for e in everything if e["data"] and "id" in e["data"]]
    assert answers == [{"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "done 5"}], "isError": False}}]
    ids = [e["id"] for e in everything]
    assert len(ids) == len(set(ids))


def test_a_resuming_get_takes_the_stream_from_a_still_open_post(c: httpx.Client) -> None:
    """T-HTTP-26: while the POST's connection is still open, a GET resuming its stream takes it over;
    each later event is written to one connection only."""
    h = initialize(c)
    post_events: list[dict[str, Any]] = []
    done = threading.Event()

    def read_post() -> None:
        with client(str(c.base_url)) as pc, pc.stream("POST", "/mcp", headers=h, json=_call(8, "steps", {"n": 6, "delay": 0.15}, token="tk")) as r:
            buf = ""
            for chunk in r.iter_text():
                buf += chunk
                *blocks, buf = buf.split("\n\n")
                for block in blocks:
                    post_events.extend(_events(block + "\n\n"))
        done.set()

    t = threading.Thread(target=read_post, daemon=True)
    t.start()
    assert wait_for(lambda: any(e.get("data") for e in post_events))
    last = post_events[-1]["id"]
    g = c.get("/mcp", headers=_sse_headers(h, last))
    assert done.wait(5)  # the POST's response was ended when the GET took over
    t.join(5)
    got = _events(g.text)
    ids = [e["id"] for e in post_events] + [e["id"] for e in got]
    assert len(ids) == len(set(ids))
    progress = [e["data"]["params"]["progress"] for e in post_events + got if e.get("data") and "method" in e["data"]]
    assert progress == [1, 2, 3, 4, 5, 6]
    assert got[-1]["data"]["id"] == 8


class _CuttingTransport(httpx.AsyncBaseTransport):
    """Breaks the response of the first ``steps`` call right after its first progress event."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.cut = 0
        self.gets: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "GET":
            self.gets.append(request.headers.get("last-event-id", ""))
        if request.method != "POST" or b'"steps"' not in request.content or self.cut:
            return response
        self.cut += 1
        original = response.stream
        assert isinstance(original, httpx.AsyncByteStream)

        async def cut() -> AsyncIterator[bytes]:
            try:
                async for chunk in original:
                    yield chunk
                    if b"notifications/progress" in chunk:
                        raise httpx.ReadError("connection cut by the test")
            finally:
                await original.aclose()

        return httpx.Response(response.status_code, headers=response.headers, stream=_Stream(cut()), request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Stream(httpx.AsyncByteStream):
    def __init__(self, it: AsyncIterator[bytes]) -> None:
        self._it = it

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._it:
            yield chunk


async def test_our_client_resumes_a_cut_stream(base: str) -> None:
    """The same with anyport's Client: every progress event once, then the result (T-HTTP-30)."""
    transport = _CuttingTransport()
    progress: list[float] = []
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(10.0, read=30.0)) as hx:
        async with Client(f"{base}/mcp", era="legacy", timeout=20, httpx_client=hx) as c:
            result = await c.call_tool("steps", {"n": 5, "delay": 0.2}, on_progress=lambda p, t, m: progress.append(p))
            assert result.text == "done 5"
            assert (await c.call_tool("steps", {"n": 1, "delay": 0})).text == "done 1"  # the session is fine
    assert transport.cut == 1 and len(transport.gets) >= 1
    assert progress == [1, 2, 3, 4, 5]


async def test_our_client_follows_server_polling() -> None:
    """T-HTTP-12, T-HTTP-13: the server closes each POST stream after its priming event (retry 50 ms);
    the client resumes with GET and gets everything once."""
    with _serve(sse_retry_ms=50, sse_poll_after=0) as url:
        progress: list[float] = []
        async with Client(f"{url}/mcp", era="legacy", timeout=20) as c:
            result = await c.call_tool("steps", {"n": 4, "delay": 0.1}, on_progress=lambda p, t, m: progress.append(p))
            assert result.text == "done 4"
            assert progress == [1, 2, 3, 4]
            assert len(await c.list_tools()) == 3


def test_polling_closes_the_connection_after_priming_with_retry() -> None:
    """T-HTTP-12/13 on the wire: priming (with retry), retry again, end; the GET brings the rest."""
    with _serve(sse_retry_ms=100, sse_poll_after=0) as url:
        with client(url) as c:
            h = initialize(c)
            r = c.post("/mcp", headers=h, json=_call(1, "steps", {"n": 2, "delay": 0.1}, token="p"))
            evs = _events(r.text)
            assert evs[0]["data"] == "" and evs[0]["retry"] == "100" and "id" in evs[0]
            assert all(not e.get("data") or "method" in e["data"] for e in evs)  # closed before the response
            assert evs[-1].get("retry") == "100" and "id" not in evs[-1]  # retry again before closing
            g = c.get("/mcp", headers=_sse_headers(h, [e for e in evs if "id" in e][-1]["id"]))
            rest = [e["data"] for e in evs + _events(g.text) if e.get("data")]
            assert [m.get("method") for m in rest] == ["notifications/progress", "notifications/progress", None]
            # Older revisions have no priming event: never polled.
            h = initialize(c, version="2025-06-18")
            r = c.post("/mcp", headers=h, json=_call(2, "steps", {"n": 1, "delay": 0}, token="p"))
            assert _events(r.text)[-1]["data"]["id"] == 2


# -- rejected requests leave nothing behind ---------------------------------------------------------


async def _asgi(http_app: StreamableHTTPApp, method: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request straight into the ASGI app (no sockets: memory measurements see only the app)."""
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    raw = [(k.lower().encode(), v.encode()) for k, v in {"host": "127.0.0.1:8000", **headers}.items()]
    scope = {"type": "http", "method": method, "path": "/mcp", "headers": raw, "query_string": b""}
    await asyncio.wait_for(http_app(scope, receive, send), 5)
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, b"".join(m.get("body", b"") for m in sent[1:])


async def test_thousands_of_rejected_requests_leak_nothing() -> None:
    """Bad Origin, bad version, unknown session, malformed JSON, oversized body, foreign Last-Event-ID:
    3,000 rejections leave the live-session count, GET streams and bus subscriptions unchanged and
    memory flat."""
    http_app = StreamableHTTPApp(app, max_body_bytes=256)
    init = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).encode()
    status, headers, _ = await _asgi(http_app, "POST", POST_HEADERS, init)
    assert status == 200
    h = {**POST_HEADERS, "mcp-session-id": headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    ping = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    cases: list[tuple[str, dict[str, str], bytes, int]] = [
        ("POST", {**POST_HEADERS, "origin": "http://evil.example"}, init, 403),
        ("POST", {**h, "mcp-protocol-version": "1999-01-01"}, ping, 400),
        ("POST", {**h, "mcp-session-id": "no-such-session"}, ping, 404),
        ("POST", h, b'{"jsonrpc": "2.0", "id": 1, "method": ', 400),
        ("POST", POST_HEADERS, b'{"jsonrpc": "2.0", "id": 1, "method": ', 400),
        ("POST", POST_HEADERS, b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"x":"' + b"a" * 300 + b'"}}', 413),
        ("GET", {**_sse_headers(h), "last-event-id": "pOther:0"}, b"", 400),
        ("GET", {**_sse_headers(h), "mcp-session-id": "nope"}, b"", 404),
        ("GET", {**_sse_headers(h), "mcp-protocol-version": "2026-07-28"}, b"", 405),
    ]

    async def rejected(n: int) -> None:
        for i in range(n):
            method, hdrs, body, expected = cases[i % len(cases)]
            status, _, _ = await _asgi(http_app, method, hdrs, body)
            assert status == expected, (i, status)

    def state() -> tuple[int, int, int, int]:
        return len(http_app.sessions), len(http_app.get_streams), len(http_app.bus), len(http_app.events)  # type: ignore[arg-type]

    await rejected(300)  # warm up caches
    before = state()
    gc.collect()
    tracemalloc.start()
    try:
        snap = tracemalloc.take_snapshot()
        await rejected(3000)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(snap, "filename"))
    assert state() == before == (1, 0, 0, 0)
    assert growth < 256 * 1024, growth
    await http_app.aclose()


# -- two replicas sharing state (DESIGN.md §4) ----------------------------------------------------


class _Replicas:
    """Two apps on one loop (the in-memory Bus is per event loop): ``/a`` and ``/b``, sharing the
    session records, the event log and the bus, as replicas behind a load balancer would via Redis."""

    def __init__(self) -> None:
        from anyport.state import MemoryBus, MemoryEventLog, MemorySessionStore

        shared: dict[str, Any] = {"session_store": MemorySessionStore(), "event_log": MemoryEventLog(), "bus": MemoryBus()}
        self.a = StreamableHTTPApp(app, path="/a", legacy_sse=False, keepalive_interval=0.2, **shared)
        self.b = StreamableHTTPApp(app, path="/b", legacy_sse=False, keepalive_interval=0.2, **shared)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await self.a.aclose()
            await self.b.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        target = self.b if scope["path"].startswith("/b") else self.a
        await target(scope, receive, send)


def test_a_session_is_served_by_any_replica() -> None:
    """A session begun on replica a serves requests on b; a stream begun on a resumes on b;
    a notification sent from a reaches the GET stream held by b; DELETE on b ends it on a."""
    replicas = _Replicas()
    CURRENT.append(replicas.a)
    try:
        with running(replicas) as url, client(url) as c:
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            r = c.post("/a", headers=POST_HEADERS, json=init)
            h = {**POST_HEADERS, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
            assert c.post("/a", headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
            assert c.post("/b", headers=h, json={"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "error"}}).status_code == 200
            assert len(replicas.b.sessions) == 1  # restored from the record
            # The log level set on b is in the record: a new replica sees it.
            rec = asyncio.run(_record(replicas, h["mcp-session-id"]))
            assert rec is not None and rec.log_level == "error" and rec.initialized and rec.version == "2025-11-25"
            # Cut a stream on a, resume it on b.
            seen: list[dict[str, Any]] = []
            with c.stream("POST", "/a", headers=h, json=_call(2, "steps", {"n": 4, "delay": 0.15}, token="x")) as resp:
                buf = ""
                for chunk in resp.iter_text():
                    buf += chunk
                    *blocks, buf = buf.split("\n\n")
                    for block in blocks:
                        seen += _events(block + "\n\n")
                    if any(e.get("data") for e in seen):
                        break
            g = c.get("/b", headers=_sse_headers(h, seen[-1]["id"]))
            everything = [e["data"] for e in seen + _events(g.text) if e.get("data")]
            assert [m["params"]["progress"] for m in everything if "method" in m] == [1, 2, 3, 4]
            assert [m["id"] for m in everything if "id" in m] == [2]
            # The GET stream is held by b; the notification is sent by a.
            stream = _GetStream(url, _sse_headers(h), path="/b")
            try:
                assert wait_for(lambda: stream.events != [])
                r = c.post("/a", headers=h, json=_call(3, "announce", {"session_id": h["mcp-session-id"], "uri": "res://r"}))
                assert "delivered" in r.text
                assert wait_for(lambda: len(stream.messages()) == 1)
            finally:
                stream.close()
            assert c.delete("/b", headers=h).status_code == 204
            assert c.post("/a", headers=h, json={"jsonrpc": "2.0", "id": 4, "method": "ping"}).status_code == 404
    finally:
        CURRENT.remove(replicas.a)


async def _record(replicas: _Replicas, sid: str) -> Any:
    return await replicas.a.sessions.records.get(sid)
