"""Server->client answers and cancellations across replicas (DESIGN.md §4, "Scale-out without sticky
sessions").

Two ``StreamableHTTPApp`` replicas, ``/a`` and ``/b``, share one SessionStore, EventLog and Bus (the
memory implementations, on one event loop, as Redis would be shared by processes). The client's
POSTs alternate between them, as a load balancer without sticky sessions would send them:

- a tool on a asks the client (``elicitation/create``, ``roots/list``) on its POST's SSE stream
  (T-HTTP-10, T-HTTP-15); the answer POSTed to b (202, T-HTTP-08) completes the tool, also when
  the session began on b; late, duplicate and unknown answers are ignored (U-05) and each answer
  resolves its request once;
- ``notifications/cancelled`` POSTed to b stops a tool running on a: the handler sees
  ``CancelledError`` and nothing is sent for the request (U-04, T-HTTP-18);
- a replica listens on the session's inbox key only while it has handlers or waiters for it; after
  DELETE (T-HTTP-42) on the other replica nothing is left: no subscription, no live part, 404.

Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from anyport import Context, Server
from anyport._exceptions import ConnectionClosedError
from anyport.protocol import REVISIONS, CancelRequested, ResponseReceived, ServerConnection
from anyport.state import MemoryBus, MemoryEventLog, MemorySessionStore, SessionRecord
from anyport.transports.http import StreamableHTTPApp
from anyport.transports.http._registry import LiveSessions
from anyport.transports.http._sessions import ASKED_ELSEWHERE, LISTEN_KEY, SESSIONS_KEY, SessionRequests, inbox_key
from tests.transports._http_helpers import POST_HEADERS, running, wait_for

LEGACY = "2025-11-25"
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}}

server = Server("replicas-test", version="1.0.0")
#: What happened to the handlers, by tag (written on the server's thread).
OUTCOMES: dict[str, str] = {}


def _session_keys(bus: MemoryBus) -> int:
    """Bus keys with a subscriber, but the replicas' own (one per app, not per session): the listen
    relay and the session announcements."""
    return len([key for key in bus._subs if key not in (LISTEN_KEY, SESSIONS_KEY)])


def _name(answer: Any) -> str:
    content = answer.content if isinstance(answer.content, dict) else {}
    return f"{answer.action}:{content.get('name')}"


@server.tool()
async def ask_twice(ctx: Context) -> str:
    """Two questions, one after the other."""
    first = await ctx.elicit("First?", NAME_SCHEMA)
    second = await ctx.elicit("Second?", NAME_SCHEMA)
    return f"{_name(first)},{_name(second)}"


@server.tool()
async def roots(ctx: Context) -> str:
    """The client's roots."""
    return ",".join(root.uri for root in await ctx.list_roots())


@server.tool()
async def slow(tag: str, ctx: Context) -> str:
    """Progress, then a long sleep; records whether it finished or was cancelled."""
    await ctx.report_progress(1, 2)
    try:
        await asyncio.sleep(8)  # long enough; bounded, so a lost cancellation fails the test
    except asyncio.CancelledError:
        OUTCOMES[tag] = "cancelled"
        raise
    OUTCOMES[tag] = "completed"
    return "slept"


@server.tool()
async def wait_forever(tag: str, ctx: Context) -> str:
    """Asks and waits; records how the wait ended."""
    try:
        await ctx.elicit("Never answered", NAME_SCHEMA)
    except ConnectionClosedError:
        OUTCOMES[tag] = "session closed"
        raise
    except asyncio.CancelledError:
        OUTCOMES[tag] = "cancelled"
        raise
    OUTCOMES[tag] = "answered"
    return "answered"


class Replicas:
    """``/a`` and ``/b``: two apps sharing session records, event log and bus, on one uvicorn."""

    def __init__(self) -> None:
        self.bus = MemoryBus()
        shared: dict[str, Any] = {"session_store": MemorySessionStore(), "event_log": MemoryEventLog(), "bus": self.bus}
        self.a = StreamableHTTPApp(server, path="/a", legacy_sse=False, keepalive_interval=0.2, request_timeout=10, **shared)
        self.b = StreamableHTTPApp(server, path="/b", legacy_sse=False, keepalive_interval=0.2, request_timeout=10, **shared)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await self.a.aclose()
            await self.b.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await (self.b if scope["path"].startswith("/b") else self.a)(scope, receive, send)

    def app(self, path: str) -> StreamableHTTPApp:
        return self.a if path == "/a" else self.b

    def listeners(self, sid: str) -> int:
        return self.bus.subscribers(inbox_key(sid))


class RoundRobin:
    """A client without sticky sessions: each POST (and the DELETE) goes to the next replica in turn."""

    def __init__(self, c: httpx.Client, first: str = "/a") -> None:
        self.c = c
        self._paths = itertools.cycle(["/a", "/b"] if first == "/a" else ["/b", "/a"])
        self.headers: dict[str, str] = dict(POST_HEADERS)
        self.sid = ""
        #: Where each request went, in order.
        self.trail: list[str] = []

    def _next(self) -> str:
        path = next(self._paths)
        self.trail.append(path)
        return path

    def initialize(self, capabilities: dict[str, Any]) -> None:
        body = {
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": LEGACY, "capabilities": capabilities, "clientInfo": {"name": "t", "version": "1"}},
        }
        r = self.c.post(self._next(), headers=self.headers, json=body)
        assert r.status_code == 200, r.text
        self.sid = r.headers["mcp-session-id"]
        self.headers = {**POST_HEADERS, "mcp-session-id": self.sid, "mcp-protocol-version": LEGACY}
        assert self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202

    def post(self, body: dict[str, Any]) -> httpx.Response:
        return self.c.post(self._next(), headers=self.headers, json=body)

    def stream(self, body: dict[str, Any]) -> Any:
        """A POST whose SSE response is read while the test goes on (``with rr.stream(...) as r``)."""
        return self.c.stream("POST", self._next(), headers=self.headers, json=body)

    def delete(self) -> httpx.Response:
        return self.c.delete(self._next(), headers=self.headers)

    def answer(self, id_: Any, result: dict[str, Any]) -> httpx.Response:
        return self.post({"jsonrpc": "2.0", "id": id_, "result": result})


def _call(id_: int, name: str, arguments: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params}


def _messages(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON-RPC messages of an SSE response, as they arrive (priming events skipped)."""
    for line in lines:
        if line.startswith("data:") and line[5:].strip():
            yield json.loads(line[5:])


def _assert_ended(rest: list[dict[str, Any]]) -> None:
    """The stream of a tool whose session was deleted ends: at most its final message, nothing else.
    (Whether the handler, failed in its wait, still answers is as without replicas: it may.)"""
    assert len(rest) <= 1 and all(m.get("id") == 5 and "method" not in m for m in rest), rest


@pytest.fixture
def replicas() -> Iterator[tuple[Replicas, str]]:
    reps = Replicas()
    with running(reps) as base:
        yield reps, base


@pytest.fixture
def c(replicas: tuple[Replicas, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=replicas[1], timeout=httpx.Timeout(10.0)) as cl:
        yield cl


def test_an_elicitation_answer_posted_to_another_replica_completes_the_tool(replicas: tuple[Replicas, str], c: httpx.Client) -> None:
    """DESIGN.md §4, T-HTTP-15, T-HTTP-08: the tool runs on a, the answers are POSTed to b and reach it
    over the Bus. U-05: a late answer (to a question already answered) and duplicates (POSTed to a and
    to b after the answer was taken) are ignored, so each question resolves once, with its own answer.
    Responses with ids nobody asked are dropped without an error. Replica a listens on the session's
    inbox only while the tool runs; b, which runs no handler, never does."""
    reps, _ = replicas
    rr = RoundRobin(c)
    rr.initialize({"elicitation": {}})  # initialize -> a, initialized -> b
    sid = rr.sid
    assert reps.listeners(sid) == 0  # an idle session costs no subscription
    with rr.stream(_call(1, "ask_twice")) as r:  # -> a
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        messages = _messages(r.iter_lines())
        first = next(messages)
        assert first["method"] == "elicitation/create" and first["params"]["message"] == "First?"
        assert reps.listeners(sid) == 1
        session_a = reps.a.sessions._sessions[sid]
        assert session_a.listening and list(session_a.waiters) == [first["id"]]
        assert rr.answer(first["id"], {"action": "accept", "content": {"name": "Ada"}}).status_code == 202  # -> b
        second = next(messages)
        assert second["method"] == "elicitation/create" and second["params"]["message"] == "Second?"
        assert second["id"] != first["id"]  # J-04
        # Late: the first question was answered already.
        assert rr.answer(first["id"], {"action": "accept", "content": {"name": "Eve"}}).status_code == 202  # -> a
        assert rr.answer(first["id"], {"action": "accept", "content": {"name": "Eve"}}).status_code == 202  # -> b
        # Nobody asked these anywhere.
        for unknown in (987_654_321_987, "nope", 10**12):
            assert rr.post({"jsonrpc": "2.0", "id": unknown, "result": {}}).status_code == 202
        assert c.post("/b", headers=rr.headers, json={"jsonrpc": "2.0", "id": second["id"], "result": {"action": "accept", "content": {"name": "Bob"}}}).status_code == 202
        assert wait_for(lambda: not session_a.waiters)
        # Duplicates of the second answer, on both replicas, after it was taken.
        for path in ("/a", "/b"):
            dup = {"jsonrpc": "2.0", "id": second["id"], "result": {"action": "accept", "content": {"name": "Mallory"}}}
            assert c.post(path, headers=rr.headers, json=dup).status_code == 202
        final = next(messages)
        assert final["id"] == 1
        assert final["result"]["content"][0]["text"] == "accept:Ada,accept:Bob"
        assert list(messages) == []
    assert rr.trail[:5] == ["/a", "/b", "/a", "/b", "/a"]
    assert sid in reps.b.sessions  # b restored the session to take the answers
    session_b = reps.b.sessions._sessions[sid]
    assert not session_b.waiters and not session_b.tasks and not session_b.listening
    assert wait_for(lambda: reps.listeners(sid) == 0 and not session_a.listening)  # idle again: no subscription


def test_a_roots_answer_reaches_a_replica_that_restored_the_session(replicas: tuple[Replicas, str], c: httpx.Client) -> None:
    """DESIGN.md §4: the session begins on b; the tool runs on a, which restored it and numbers its
    requests in its own block (J-04); the roots/list answer POSTed to b reaches a."""
    reps, _ = replicas
    rr = RoundRobin(c, first="/b")
    rr.initialize({"roots": {}})  # initialize -> b, initialized -> a
    assert rr.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 200  # -> b
    with rr.stream(_call(2, "roots")) as r:  # -> a
        messages = _messages(r.iter_lines())
        ask = next(messages)
        assert ask["method"] == "roots/list"
        assert isinstance(ask["id"], int) and 2**20 <= ask["id"] < 2**53  # a's own block, not 1, 2, ...
        answer = {"roots": [{"uri": "file:///one", "name": "one"}, {"uri": "file:///two"}]}
        assert rr.answer(ask["id"], answer).status_code == 202  # -> b
        final = next(messages)
        assert final["id"] == 2 and final["result"]["content"][0]["text"] == "file:///one,file:///two"
    assert rr.trail == ["/b", "/a", "/b", "/a", "/b"]
    assert wait_for(lambda: reps.listeners(rr.sid) == 0)


def test_a_cancellation_posted_to_b_stops_the_tool_running_on_a(replicas: tuple[Replicas, str], c: httpx.Client) -> None:
    """U-04, T-HTTP-18, DESIGN.md §4: strictly alternating POSTs: the tool call lands on a, its
    ``notifications/cancelled`` on b. The handler on a sees CancelledError, the stream on a ends without
    a response for the request, and a listens on the inbox only while the tool runs."""
    reps, _ = replicas
    rr = RoundRobin(c)
    rr.initialize({})  # a, b
    sid = rr.sid
    with rr.stream(_call(3, "slow", {"tag": "a-cancelled-via-b"}, progressToken="p")) as r:  # a
        messages = _messages(r.iter_lines())
        assert next(messages)["method"] == "notifications/progress"
        assert list(reps.a.sessions._sessions[sid].tasks) == [3] and reps.listeners(sid) == 1
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3, "reason": "changed my mind"}}
        assert rr.post(note).status_code == 202  # b
        assert list(messages) == []  # no response for a cancelled request (U-04)
    assert rr.trail == ["/a", "/b", "/a", "/b"]
    assert wait_for(lambda: OUTCOMES.get("a-cancelled-via-b") == "cancelled")
    assert wait_for(lambda: reps.listeners(sid) == 0)
    assert 3 not in reps.a.sessions._sessions[sid].conn.inflight
    assert rr.post({"jsonrpc": "2.0", "id": 4, "method": "ping"}).status_code == 200  # a: the session goes on


def test_a_cancellation_reaches_a_tool_on_the_replica_that_restored_the_session(replicas: tuple[Replicas, str], c: httpx.Client) -> None:
    """U-04, DESIGN.md §4: the other direction: the tool runs on b (which restored the session), the
    cancellation is POSTed to a (which created it). A cancellation of a request nobody runs is
    ignored (202, nothing else happens)."""
    reps, _ = replicas
    rr = RoundRobin(c)
    rr.initialize({})  # a, b
    sid = rr.sid
    nobody = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}}
    assert rr.post(nobody).status_code == 202  # a
    with rr.stream(_call(7, "slow", {"tag": "b-cancelled-via-a"}, progressToken="p")) as r:  # b
        messages = _messages(r.iter_lines())
        assert next(messages)["method"] == "notifications/progress"
        assert list(reps.b.sessions._sessions[sid].tasks) == [7]
        assert rr.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}).status_code == 202  # a
        assert list(messages) == []
    assert rr.trail == ["/a", "/b", "/a", "/b", "/a"]
    assert wait_for(lambda: OUTCOMES.get("b-cancelled-via-a") == "cancelled")
    assert wait_for(lambda: reps.listeners(sid) == 0)


def test_delete_on_another_replica_ends_the_waiting_tool_and_leaves_no_subscription(replicas: tuple[Replicas, str], c: httpx.Client) -> None:
    """T-HTTP-42, T-HTTP-39, DESIGN.md §4: DELETE on b while a tool on a waits for an answer: the tool's
    wait ends (session closed), a drops its live part, nobody listens on the inbox any more, and
    both replicas answer 404 afterwards."""
    reps, _ = replicas
    rr = RoundRobin(c)
    rr.initialize({"elicitation": {}})  # a, b
    sid = rr.sid
    with rr.stream(_call(5, "wait_forever", {"tag": "deleted"})) as r:  # a
        messages = _messages(r.iter_lines())
        assert next(messages)["method"] == "elicitation/create"
        assert reps.listeners(sid) == 1
        assert rr.delete().status_code == 204  # b
        _assert_ended(list(messages))
    assert wait_for(lambda: OUTCOMES.get("deleted") in ("session closed", "cancelled"))
    assert wait_for(lambda: reps.listeners(sid) == 0 and _session_keys(reps.bus) == 0)
    assert sid not in reps.a.sessions and sid not in reps.b.sessions
    assert server.hub.peer(sid) is None
    for path in ("/a", "/b"):
        assert c.post(path, headers=rr.headers, json={"jsonrpc": "2.0", "id": 6, "method": "ping"}).status_code == 404


def test_delete_on_the_replica_running_the_tool_leaves_no_subscription(replicas: tuple[Replicas, str], c: httpx.Client) -> None:
    """T-HTTP-42, T-HTTP-39, DESIGN.md §4: DELETE on a itself while its tool waits, after b restored the
    session: no subscription is left; b's idle live part answers 404 at its next request."""
    reps, _ = replicas
    rr = RoundRobin(c)
    rr.initialize({"elicitation": {}})  # a, b
    sid = rr.sid
    assert sid in reps.b.sessions
    with rr.stream(_call(5, "wait_forever", {"tag": "deleted-here"})) as r:  # a
        messages = _messages(r.iter_lines())
        assert next(messages)["method"] == "elicitation/create"
        assert c.delete("/a", headers=rr.headers).status_code == 204
        _assert_ended(list(messages))
    assert wait_for(lambda: OUTCOMES.get("deleted-here") in ("session closed", "cancelled"))
    assert wait_for(lambda: reps.listeners(sid) == 0 and _session_keys(reps.bus) == 0)
    assert sid not in reps.a.sessions
    # b's live part was idle: it held no subscription, and the DELETE's announcement drops it at once.
    assert wait_for(lambda: sid not in reps.b.sessions)
    assert c.post("/b", headers=rr.headers, json={"jsonrpc": "2.0", "id": 6, "method": "ping"}).status_code == 404
    assert sid not in reps.b.sessions


# -- the same without HTTP: two registries, one Bus ------------------------------------------------


class _Pair:
    """Two live-session registries sharing records and a Bus (no HTTP, one event loop)."""

    def __init__(self) -> None:
        self.records = MemorySessionStore()
        self.bus = MemoryBus()
        self.a = LiveSessions(records=self.records, bus=self.bus, restore=self._restore)
        self.b = LiveSessions(records=self.records, bus=self.bus, restore=self._restore)

    @staticmethod
    def _restore(record: SessionRecord) -> ServerConnection:
        assert record.version is not None
        return server.open_connection(assume_initialized=REVISIONS[record.version])


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_answers_and_cancellations_cross_the_bus_exactly_once() -> None:
    """DESIGN.md §4, J-04, U-04, U-05 at the session layer: ids are unique per replica; an answer that
    reaches the other replica resolves the future once; own late ids are dropped without a publish;
    a cancellation reaches the handler task; listening starts and stops with the work."""
    pair = _Pair()
    conn = server.open_connection()
    conn.receive_obj({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": LEGACY, "capabilities": {}}})
    a = await pair.a.create(conn)
    assert a is not None
    b = await pair.b.get(a.id)
    assert b is not None and b is not a
    assert isinstance(a.conn.outgoing, SessionRequests) and isinstance(b.conn.outgoing, SessionRequests)

    ids_a = [a.conn.start_request("roots/list") for _ in range(2)]
    id_b = b.conn.start_request("roots/list")
    assert ids_a == [1, 2] and id_b >= 2**20 and b.conn.outgoing.ours(id_b) and not a.conn.outgoing.ours(id_b)
    fut = a.expect(ids_a[0])
    await _settle()
    assert a.listening and pair.bus.subscribers(inbox_key(a.id)) == 1 and not b.listening

    # The answer reaches b: the core hands it up as asked elsewhere, b publishes, a resolves.
    received = b.conn.receive_obj({"jsonrpc": "2.0", "id": ids_a[0], "result": {"roots": []}})
    assert [type(ev) for ev in received.events] == [ResponseReceived]
    ev = received.events[0]
    assert isinstance(ev, ResponseReceived) and ev.method == ASKED_ELSEWHERE
    b.deliver(ev)
    b.deliver(ev)  # the same answer twice, and once more on a
    assert await asyncio.wait_for(fut, 2) == {"roots": []}
    assert a.conn.receive_obj({"jsonrpc": "2.0", "id": ids_a[0], "result": {"roots": ["late"]}}).events == []
    await _settle()
    assert fut.result() == {"roots": []} and not a.waiters
    assert not a.listening and pair.bus.subscribers(inbox_key(a.id)) == 0

    # b's own id, no longer pending there: late, dropped on b without a publish.
    b.conn.outgoing.forget(id_b)
    assert b.conn.receive_obj({"jsonrpc": "2.0", "id": id_b, "result": {}}).events == []

    # An error answer crosses too.
    err = a.expect(ids_a[1])
    (ev,) = b.conn.receive_obj({"jsonrpc": "2.0", "id": ids_a[1], "error": {"code": -32602, "message": "no"}}).events
    assert isinstance(ev, ResponseReceived)
    b.deliver(ev)
    with pytest.raises(Exception, match="no"):
        await asyncio.wait_for(err, 2)

    # A cancellation for a handler on a, received by b.
    started = asyncio.Event()

    async def handler() -> None:
        started.set()
        await asyncio.sleep(30)

    assert len(a.conn.receive_obj({"jsonrpc": "2.0", "id": "r1", "method": "tools/list"}).events) == 1  # in flight on a
    task = asyncio.get_running_loop().create_task(handler())
    a.track("r1", task)
    await started.wait()
    assert a.listening
    received = b.conn.receive_obj({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "r1"}})
    (cancel,) = received.events
    assert isinstance(cancel, CancelRequested) and cancel.request_id == "r1"
    assert "r1" not in b.conn.inflight  # nothing runs on b: not recorded there
    b.cancel(cancel.request_id)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert a.conn.finish("r1") is False  # marked cancelled: nothing is sent for it (U-04)
    await _settle()
    assert not a.listening and _session_keys(pair.bus) == 0

    # Shutdown of both registries leaves nothing behind.
    await pair.a.aclose()
    await pair.b.aclose()
    assert _session_keys(pair.bus) == 0 and not pair.a.background and not pair.b.background


async def test_a_session_ended_elsewhere_closes_the_busy_live_part() -> None:
    """T-HTTP-42, DESIGN.md §4: DELETE through b ends a's busy live part at once (waiters fail with
    ConnectionClosedError, handlers are cancelled, listening stops); an idle one is found gone later."""
    pair = _Pair()
    conn = server.open_connection()
    conn.receive_obj({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": LEGACY, "capabilities": {}}})
    a = await pair.a.create(conn)
    assert a is not None
    fut = a.expect(a.conn.start_request("roots/list"))
    task = asyncio.get_running_loop().create_task(asyncio.sleep(30))
    a.track("t", task)
    await _settle()
    assert await pair.b.delete(a.id) is None  # not live on b: the record goes, a is told
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(fut, 2)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert a.closed and a.id not in pair.a
    await _settle()
    assert _session_keys(pair.bus) == 0
