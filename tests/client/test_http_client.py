"""The Streamable HTTP client transport: ``Client("http://...")`` against real servers on loopback.

- our ASGI app on uvicorn serving the interop fixture, legacy / modern / auto, SSE and JSON responses;
- the official Python SDK's Streamable HTTP server (``sdk_server.py --http PORT``), both eras;
- tiny scripted ASGI apps for what our server does not do (yet): resumption with GET +
  ``Last-Event-ID``, HTTP errors with and without a JSON-RPC body, 404 for an ended session;
- unit tests of the SSE parser (WHATWG) and the header value encoding.

Each test names the requirement IDs (spec/DIGEST.md §7, §8, §9, §21) it checks. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from anyport import (
    BrokenConnectionError,
    Client,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    JSONRPCError,
    RequestTimeoutError,
    Server,
)
from anyport.protocol import SSEEvent, SSEParser, decode_field_value, encode_field_value
from anyport.transports.http import create_app
from tests.interop._report import check_report, fixture_client, run_report
from tests.interop.fixture_server import app as fixture_app
from tests.transports._http_helpers import running, scripted_request

SDK_SERVER = Path(__file__).parent.parent / "interop" / "peers" / "python" / "sdk_server.py"

# -- SSE parser (DIGEST §21) ----------------------------------------------------------------------


def _parse(*chunks: bytes) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events, parser


def test_sse_multiline_data_and_event_types() -> None:
    events, _ = _parse(b"data: a\ndata:b\ndata:  c\n\nevent: endpoint\ndata: /x\n\n")
    assert events == [SSEEvent("message", "a\nb\n c", ""), SSEEvent("endpoint", "/x", "")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_sse_every_line_ending(eol: bytes) -> None:
    text = eol.join([b"id: 1", b"data: {\"a\":1}", b"", b": comment", b"data: two", b"", b""])
    events, parser = _parse(text)
    assert [e.data for e in events] == ['{"a":1}', "two"]
    assert parser.last_event_id == "1" and events[1].id == "1"  # the id persists until changed


def test_sse_split_anywhere_including_between_cr_and_lf() -> None:
    text = b"id: 7\r\ndata: hello\r\n\r\ndata: w\xc3\xb6rld\r\n\r\n"
    for cut in range(1, len(text)):
        events, parser = _parse(text[:cut], text[cut:])
        assert [e.data for e in events] == ["hello", "w\u00f6rld"], cut
        assert parser.last_event_id == "7"
    # byte by byte, too
    events, _ = _parse(*[text[i : i + 1] for i in range(len(text))])
    assert [e.data for e in events] == ["hello", "w\u00f6rld"]


def test_sse_comments_priming_events_and_ids() -> None:
    events, parser = _parse(b": keepalive\n\nid: p1\ndata:\n\n", b"id: p2\n\n")
    # A priming event (id, empty data) is dispatched with empty data; an id-only block is not
    # dispatched but still sets the last event id.
    assert events == [SSEEvent("message", "", "p1")]
    assert parser.last_event_id == "p2"
    events, parser = _parse(b"id: a\ndata: x\n\nid\ndata: y\n\n")  # an empty id resets it
    assert [(e.data, e.id) for e in events] == [("x", "a"), ("y", "")]
    events, parser = _parse(b"id: a\ndata: x\n\nid: b\x00c\ndata: y\n\n")  # an id with NUL is ignored
    assert events[1].id == "a"


def test_sse_retry_field_and_unknown_fields() -> None:
    _, parser = _parse(b"retry: 1500\nfoo: bar\ndata\n\n")
    assert parser.retry == 1500
    _, parser = _parse(b"retry: 15x\nretry: -1\nretry:\n\n")
    assert parser.retry is None
    events, _ = _parse(b"data\n\n")  # a field name without a colon has an empty value
    assert events == [SSEEvent("message", "", "")]


def test_sse_unterminated_event_at_eof_is_dropped_and_bom_skipped() -> None:
    events, _ = _parse(b"\xef\xbb\xbfdata: first\n\ndata: partial\n")
    assert [e.data for e in events] == ["first"]


# -- header values (T-H26-16) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("tools/call", True),
        ("get weather", True),
        ("", True),
        ("caf\u00e9", False),
        (" padded", False),
        ("padded\t", False),
        ("line\nbreak", False),
        ("=?base64?Zm9v?=", False),
        ("\u65e5\u672c", False),
    ],
)
def test_header_values_plain_or_sentinel_and_the_server_decodes_them(value: str, plain: bool) -> None:
    encoded = encode_field_value(value)
    assert (encoded == value) is plain
    if not plain:
        assert encoded.startswith("=?base64?") and encoded.endswith("?=")
    assert encoded.isascii()
    assert decode_field_value(encoded) == value


# -- our server on uvicorn: the fixture report (T-HTTP-*, T-H26-*) -----------------------------------


@pytest.mark.parametrize(
    ("era", "expected"), [("legacy", "legacy"), ("modern", "modern"), ("auto", "modern")]
)
async def test_fixture_report_against_our_server_over_sse(era: str, expected: str) -> None:
    """T-HTTP-05/10/14/15/37/43, T-H26-05/11/12/15, T-BC-05: every fixture step over HTTP in each era."""
    with running(create_app(fixture_app)) as base:
        client, logs = fixture_client(f"{base}/mcp", era)
        report = await run_report(client, logs)
    assert report["read_missing"]["errorCode"] == (-32002 if expected == "legacy" else -32602)
    check_report(report, era=expected, version="2025-11-25" if expected == "legacy" else "2026-07-28")


@pytest.mark.parametrize(
    ("era", "expected"), [("legacy", "legacy"), ("modern", "modern"), ("auto", "modern")]
)
async def test_fixture_report_against_our_server_with_json_responses(era: str, expected: str) -> None:
    """T-HTTP-10, T-H26-05: application/json answers. They carry no notifications, and (legacy) no
    server->client requests: those steps fail with a clear error instead of hanging."""
    with running(create_app(fixture_app, json_response=True)) as base:
        client, logs = fixture_client(f"{base}/mcp", era)
        started = time.monotonic()
        report = await run_report(client, logs)
        assert time.monotonic() - started < 30
    assert report.pop("progress") == {"text": "done 3", "events": []}  # progress notifications are dropped
    assert report.pop("log") == {"text": "logged", "messages": []}
    if expected == "legacy":
        for step in ("ask_name", "summarize", "list_roots"):
            error = report.pop(step)["error"]
            assert "InternalError" in error and "json_response" in error, error
    full = {
        "progress": {"text": "done 3", "events": [[1, 3], [2, 3], [3, 3]]},
        "log": {"text": "logged", "messages": [{"level": "warning", "logger": "fixture", "data": "hi"}]},
        "ask_name": {"text": "Hello, Ada"},
        "summarize": {"text": "sampled: hello"},
        "list_roots": {"text": "file:///tmp/fixture-root"},
    }
    check_report({**full, **report}, era=expected, version="2025-11-25" if expected == "legacy" else "2026-07-28")


async def test_session_is_deleted_on_close_and_a_forgotten_session_is_replaced() -> None:
    """T-HTTP-41: DELETE on close; T-HTTP-39/40: after a 404 for our session id the client initializes
    a new session (without the old id) and re-sends the failed request once."""
    http_app = create_app(fixture_app)
    with running(http_app) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10) as c:
            assert len(http_app.sessions) == 1  # type: ignore[arg-type]
            sid = next(iter(http_app.sessions._sessions))  # type: ignore[attr-defined]
            async with httpx.AsyncClient(timeout=5) as hc:  # the session ends (here: someone DELETEs it)
                r = await hc.delete(f"{base}/mcp", headers={"mcp-session-id": sid})
                assert r.status_code == 204
            assert (await c.call_tool("echo", {"text": "again"})).text == "again"
            assert len(http_app.sessions) == 1  # type: ignore[arg-type]
            assert next(iter(http_app.sessions._sessions)) != sid  # type: ignore[attr-defined]
            await c.list_tools()
        assert len(http_app.sessions) == 0  # type: ignore[arg-type]


async def test_connection_refused_is_a_broken_connection() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    started = time.monotonic()
    with pytest.raises(BrokenConnectionError, match="cannot connect"):
        async with Client(f"http://127.0.0.1:{port}/mcp", timeout=5):
            pass
    assert time.monotonic() - started < 5


OUTCOMES: dict[str, str] = {}
slow_app = Server("slow", version="1.0.0")


@slow_app.tool()
async def slow(tag: str) -> str:
    """Sleep; records whether it finished or was cancelled (on the server's thread)."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        OUTCOMES[tag] = "cancelled"
        raise
    return "slept"


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_a_timed_out_call_is_cancelled_on_the_server(era: str) -> None:
    """Legacy: POST notifications/cancelled (T-HTTP-18, L-16); 2026-07-28: close the response stream (T-H26-11)."""
    tag = f"timeout-{era}"
    with running(create_app(slow_app)) as base:
        async with Client(f"{base}/mcp", era=era, timeout=10) as c:
            with pytest.raises(RequestTimeoutError):
                await c.call_tool("slow", {"tag": tag}, timeout=0.5)
            for _ in range(250):  # let the loop run: closing the stream happens on it
                if OUTCOMES.get(tag) == "cancelled":
                    break
                await asyncio.sleep(0.02)
            assert OUTCOMES.get(tag) == "cancelled"
            assert (await c.list_tools())[0].name == "slow"


def test_import_anyport_does_not_import_httpx() -> None:
    code = "import anyport, sys; from anyport import Client; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


# -- the official Python SDK's Streamable HTTP server -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sdk_http_url() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SDK_SERVER), "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else "exited"
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the SDK server did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


@pytest.mark.interop
@pytest.mark.parametrize(("era", "expected"), [("legacy", "legacy"), ("modern", "modern"), ("auto", "modern")])
async def test_fixture_report_against_the_official_sdk_http_server(sdk_http_url: str, era: str, expected: str) -> None:
    """Our HTTP client against a Streamable HTTP server nobody here wrote (mcp 2.3.0), both eras."""
    client, logs = fixture_client(sdk_http_url, era)
    report = await run_report(client, logs)
    assert report["read_missing"]["errorCode"] in (-32002, -32602)  # F-RES-04: clients accept both
    check_report(report, era=expected, version="2025-11-25" if expected == "legacy" else "2026-07-28")


# -- scripted servers --------------------------------------------------------------------------------

Reply = tuple[int, list[tuple[str, str]], list[bytes]]
Handler = Callable[[str, dict[str, str], Any], Awaitable[Reply | None]]

SID = "sess-1"
INIT_RESULT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {"tools": {}},
    "serverInfo": {"name": "scripted", "version": "0"},
}


def _json(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    return status, [("content-type", "application/json"), *(headers or [])], [json.dumps(body).encode()]


def _sse(*events: bytes) -> Reply:
    return 200, [("content-type", "text/event-stream")], list(events)


def _result(id_: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "result": result}


def _text(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}]}


class Scripted:
    """A raw ASGI app: records every request and answers through ``handler`` (legacy basics built in)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[str, str], Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = await scripted_request(scope, receive, send)
        if request is None:
            return
        body, headers = request
        msg = json.loads(body) if body else None
        method: str = scope["method"]
        self.requests.append((method, headers, msg))
        reply = await self.handler(method, headers, msg)
        if reply is None:
            reply = self._basics(method, msg)
        status, hdrs, chunks = reply
        await send({"type": "http.response.start", "status": status, "headers": [(k.encode(), v.encode()) for k, v in hdrs]})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    def _basics(method: str, msg: Any) -> Reply:
        if method == "DELETE":
            return 204, [], []
        if method == "GET":
            return 405, [("allow", "POST, DELETE")], []
        if isinstance(msg, dict) and msg.get("method") == "initialize":
            return _json(200, _result(msg["id"], INIT_RESULT), [("mcp-session-id", SID)])
        if isinstance(msg, dict) and "id" not in msg:
            return 202, [], []
        if isinstance(msg, dict) and msg.get("method") == "tools/list":
            return _json(200, _result(msg["id"], {"tools": []}))
        return _json(200, {"jsonrpc": "2.0", "id": msg.get("id") if isinstance(msg, dict) else None,
                           "error": {"code": -32601, "message": "unscripted"}})

    def posts(self, method: str) -> list[dict[str, str]]:
        return [h for m, h, b in self.requests if m == "POST" and isinstance(b, dict) and b.get("method") == method]


async def _no_script(method: str, headers: dict[str, str], msg: Any) -> Reply | None:
    return None


async def test_legacy_headers_session_version_and_delete() -> None:
    """T-HTTP-06/37/43/41: Accept both types; session id and negotiated version after initialize; DELETE."""
    server = Scripted(_no_script)
    with running(server) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10) as c:
            await c.list_tools()
    init = server.posts("initialize")[0]
    assert init["accept"] == "application/json, text/event-stream" and init["content-type"] == "application/json"
    assert "mcp-session-id" not in init and "mcp-protocol-version" not in init
    for later in (server.posts("notifications/initialized")[0], server.posts("tools/list")[0]):
        assert later["mcp-session-id"] == SID and later["mcp-protocol-version"] == "2025-11-25"
        assert "mcp-method" not in later
    deletes = [h for m, h, _ in server.requests if m == "DELETE"]
    assert len(deletes) == 1 and deletes[0]["mcp-session-id"] == SID


async def test_modern_request_headers_with_base64_names() -> None:
    """T-H26-12/15/16: MCP-Protocol-Version = _meta version, Mcp-Method, Mcp-Name (sentinel-encoded)."""

    async def handler(method: str, headers: dict[str, str], msg: Any) -> Reply | None:
        if isinstance(msg, dict) and msg.get("method") == "server/discover":
            return _json(200, _result(msg["id"], {
                "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}},
                "serverInfo": {"name": "scripted", "version": "0"},
            }))
        if isinstance(msg, dict) and msg.get("method") == "tools/call":
            return _json(200, _result(msg["id"], _text("ok")))
        return None

    server = Scripted(handler)
    with running(server) as base:
        async with Client(f"{base}/mcp", era="modern", timeout=10) as c:
            assert (await c.call_tool("caf\u00e9 t\u00f6ol", {})).text == "ok"
            assert (await c.call_tool("plain", {})).text == "ok"
    discover = server.posts("server/discover")[0]
    assert discover["mcp-protocol-version"] == "2026-07-28" and discover["mcp-method"] == "server/discover"
    assert "mcp-name" not in discover
    fancy, plain = server.posts("tools/call")
    assert fancy["mcp-method"] == "tools/call" and fancy["mcp-protocol-version"] == "2026-07-28"
    assert fancy["mcp-name"].startswith("=?base64?") and decode_field_value(fancy["mcp-name"]) == "caf\u00e9 t\u00f6ol"
    assert plain["mcp-name"] == "plain"
    assert "mcp-session-id" not in fancy
    assert not [m for m, _, _ in server.requests if m == "DELETE"]  # no session: nothing to delete


async def test_dropped_sse_stream_is_resumed_with_get_and_last_event_id() -> None:
    """T-HTTP-30, T-HTTP-13: the stream breaks before the response; after retry ms the client GETs
    with Last-Event-ID and the response arrives on the resumed stream."""
    gets: list[tuple[float, dict[str, str]]] = []
    broke_at: list[float] = []
    call_ids: list[Any] = []

    async def handler(method: str, headers: dict[str, str], msg: Any) -> Reply | None:
        if isinstance(msg, dict) and msg.get("method") == "tools/call":
            call_ids.append(msg["id"])
            token = msg["params"]["_meta"]["progressToken"]
            progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": 1, "total": 2}}
            broke_at.append(time.monotonic())
            return _sse(b"retry: 300\nid: ev-1\ndata:\n\n", b"id: ev-2\ndata: " + json.dumps(progress).encode() + b"\n\n")
        if method == "GET":
            gets.append((time.monotonic(), headers))
            if len(gets) == 1:
                return _sse(b": nothing new yet\n\n")  # the resumed stream drops too: keep the same id
            return _sse(b"id: ev-3\ndata: " + json.dumps(_result(call_ids[0], _text("resumed"))).encode() + b"\n\n")
        return None

    server = Scripted(handler)
    events: list[float] = []
    with running(server) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10) as c:
            result = await c.call_tool("slow", {}, on_progress=lambda p, t, m: events.append(p))
    assert result.text == "resumed"
    assert events == [1]
    assert [h["last-event-id"] for _, h in gets] == ["ev-2", "ev-2"]
    for _, h in gets:
        assert h["accept"] == "text/event-stream" and h["mcp-session-id"] == SID
        assert h["mcp-protocol-version"] == "2025-11-25"
    assert gets[0][0] - broke_at[0] >= 0.29  # retry: 300 ms was honoured


async def test_resume_refused_with_405_is_an_error_not_a_hang() -> None:
    """T-HTTP-21/30: a server without a GET stream cannot resume; the call fails at once."""

    async def handler(method: str, headers: dict[str, str], msg: Any) -> Reply | None:
        if isinstance(msg, dict) and msg.get("method") == "tools/call":
            return _sse(b"retry: 10\nid: 1\ndata:\n\n")
        return None

    server = Scripted(handler)
    with running(server) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10) as c:
            started = time.monotonic()
            with pytest.raises(InternalError, match="405"):
                await c.call_tool("x", {})
            assert time.monotonic() - started < 5
            await c.list_tools()  # the connection is still usable


async def test_stream_ending_without_response_and_without_ids_is_an_error() -> None:
    async def handler(method: str, headers: dict[str, str], msg: Any) -> Reply | None:
        if isinstance(msg, dict) and msg.get("method") == "tools/call":
            return _sse(b": just a comment\n\n")
        return None

    server = Scripted(handler)
    with running(server) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10) as c:
            with pytest.raises(InternalError, match="ended the response stream"):
                await c.call_tool("x", {})
    assert not [m for m, _, _ in server.requests if m == "GET"]  # nothing to resume from


@pytest.mark.parametrize(
    ("reply", "exc_type", "match"),
    [
        # A JSON-RPC error body without an id (the server could not read it): raised as that error.
        (_json(400, {"jsonrpc": "2.0", "error": {"code": -32602, "message": "bad params"}}), InvalidParamsError, "bad params"),
        # No usable body: a made-up error carrying the status.
        ((500, [("content-type", "text/plain")], [b"kaputt"]), InternalError, "HTTP 500"),
        ((401, [], []), InvalidRequestError, "HTTP 401"),
        ((200, [("content-type", "text/html")], [b"<html>"]), InternalError, "unexpected response"),
        ((202, [], []), InternalError, "202"),
    ],
)
async def test_http_errors_reach_the_caller(reply: Reply, exc_type: type[JSONRPCError], match: str) -> None:
    async def handler(method: str, headers: dict[str, str], msg: Any) -> Reply | None:
        if isinstance(msg, dict) and msg.get("method") == "tools/call":
            return reply
        return None

    server = Scripted(handler)
    with running(server) as base:
        async with Client(f"{base}/mcp", era="legacy", timeout=10) as c:
            with pytest.raises(exc_type, match=match) as info:
                await c.call_tool("x", {})
            assert info.value.remote
            await c.list_tools()


async def test_auto_falls_back_to_initialize_on_a_legacy_only_server() -> None:
    """T-BC-05: the discover probe gets a 400 without a modern error body -> legacy initialize."""

    async def handler(method: str, headers: dict[str, str], msg: Any) -> Reply | None:
        if "mcp-session-id" not in headers and isinstance(msg, dict) and msg.get("method") != "initialize":
            return (400, [("content-type", "text/plain")], [b"Bad Request: no session"])
        return None

    server = Scripted(handler)
    with running(server) as base:
        async with Client(f"{base}/mcp", timeout=10) as c:
            assert c.era == "legacy" and c.protocol_version == "2025-11-25"
    assert [b["method"] for m, _, b in server.requests if m == "POST"][:2] == ["server/discover", "initialize"]


def test_a_non_http_string_target_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        asyncio.run(Client("ftp://example/mcp").connect())
