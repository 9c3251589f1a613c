"""The HTTP client's compatibility paths, against real servers on loopback.

- falling back to the 2024-11-05 HTTP+SSE transport (T-BC-02..05, T-SSE-03/06), against our own
  server's ``/sse`` and against scripted servers for the status matrix and the odd answers;
- replacing a session the server forgot, once (T-HTTP-40);
- ``Mcp-Param-*`` headers from ``x-mcp-header`` and dropping invalid tools (T-H26-19/20);
- ``headers=`` and ``httpx_client=`` pass-through.

Each test names the requirement IDs (spec/DIGEST.md §6, §7, §8, §9) it checks. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from anyport import Client, HeaderMismatchError, InvalidRequestError, NotAnSSEEndpointError, SessionTerminatedError
from anyport.protocol import _param_headers
from anyport.transports.http import create_app
from anyport.transports.http.client import HTTPRefusal
from anyport.transports.http.sse_client import resolve_endpoint
from tests.interop._report import check_report, fixture_client, run_report
from tests.interop.fixture_server import app as fixture_app
from tests.transports._http_helpers import running, scripted_request

INIT_RESULT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {"tools": {}},
    "serverInfo": {"name": "scripted", "version": "0"},
}
DISCOVER_RESULT = {
    "supportedVersions": ["2026-07-28"],
    "capabilities": {"tools": {}},
    "serverInfo": {"name": "scripted", "version": "0"},
}
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _result(id_: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "result": result}


def _text(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}]}


async def _reply(send: Send, status: int, headers: list[tuple[str, str]], *chunks: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers]})
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _json(send: Send, status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> None:
    await _reply(send, status, [("content-type", "application/json"), *(headers or [])], json.dumps(body).encode())


class Recorder:
    """A raw ASGI app: records (method, path, headers, body) and lets ``route`` answer.

    It also serves a minimal HTTP+SSE server at ``GET /events`` + ``POST /messages`` (T-SSE-01..04):
    ``initialize`` and ``tools/list`` are answered on the event stream.
    """

    def __init__(self, route: Callable[[Recorder, str, str, dict[str, str], Any, Send], Awaitable[bool]] | None = None,
                 *, endpoint: str = "/messages?session_id=abc") -> None:
        self.route = route
        self.endpoint = endpoint
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.outbox: asyncio.Queue[dict[str, Any]] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        request = await scripted_request(scope, receive, send)
        if request is None:
            return
        body, headers = request
        msg = json.loads(body) if body else None
        method, path = scope["method"], scope["path"]
        self.requests.append((method, path, headers, msg))
        if self.route is not None and await self.route(self, method, path, headers, msg, send):
            return
        if method == "GET" and path == "/events":
            await self.sse_stream(receive, send)
        elif method == "POST" and path == "/messages":
            assert parse_qs(scope["query_string"].decode()) == {"session_id": ["abc"]}
            await self.sse_post(msg, send)
        else:
            await _json(send, 405, {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Method Not Allowed"}})

    async def sse_stream(self, receive: Any, send: Send) -> None:
        self.outbox = asyncio.Queue()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        await send({"type": "http.response.body", "body": f"event: endpoint\ndata: {self.endpoint}\n\n".encode(),
                    "more_body": True})
        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        gone = asyncio.ensure_future(disconnected())  # when the client closes the stream
        try:
            while not gone.done():
                getter = asyncio.ensure_future(self.outbox.get())
                await asyncio.wait({getter, gone}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                data = json.dumps(getter.result())
                await send({"type": "http.response.body", "body": f"event: message\ndata: {data}\n\n".encode(),
                            "more_body": True})
        finally:
            gone.cancel()
        await send({"type": "http.response.body", "body": b""})

    async def sse_post(self, msg: Any, send: Send) -> None:
        assert self.outbox is not None
        if isinstance(msg, dict) and "id" in msg and "method" in msg:
            if msg["method"] == "initialize":
                self.outbox.put_nowait(_result(msg["id"], {**INIT_RESULT, "protocolVersion": msg["params"]["protocolVersion"]}))
            elif msg["method"] == "tools/list":
                self.outbox.put_nowait(_result(msg["id"], {"tools": [{"name": "over-sse", "inputSchema": {"type": "object"}}]}))
            else:
                self.outbox.put_nowait({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "no"}})
        await _reply(send, 202, [("content-type", "text/plain")], b"Accepted")

    def posts(self, path: str | None = None) -> list[tuple[str, dict[str, str], Any]]:
        return [(p, h, b) for m, p, h, b in self.requests if m == "POST" and (path is None or p == path)]

    def methods(self, path: str) -> list[str]:
        return [b["method"] for _, h, b in self.posts(path) if isinstance(b, dict) and "method" in b]


# -- HTTP+SSE fallback against our own server (T-BC-01..03, T-SSE-*) ------------------------------------


class PathLog:
    """ASGI middleware recording ``(method, path)`` of every HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


async def test_fixture_report_over_our_legacy_sse_after_falling_back() -> None:
    """T-BC-02/03/05: the initialize POST to the SSE URL gets 405 (no modern error body), so the client GETs
    the same URL, reads the endpoint event and runs every fixture step over HTTP+SSE (T-SSE-03/04)."""
    app = PathLog(create_app(fixture_app, sse_path="/events", messages_path="/messages/"))
    with running(app) as base:
        client, logs = fixture_client(f"{base}/events", "auto")
        report = await run_report(client, logs)
        assert client.transport == "sse"
    assert report["read_missing"]["errorCode"] == -32002
    check_report(report, era="legacy", version="2025-11-25")
    first = app.seen[:4]
    assert first == [("POST", "/events"), ("POST", "/events"), ("GET", "/events"), ("POST", "/messages/")], first


async def test_a_url_ending_in_sse_goes_to_http_sse_first() -> None:
    """T-BC-02 (hint): ``.../sse`` is tried with GET first; no POST to it at all."""
    app = PathLog(create_app(fixture_app))
    with running(app) as base:
        async with Client(f"{base}/sse", timeout=10) as c:
            assert c.transport == "sse" and c.era == "legacy"
            assert (await c.call_tool("echo", {"text": "sse"})).text == "sse"
    assert app.seen[0] == ("GET", "/sse")
    assert ("POST", "/sse") not in app.seen


async def test_a_url_ending_in_sse_that_is_not_http_sse_uses_streamable_http() -> None:
    app = create_app(fixture_app, path="/sse", legacy_sse=False)
    with running(app) as base:
        async with Client(f"{base}/sse", timeout=10) as c:
            assert c.transport == "streamable-http" and c.era == "modern"


async def test_explicit_transports_do_not_fall_back() -> None:
    """transport='sse' on a Streamable HTTP endpoint, and 'streamable-http' on an HTTP+SSE one, fail cleanly."""
    with running(create_app(fixture_app)) as base:
        with pytest.raises(NotAnSSEEndpointError, match=r"not an HTTP\+SSE event stream"):
            async with Client(f"{base}/mcp", transport="sse", timeout=10):
                pass
        with pytest.raises(InvalidRequestError, match="Method Not Allowed"):
            async with Client(f"{base}/sse", transport="streamable-http", era="legacy", timeout=10):
                pass
        async with Client(f"{base}/mcp", transport="streamable-http", timeout=10) as c:
            assert c.transport == "streamable-http"
    with pytest.raises(ValueError, match="transport"):
        Client("http://127.0.0.1:1/mcp", transport="websocket")
    with pytest.raises(ValueError, match="2026-07-28"):
        Client("http://127.0.0.1:1/sse", transport="sse", era="modern")


# -- the fallback status matrix (T-BC-03, T-BC-05) ------------------------------------------------------


def _refuse_with(status: int, body: Any) -> Callable[..., Awaitable[bool]]:
    async def route(rec: Recorder, method: str, path: str, headers: dict[str, str], msg: Any, send: Send) -> bool:
        if method == "POST" and path == "/events":
            if body is None:
                await _reply(send, status, [("content-type", "text/plain")], b"nope")
            else:
                await _json(send, status, body)
            return True
        return False

    return route


@pytest.mark.parametrize(
    ("version", "status", "body", "falls_back"),
    [
        ("2025-11-25", 400, None, True),
        ("2025-11-25", 404, None, True),
        ("2025-11-25", 405, {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "x"}}, True),
        ("2025-11-25", 401, None, False),  # authentication, not an old transport
        ("2025-11-25", 403, None, False),
        ("2025-11-25", 406, None, False),  # 2025-11-25 narrowed the trigger to 400/404/405
        ("2025-11-25", 500, None, False),
        ("2025-11-25", 400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32022, "message": "x"}}, False),
        ("2025-06-18", 406, None, True),  # before 2025-11-25: any 4xx
        ("2025-03-26", 415, None, True),
        ("2025-03-26", 401, None, False),
        ("2025-03-26", 403, None, False),
    ],
)
async def test_which_refusals_fall_back_to_http_sse(version: str, status: int, body: Any, falls_back: bool) -> None:
    rec = Recorder(_refuse_with(status, body))
    with running(rec) as base:
        client = Client(f"{base}/events", era="legacy", protocol_version=version, timeout=5, probe_timeout=5)
        if falls_back:
            async with client as c:
                assert c.transport == "sse" and c.protocol_version == version
                assert [t.name for t in await c.list_tools()] == ["over-sse"]
            assert rec.methods("/messages") == ["initialize", "notifications/initialized", "tools/list"]
        else:
            with pytest.raises(Exception) as info:
                await client.connect()
            assert str(status) in str(info.value) or body is not None
            assert not [r for r in rec.requests if r[0] == "GET"]


def test_refusal_rules_by_revision() -> None:
    assert HTTPRefusal(400).suggests_sse("2025-11-25")
    assert not HTTPRefusal(406).suggests_sse("2025-11-25")
    assert HTTPRefusal(406).suggests_sse("2025-03-26")
    assert not HTTPRefusal(401).suggests_sse("2024-11-05")
    assert not HTTPRefusal(404, modern_error=True).suggests_sse("2025-11-25")
    assert HTTPRefusal(200, endpoint_event=True).suggests_sse("2025-11-25")


async def test_auto_era_probes_then_falls_back_to_http_sse() -> None:
    """T-BC-05: discover is refused (405), initialize is refused (405): then HTTP+SSE."""
    rec = Recorder()
    with running(rec) as base:
        async with Client(f"{base}/events", timeout=5) as c:
            assert c.transport == "sse" and c.era == "legacy"
    posted = [b["method"] for p, _, b in rec.posts("/events")]
    assert posted == ["server/discover", "initialize"]


async def test_a_post_answered_with_an_endpoint_event_falls_back() -> None:
    """T-BC-04: a server that answers the POST with its SSE stream (endpoint event first) is an HTTP+SSE server."""

    async def route(rec: Recorder, method: str, path: str, headers: dict[str, str], msg: Any, send: Send) -> bool:
        if method == "POST" and path == "/events":
            await _reply(send, 200, [("content-type", "text/event-stream")], b"event: endpoint\ndata: /messages?session_id=abc\n\n")
            return True
        return False

    rec = Recorder(route)
    with running(rec) as base:
        async with Client(f"{base}/events", era="legacy", timeout=5) as c:
            assert c.transport == "sse"
            assert [t.name for t in await c.list_tools()] == ["over-sse"]


async def test_no_endpoint_event_keeps_the_first_error_and_is_bounded() -> None:
    """A GET that opens an event stream but never names an endpoint: the wait is bounded by probe_timeout."""

    async def route(rec: Recorder, method: str, path: str, headers: dict[str, str], msg: Any, send: Send) -> bool:
        if method == "POST" and path == "/events":
            await _reply(send, 404, [], b"")
            return True
        if method == "GET" and path == "/events":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
            await send({"type": "http.response.body", "body": b": hello\n\n", "more_body": True})
            await asyncio.sleep(3)
            await send({"type": "http.response.body", "body": b""})
            return True
        return False

    with running(Recorder(route)) as base:
        started = time.monotonic()
        with pytest.raises(InvalidRequestError, match="404"):
            async with Client(f"{base}/events", era="legacy", timeout=5, probe_timeout=0.5):
                pass
        assert time.monotonic() - started < 3
        with pytest.raises(NotAnSSEEndpointError, match="no endpoint event"):
            async with Client(f"{base}/events", transport="sse", timeout=5, probe_timeout=0.5):
                pass


async def test_a_cross_origin_endpoint_is_refused() -> None:
    """T-SSE-06: the endpoint is resolved against the SSE URL; another origin is never POSTed to."""
    rec = Recorder(endpoint="http://example.invalid/messages?session_id=abc")
    with running(rec) as base:
        with pytest.raises(NotAnSSEEndpointError, match="another origin"):
            async with Client(f"{base}/events", transport="sse", timeout=5):
                pass
    assert not rec.posts()
    assert resolve_endpoint("http://h:1/a/sse", "/messages/?session_id=x") == "http://h:1/messages/?session_id=x"
    assert resolve_endpoint("http://h:1/a/sse", "msg?id=1") == "http://h:1/a/msg?id=1"
    assert resolve_endpoint("http://h/sse", "http://H:80/m") == "http://H:80/m"
    for bad in ("https://h:1/m", "http://h:2/m", "//other:1/m"):
        with pytest.raises(NotAnSSEEndpointError):
            resolve_endpoint("http://h:1/sse", bad)


async def test_a_refused_sse_post_answers_the_request_instead_of_hanging() -> None:
    async def route(rec: Recorder, method: str, path: str, headers: dict[str, str], msg: Any, send: Send) -> bool:
        if method == "POST" and path == "/messages" and isinstance(msg, dict) and msg.get("method") == "tools/list":
            await _reply(send, 400, [("content-type", "text/plain")], b"bad")
            return True
        return False

    with running(Recorder(route)) as base:
        async with Client(f"{base}/events", transport="sse", timeout=5) as c:
            started = time.monotonic()
            with pytest.raises(InvalidRequestError, match="HTTP 400"):
                await c.list_tools()
            assert time.monotonic() - started < 2


# -- a forgotten session (T-HTTP-39/40) ---------------------------------------------------------------


def _legacy_route(forget: Callable[[str, dict[str, Any]], bool]) -> Callable[..., Awaitable[bool]]:
    """A legacy Streamable HTTP server minting sess-1, sess-2, ...; ``forget`` decides which requests get 404."""
    count = [0]

    async def route(rec: Recorder, method: str, path: str, headers: dict[str, str], msg: Any, send: Send) -> bool:
        if path != "/mcp":
            return False
        if method == "DELETE":
            await _reply(send, 204, [])
            return True
        if not isinstance(msg, dict):
            return False
        sid = headers.get("mcp-session-id")
        if msg.get("method") == "initialize":
            assert sid is None  # T-HTTP-40: a new handshake never carries the old id
            count[0] += 1
            await _json(send, 200, _result(msg["id"], INIT_RESULT), [("mcp-session-id", f"sess-{count[0]}")])
            return True
        if sid is not None and forget(sid, msg):
            await _reply(send, 404, [("content-type", "text/plain")], b"no such session")
            return True
        if "id" not in msg:
            await _reply(send, 202, [])
            return True
        await _json(send, 200, _result(msg["id"], _text(f"{msg['method']} on {sid}")))
        return True

    return route


async def test_a_forgotten_session_is_replaced_once_for_all_waiting_requests() -> None:
    """T-HTTP-40: several requests hit the 404 together; one new initialize, then each is re-sent once."""
    def forget(sid: str, msg: dict[str, Any]) -> bool:
        return sid == "sess-1" and msg.get("method") == "tools/call"

    rec = Recorder(_legacy_route(forget))
    with running(rec) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10, log_level="debug") as c:
            results = await asyncio.wait_for(asyncio.gather(*(c.call_tool("t", {"i": i}) for i in range(3))), 10)
            assert [r.text for r in results] == ["tools/call on sess-2"] * 3
    assert rec.methods("/mcp").count("initialize") == 2
    # the new session gets the same set-up as the first: notifications/initialized and the log level
    assert rec.methods("/mcp").count("logging/setLevel") == 2
    deletes = [h["mcp-session-id"] for m, p, h, _ in rec.requests if m == "DELETE"]
    assert deletes == ["sess-2"]


async def test_a_session_forgotten_again_surfaces_the_error() -> None:
    """T-HTTP-40: the re-sent request is answered with 404 again: the caller gets SessionTerminatedError."""
    rec = Recorder(_legacy_route(lambda sid, msg: msg.get("method") == "tools/call"))
    with running(rec) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10) as c:
            with pytest.raises(SessionTerminatedError):
                await c.call_tool("t", {})
    assert rec.methods("/mcp").count("initialize") == 2
    assert rec.methods("/mcp").count("tools/call") == 2


# -- Mcp-Param-* (T-H26-19/20) --------------------------------------------------------------------


GOOD_TOOL = {
    "name": "deploy",
    "inputSchema": {
        "type": "object",
        "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "count": {"type": "integer", "x-mcp-header": "Count"},
            "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"},
            "target": {"type": "object", "properties": {"zone": {"type": "string", "x-mcp-header": "Zone"}}},
            "note": {"type": "string"},
        },
    },
}


def _bad(name: str, prop: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "inputSchema": {"type": "object", "properties": {"p": prop}, **(extra or {})}}


BAD_TOOLS = [
    _bad("number-type", {"type": "number", "x-mcp-header": "N"}),
    _bad("object-type", {"type": "object", "x-mcp-header": "O"}),
    _bad("no-type", {"x-mcp-header": "T"}),
    _bad("empty-name", {"type": "string", "x-mcp-header": ""}),
    _bad("space-in-name", {"type": "string", "x-mcp-header": "A B"}),
    _bad("newline-in-name", {"type": "string", "x-mcp-header": "A\r\nB"}),
    _bad("not-a-string", {"type": "string", "x-mcp-header": 7}),
    _bad("under-items", {"type": "array", "items": {"type": "string", "x-mcp-header": "I"}}),
    _bad("under-anyof", {"anyOf": [{"type": "string", "x-mcp-header": "A"}]}),
    _bad("under-defs", {"$ref": "#/$defs/x"}, {"$defs": {"x": {"type": "string", "x-mcp-header": "D"}}}),
    {"name": "duplicate", "inputSchema": {"type": "object", "properties": {
        "a": {"type": "string", "x-mcp-header": "Same"}, "b": {"type": "string", "x-mcp-header": "SAME"}}}},
    {"name": "on-root", "inputSchema": {"type": "object", "x-mcp-header": "Root"}},
]


def test_scan_and_values() -> None:
    decls = _param_headers.scan_param_headers(GOOD_TOOL["inputSchema"])
    assert not isinstance(decls, str)
    assert [(d.path, d.name) for d in decls] == [
        (("region",), "Region"), (("count",), "Count"), (("dry",), "Dry-Run"), (("target", "zone"), "Zone")]
    for tool in BAD_TOOLS:
        assert isinstance(_param_headers.scan_param_headers(tool["inputSchema"]), str), tool["name"]
    assert _param_headers.scan_param_headers(None) == [] and _param_headers.scan_param_headers({"type": "object"}) == []
    headers = _param_headers.header_values(decls, {"region": "eu-west-1", "count": 3, "dry": False, "target": {"zone": "b"}})
    assert headers == {"mcp-param-region": "eu-west-1", "mcp-param-count": "3", "mcp-param-dry-run": "false", "mcp-param-zone": "b"}
    assert _param_headers.header_values(decls, {"region": None, "count": 2**53}) == {}  # null / absent / unsafe integer
    enc = _param_headers.header_values(decls, {"region": " Zürich"})["mcp-param-region"]
    assert enc.startswith("=?base64?") and base64.b64decode(enc[9:-2]).decode() == " Zürich"
    assert _param_headers.header_values(decls, {"region": ""})["mcp-param-region"] == "=?base64??="


def _modern_route(tools: Callable[[], list[dict[str, Any]]], on_call: Callable[[dict[str, str], Any], Any]) -> Callable[..., Awaitable[bool]]:
    async def route(rec: Recorder, method: str, path: str, headers: dict[str, str], msg: Any, send: Send) -> bool:
        if path != "/mcp" or not isinstance(msg, dict):
            return False
        m = msg.get("method")
        if m == "server/discover":
            await _json(send, 200, _result(msg["id"], DISCOVER_RESULT))
        elif m == "tools/list":
            await _json(send, 200, _result(msg["id"], {"tools": tools()}))
        elif m == "tools/call":
            status, body = on_call(headers, msg)
            await _json(send, status, body)
        else:
            return False
        return True

    return route


async def test_param_headers_are_sent_and_invalid_tools_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """T-H26-19: Mcp-Param-<Name> for each annotated argument present; T-H26-20: invalid tools dropped + warning."""
    seen: list[dict[str, str]] = []

    def on_call(headers: dict[str, str], msg: Any) -> Any:
        seen.append(headers)
        return 200, _result(msg["id"], _text("ok"))

    rec = Recorder(_modern_route(lambda: [GOOD_TOOL, *BAD_TOOLS, {"name": "plain"}], on_call))
    with caplog.at_level(logging.WARNING, logger="anyport.http.client"), running(rec) as base:
        async with Client(f"{base}/mcp", era="modern", timeout=10) as c:
            assert [t.name for t in await c.list_tools()] == ["deploy", "plain"]
            await c.call_tool("deploy", {"region": "eu-west-1", "count": 3, "dry": True, "target": {"zone": "b"}, "note": "n"})
            await c.call_tool("deploy", {"region": "日本", "count": None})
            await c.call_tool("plain", {"region": "x"})
    dropped = {r.getMessage().split("'")[1] for r in caplog.records if "dropping tool" in r.getMessage()}
    assert dropped == {t["name"] for t in BAD_TOOLS}
    full, partial, plain = ({k: v for k, v in h.items() if k.startswith("mcp-param-")} for h in seen)
    assert full == {"mcp-param-region": "eu-west-1", "mcp-param-count": "3", "mcp-param-dry-run": "true", "mcp-param-zone": "b"}
    assert partial == {"mcp-param-region": "=?base64?" + base64.b64encode("日本".encode()).decode() + "?="}
    assert plain == {}


async def test_header_mismatch_refetches_tools_and_retries_once() -> None:
    """T-H26-19: on -32020 the client re-reads tools/list (the schema gained an x-mcp-header) and retries once."""
    schema = {"type": "object", "properties": {"region": {"type": "string"}}}
    mismatch = {"jsonrpc": "2.0", "id": None, "error": {"code": -32020, "message": "Mcp-Param-Region missing"}}

    def tools() -> list[dict[str, Any]]:
        return [{"name": "deploy", "inputSchema": schema}]

    insist = [False]

    def on_call(headers: dict[str, str], msg: Any) -> Any:
        if insist[0] or msg["params"]["arguments"].get("region") != headers.get("mcp-param-region"):
            return 400, {**mismatch, "id": msg["id"]}
        return 200, _result(msg["id"], _text("ok"))

    rec = Recorder(_modern_route(tools, on_call))
    with running(rec) as base:
        async with Client(f"{base}/mcp", era="modern", timeout=10) as c:
            await c.list_tools()
            schema["properties"]["region"]["x-mcp-header"] = "Region"  # the server changed the tool
            assert (await c.call_tool("deploy", {"region": "eu"})).text == "ok"
            assert rec.methods("/mcp")[-3:] == ["tools/call", "tools/list", "tools/call"]
            insist[0] = True
            rec.requests.clear()
            # The server keeps refusing: one re-read and one retry, then the error surfaces.
            with pytest.raises(HeaderMismatchError):
                await c.call_tool("deploy", {"region": "eu"})
            assert rec.methods("/mcp") == ["tools/call", "tools/list", "tools/call"]


# -- pass-through options ------------------------------------------------------------------------------


async def test_headers_and_httpx_client_are_passed_through() -> None:
    """Client(url, headers=..., httpx_client=...): every request carries the headers; the client is not closed."""
    rec = Recorder(_legacy_route(lambda sid, msg: False))
    sent: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(timeout=10, event_hooks={"request": [hook]}) as hc:
        with running(rec) as base:
            async with Client(f"{base}/mcp", era="legacy", headers={"Authorization": "Bearer t0k"}, httpx_client=hc, timeout=10) as c:
                await c.call_tool("t", {})
            assert not hc.is_closed
            async with Client(f"{base}/events", transport="sse", headers={"X-Trace": "1"}, httpx_client=hc, timeout=10) as c:
                await c.list_tools()
        assert not hc.is_closed
    assert len(sent) == len(rec.requests)
    mcp = [h for m, p, h, _ in rec.requests if p == "/mcp"]
    assert mcp and all(h.get("authorization") == "Bearer t0k" for h in mcp)
    assert {m for m, p, _, _ in rec.requests if p == "/mcp"} == {"POST", "DELETE"}
    sse = [h for m, p, h, _ in rec.requests if p in ("/events", "/messages")]
    assert sse and all(h.get("x-trace") == "1" for h in sse)
