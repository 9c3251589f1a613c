"""The Streamable HTTP server transport against a real uvicorn on a loopback port, with httpx.

Each test names the requirement IDs (spec/DIGEST.md §7, §8, §15) it checks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from anyport import Context, Server
from anyport.transports.http import StreamableHTTPApp, create_app
from tests.interop._report import check_report
from tests.interop.fixture_server import app as fixture_app
from tests.transports._http_helpers import (
    MODERN,
    POST_HEADERS,
    client,
    initialize,
    modern_body,
    modern_headers,
    running,
    sse_messages,
    wait_for,
)

app = Server("http-test", version="1.0.0")
#: What happened to the ``slow`` handlers, by tag (written on the server's thread).
OUTCOMES: dict[str, str] = {}


@app.tool()
async def echo(text: str) -> str:
    """Echo."""
    return text


@app.tool()
async def chatty(ctx: Context) -> str:
    """A log message and a progress notification, then the result."""
    await ctx.info("hello log", logger="t")
    await ctx.report_progress(1, 2)
    await ctx.report_progress(2, 2)
    return "ok"


@app.tool()
async def ask(ctx: Context) -> str:
    """Elicit a name."""
    answer = await ctx.elicit("Name?", {"type": "object", "properties": {"name": {"type": "string"}}})
    name = answer.content.get("name") if isinstance(answer.content, dict) else None
    return f"{answer.action}:{name}"


@app.tool()
async def slow(seconds: float, tag: str, ctx: Context) -> str:
    """Report progress, then sleep; records whether it finished or was cancelled."""
    await ctx.report_progress(1, 2)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        OUTCOMES[tag] = "cancelled"
        raise
    OUTCOMES[tag] = "completed"
    return "slept"


def _tool_call(id_: int | str, name: str, arguments: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running(create_app(app)) as url:
        yield url


@pytest.fixture(scope="module")
def json_base() -> Iterator[str]:
    with running(create_app(app, json_response=True)) as url:
        yield url


@pytest.fixture(scope="module")
def stateless_base() -> Iterator[str]:
    with running(create_app(app, stateless=True)) as url:
        yield url


@pytest.fixture
def c(base: str) -> Iterator[httpx.Client]:
    with client(base) as cl:
        yield cl


# -- legacy sessions -----------------------------------------------------------------------------


def test_initialize_opens_a_session(c: httpx.Client) -> None:
    """T-HTTP-33, T-HTTP-34, T-HTTP-35, T-HTTP-48: the id comes on the initialize response only."""
    r = c.post("/mcp", headers=POST_HEADERS, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    })
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    sid = r.headers["mcp-session-id"]
    assert len(sid) >= 32 and all(0x21 <= ord(ch) <= 0x7E for ch in sid)
    assert r.json()["result"]["protocolVersion"] == "2025-06-18"
    h = {**POST_HEADERS, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}
    assert c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
    r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert r.status_code == 200
    assert "mcp-session-id" not in r.headers
    names = [t["name"] for t in sse_messages(r.text)[-1]["result"]["tools"]]
    assert names == ["echo", "chatty", "ask", "slow"]
    # A second initialize gets a different session.
    other = initialize(c)
    assert other["mcp-session-id"] != sid


def test_session_header_required_and_checked(c: httpx.Client) -> None:
    """T-HTTP-38: no session id -> 400; T-HTTP-39: an unknown id -> 404."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    r = c.post("/mcp", headers=POST_HEADERS, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32600 and "id" not in r.json()
    r = c.post("/mcp", headers={**POST_HEADERS, "mcp-session-id": "no-such-session"}, json=body)
    assert r.status_code == 404
    # Notifications need a session too.
    r = c.post("/mcp", headers=POST_HEADERS, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert r.status_code == 400


def test_notifications_and_responses_get_202_empty(c: httpx.Client) -> None:
    """T-HTTP-08: only notifications/responses -> 202 with an empty body (U-05: unknown response ids are ignored)."""
    h = initialize(c)
    r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
    assert (r.status_code, r.content) == (202, b"")
    r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 99, "result": {}})
    assert (r.status_code, r.content) == (202, b"")
    # A message that is neither: refused with an HTTP error and a JSON-RPC error body (T-HTTP-09).
    r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 5})
    assert r.status_code == 400 and r.json()["error"]["code"] == -32600


def test_request_answered_on_sse_with_notifications_first(c: httpx.Client) -> None:
    """T-HTTP-10, T-HTTP-14, T-HTTP-15, T-HTTP-17, T-HTTP-48: log + progress, then the response; headers."""
    h = initialize(c)
    r = c.post("/mcp", headers=h, json=_tool_call(7, "chatty", progressToken="tok"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"
    msgs = sse_messages(r.text)
    assert [m.get("method") for m in msgs] == ["notifications/message", "notifications/progress", "notifications/progress", None]
    assert msgs[0]["params"] == {"level": "info", "logger": "t", "data": "hello log"}
    assert [m["params"]["progress"] for m in msgs[1:3]] == [1, 2]
    assert msgs[-1]["id"] == 7
    assert msgs[-1]["result"]["content"] == [{"type": "text", "text": "ok"}] and msgs[-1]["result"]["isError"] is False


def test_json_response_mode(json_base: str) -> None:
    """T-HTTP-10: with json_response the answer is one application/json object."""
    with client(json_base) as c:
        h = initialize(c)
        r = c.post("/mcp", headers=h, json=_tool_call(3, "chatty", progressToken="tok"))
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json()["id"] == 3 and r.json()["result"]["content"][0]["text"] == "ok"
        # A server->client request has no stream to travel on: the call fails with an internal error.
        h = initialize(c, capabilities={"elicitation": {}})
        r = c.post("/mcp", headers=h, json=_tool_call(4, "ask"))
        assert r.status_code == 200 and r.json()["id"] == 4
        assert r.json()["error"]["code"] == -32603 and "SSE" in r.json()["error"]["message"]


def test_server_to_client_request_answered_by_a_separate_post(base: str) -> None:
    """T-HTTP-15, F-CLI-03: elicitation/create goes out on the POST's stream; the answer POST is routed back."""
    with client(base) as c:
        h = initialize(c, capabilities={"elicitation": {}})
        seen: list[dict[str, Any]] = []
        with c.stream("POST", "/mcp", headers=h, json=_tool_call(11, "ask")) as r:
            assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
            lines = r.iter_lines()
            for line in lines:
                if not line.startswith("data:") or not line[5:].strip():
                    continue  # not data, or a priming event (T-HTTP-11)
                msg = json.loads(line[5:])
                seen.append(msg)
                if msg.get("method") == "elicitation/create":
                    assert msg["params"]["message"] == "Name?"
                    answer = {"jsonrpc": "2.0", "id": msg["id"], "result": {"action": "accept", "content": {"name": "Ada"}}}
                    a = c.post("/mcp", headers=h, json=answer)
                    assert (a.status_code, a.content) == (202, b"")
                elif "result" in msg:
                    break
        assert seen[-1]["id"] == 11
        assert seen[-1]["result"]["content"][0]["text"] == "accept:Ada"


def test_cancelled_notification_stops_the_handler(base: str) -> None:
    """U-01, U-04, T-HTTP-18: cancel by POSTing notifications/cancelled; the stream ends without a response."""
    with client(base) as c:
        h = initialize(c)
        with c.stream("POST", "/mcp", headers=h, json=_tool_call(21, "slow", {"seconds": 30, "tag": "legacy-cancel"}, progressToken="p")) as r:
            lines = r.iter_lines()
            first = next(line for line in lines if line.startswith("data:") and line[5:].strip())
            assert json.loads(first[5:])["method"] == "notifications/progress"
            n = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 21}})
            assert n.status_code == 202
            rest = [line for line in lines if line.startswith("data:") and line[5:].strip()]
        assert rest == []
        assert wait_for(lambda: OUTCOMES.get("legacy-cancel") == "cancelled")


def test_dropped_stream_does_not_cancel_legacy_requests(base: str) -> None:
    """T-HTTP-18: on legacy revisions a closed connection is not a cancellation."""
    with client(base) as c:
        h = initialize(c)
        with c.stream("POST", "/mcp", headers=h, json=_tool_call(22, "slow", {"seconds": 0.5, "tag": "legacy-drop"}, progressToken="p")) as r:
            next(line for line in r.iter_lines() if line.startswith("data:") and line[5:].strip())
        assert wait_for(lambda: OUTCOMES.get("legacy-drop") == "completed")


def test_delete_ends_the_session(c: httpx.Client) -> None:
    """T-HTTP-41, T-HTTP-42, T-HTTP-39: DELETE -> 2xx, then 404 for that session."""
    h = initialize(c)
    r = c.delete("/mcp", headers=h)
    assert r.status_code in (200, 204)
    r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert r.status_code == 404
    assert c.delete("/mcp", headers=h).status_code == 404
    assert c.delete("/mcp", headers={"accept": "application/json"}).status_code == 400  # no session id


def test_get_and_other_methods_are_405(c: httpx.Client, stateless_base: str) -> None:
    """T-HTTP-21, T-H26-24: GET streams exist only with legacy sessions; elsewhere 405 (clients continue POST-only).

    The GET stream itself is tested in test_http_resume.py."""
    h = initialize(c)
    r = c.get("/mcp", headers={"accept": "text/event-stream", "mcp-session-id": h["mcp-session-id"], "mcp-protocol-version": MODERN})
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    assert c.put("/mcp", headers=POST_HEADERS, content=b"{}").status_code == 405
    with client(stateless_base) as sc:
        r = sc.get("/mcp", headers={"accept": "text/event-stream", "mcp-session-id": h["mcp-session-id"]})
        assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_protocol_version_header(c: httpx.Client) -> None:
    """T-HTTP-43..45: unsupported -> 400; absent -> the session's version (or 2025-03-26)."""
    h = initialize(c, version="2025-06-18")
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    r = c.post("/mcp", headers={**h, "mcp-protocol-version": "1999-01-01"}, json=body)
    assert r.status_code == 400 and r.json()["error"]["data"]["requested"] == "1999-01-01"
    r = c.post("/mcp", headers={**h, "mcp-protocol-version": "not a version"}, json=body)
    assert r.status_code == 400
    without = {k: v for k, v in h.items() if k != "mcp-protocol-version"}
    r = c.post("/mcp", headers=without, json=body)
    assert r.status_code == 200 and r.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}


def test_batches_only_on_2025_03_26(c: httpx.Client, json_base: str) -> None:
    """J-11, T-HTTP-07, T-HTTP-14: a 2025-03-26 batch is answered as a whole; other revisions refuse it."""
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, _tool_call(2, "echo", {"text": "b"})]
    h = initialize(c, version="2025-03-26")
    r = c.post("/mcp", headers=h, json=batch)
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    assert sorted(m["id"] for m in sse_messages(r.text)) == [1, 2]
    r = c.post("/mcp", headers=h, json=[{"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}])
    assert (r.status_code, r.content) == (202, b"")
    with client(json_base) as jc:
        jh = initialize(jc, version="2025-03-26")
        r = jc.post("/mcp", headers=jh, json=batch)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert sorted(m["id"] for m in r.json()) == [1, 2]
    h11 = initialize(c, version="2025-11-25")
    r = c.post("/mcp", headers=h11, json=batch)
    assert r.json()["error"]["code"] == -32600


# -- request validation --------------------------------------------------------------------------


def test_origin_and_host_checks(c: httpx.Client, base: str) -> None:
    """T-HTTP-01, T-HTTP-02, T-H26-02: a foreign Origin or Host -> 403 with an id-less JSON-RPC error."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    r = c.post("/mcp", headers={**POST_HEADERS, "origin": "http://evil.example"}, json=init)
    assert r.status_code == 403 and "id" not in r.json() and r.json()["error"]["code"] == -32600
    r = c.post("/mcp", headers={**POST_HEADERS, "host": "evil.example"}, json=init)
    assert r.status_code == 403
    # Conformance dns-rebinding-protection: foreign Host and Origin together.
    r = c.post("/mcp", headers={**POST_HEADERS, "host": "evil.example:80", "origin": "http://evil.example"}, json=init)
    assert r.status_code == 403
    for origin in ("http://localhost:6274", "http://127.0.0.1:3000", "https://[::1]:8443"):
        assert c.post("/mcp", headers={**POST_HEADERS, "origin": origin}, json=init).status_code == 200
    for host in ("localhost", "localhost:9999", "[::1]:1234"):
        assert c.post("/mcp", headers={**POST_HEADERS, "host": host}, json=init).status_code == 200
    configured = create_app(app, allowed_hosts=["mcp.example.com"], allowed_origins=["https://app.example.com"])
    with running(configured) as url, client(url) as cc:
        assert cc.post("/mcp", headers={**POST_HEADERS, "host": "mcp.example.com"}, json=init).status_code == 200
        assert cc.post("/mcp", headers=POST_HEADERS, json=init).status_code == 403  # 127.0.0.1 is not listed
        ok = {**POST_HEADERS, "host": "mcp.example.com", "origin": "https://app.example.com"}
        assert cc.post("/mcp", headers=ok, json=init).status_code == 200
        assert cc.post("/mcp", headers={**ok, "origin": "http://localhost"}, json=init).status_code == 403
        assert cc.get("/healthz", headers={"host": "10.0.0.7:8000"}).status_code == 200  # probes are not rebinding targets


def test_accept_content_type_body_limits(base: str) -> None:
    """T-HTTP-06 (406), 415, 413, J-02 (-32700): transport-level rejects, in the fixed check order."""
    small = create_app(app, max_body_bytes=256)
    with running(small) as url, client(url) as c:
        init = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        r = c.post("/mcp", headers={**POST_HEADERS, "accept": "application/json"}, json=init)
        assert r.status_code == 406
        r = c.post("/mcp", headers={**POST_HEADERS, "accept": "text/event-stream"}, json=init)
        assert r.status_code == 406
        r = c.post("/mcp", headers={**POST_HEADERS, "content-type": "text/plain"}, json=init)
        assert r.status_code == 415
        r = c.post("/mcp", headers={"accept": POST_HEADERS["accept"]}, content=b"{}")
        assert r.status_code == 415
        r = c.post("/mcp", headers=POST_HEADERS, content=b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"x": "' + b"a" * 400 + b'"}}')
        assert r.status_code == 413
        # A chunked body without Content-Length is counted as it arrives.
        r = c.post("/mcp", headers=POST_HEADERS, content=iter([b"[" + b" " * 200, b" " * 200 + b"]"]))
        assert r.status_code == 413
        r = c.post("/mcp", headers=POST_HEADERS, content=b'{"jsonrpc": "2.0", "id": 1, "method": ')
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700 and "id" not in r.json()
        # Order: Origin before Accept before session.
        r = c.post("/mcp", headers={**POST_HEADERS, "accept": "text/html", "origin": "http://evil.example"}, json=init)
        assert r.status_code == 403
        r = c.post("/mcp", headers={**POST_HEADERS, "accept": "text/html", "mcp-session-id": "nope"}, json=init)
        assert r.status_code == 406
        r = c.post("/mcp", headers={**POST_HEADERS, "mcp-session-id": "nope", "mcp-protocol-version": "bad"}, json=init)
        assert r.status_code == 404


def test_health_endpoints_and_unknown_paths(c: httpx.Client) -> None:
    r = c.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = c.get("/readyz")
    assert r.status_code == 200
    assert c.post("/elsewhere", headers=POST_HEADERS, json={}).status_code == 404


def test_keepalive_comments_on_quiet_streams() -> None:
    """T-HTTP-48, T-H26-08: a handler that stays quiet gets ':' comment lines, then its response."""
    with running(StreamableHTTPApp(app, keepalive_interval=0.1)) as url, client(url) as c:
        h = initialize(c)
        r = c.post("/mcp", headers=h, json=_tool_call(1, "slow", {"seconds": 0.5, "tag": "quiet"}))
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
        assert ": keepalive" in r.text
        assert sse_messages(r.text)[-1]["result"]["content"][0]["text"] == "slept"


async def test_readiness_follows_the_lifespan() -> None:
    """/readyz answers 200 while serving and 503 once the lifespan shut the app down."""
    asgi = create_app(app)
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def get(path: str) -> int:
        sent.clear()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        await asgi({"type": "http", "method": "GET", "path": path, "headers": [(b"host", b"localhost")]}, receive, send)
        return int(sent[0]["status"])

    assert await get("/readyz") == 200
    events = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def lifespan_receive() -> dict[str, Any]:
        return next(events)

    sent.clear()
    await asgi({"type": "lifespan"}, lifespan_receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert await get("/readyz") == 503
    assert await get("/healthz") == 200


def test_session_limits(base: str) -> None:
    """Sessions are capped (503 when full) and expire when idle (then 404, T-HTTP-39)."""
    with running(create_app(app, max_sessions=1, session_idle_timeout=0.3)) as url, client(url) as c:
        h = initialize(c)
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        r = c.post("/mcp", headers=POST_HEADERS, json=init)
        assert r.status_code == 503 and "mcp-session-id" not in r.headers
        time.sleep(0.5)
        assert c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 2, "method": "ping"}).status_code == 404
        assert c.post("/mcp", headers=POST_HEADERS, json=init).status_code == 200  # the expired one made room


# -- stateless legacy ----------------------------------------------------------------------------


def test_stateless_mode(stateless_base: str) -> None:
    """Stateless: legacy requests need no initialize and no session; no ids are minted; no DELETE."""
    with client(stateless_base) as c:
        r = c.post("/mcp", headers=POST_HEADERS, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 200 and "mcp-session-id" not in r.headers
        assert sse_messages(r.text)[-1]["result"]["tools"]
        r = c.post("/mcp", headers={**POST_HEADERS, "mcp-session-id": "whatever"}, json=_tool_call(2, "echo", {"text": "x"}))
        assert r.status_code == 200 and sse_messages(r.text)[-1]["result"]["content"][0]["text"] == "x"
        init = {"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        r = c.post("/mcp", headers=POST_HEADERS, json=init)
        assert r.status_code == 200 and "mcp-session-id" not in r.headers
        assert r.json()["result"]["protocolVersion"] == "2025-11-25"
        # T-HTTP-44: no header -> 2025-03-26, where batches exist.
        r = c.post("/mcp", headers=POST_HEADERS, json=[{"jsonrpc": "2.0", "id": 4, "method": "ping"}])
        assert r.status_code == 200 and r.json() == [{"jsonrpc": "2.0", "id": 4, "result": {}}]
        r = c.post("/mcp", headers={**POST_HEADERS, "mcp-protocol-version": "2025-11-25"}, json=[{"jsonrpc": "2.0", "id": 5, "method": "ping"}])
        assert r.json()["error"]["code"] == -32600
        assert c.delete("/mcp", headers=POST_HEADERS).status_code == 405
        assert c.post("/mcp", headers=POST_HEADERS, json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202


# -- 2026-07-28 ----------------------------------------------------------------------------------


def test_modern_request_is_stateless(c: httpx.Client) -> None:
    """T-H26-05, T-H26-06, T-H26-24: per-request _meta, no session minted, Mcp-Session-Id ignored."""
    body = modern_body(1, "tools/call", {"name": "chatty", "arguments": {}, "_meta": {"progressToken": "p"}})
    r = c.post("/mcp", headers={**modern_headers("tools/call", "chatty"), "mcp-session-id": "stale-id"}, json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    assert "mcp-session-id" not in r.headers
    msgs = sse_messages(r.text)
    assert [m.get("method") for m in msgs] == ["notifications/progress", "notifications/progress", None]  # no log level in _meta: no logs (M-19)
    assert msgs[-1]["result"]["resultType"] == "complete"
    r = c.post("/mcp", headers=modern_headers("server/discover"), json=modern_body(2, "server/discover"))
    assert r.status_code == 200 and MODERN in r.json()["result"]["supportedVersions"]


def test_modern_header_validation(c: httpx.Client) -> None:
    """T-H26-12, T-H26-14, T-H26-15, T-H26-17: headers must repeat the body; else 400 + -32020 with the id."""
    body = modern_body(5, "tools/call", {"name": "echo", "arguments": {"text": "hi"}})
    good = modern_headers("tools/call", "echo")
    assert c.post("/mcp", headers=good, json=body).status_code == 200
    cases = [
        {k: v for k, v in good.items() if k != "mcp-protocol-version"},  # missing version header
        {**good, "mcp-protocol-version": "2025-11-25"},  # differs from _meta
        {k: v for k, v in good.items() if k != "mcp-method"},
        {**good, "mcp-method": "tools/list"},
        {**good, "mcp-method": "Tools/Call"},  # T-H26-18: values are case-sensitive
        {k: v for k, v in good.items() if k != "mcp-name"},
        {**good, "mcp-name": "other"},
        {**good, "mcp-name": "=?base64?!!!?="},  # a malformed sentinel never matches
    ]
    for headers in cases:
        r = c.post("/mcp", headers=headers, json=body)
        assert r.status_code == 400, headers
        assert r.json()["error"]["code"] == -32020 and r.json()["id"] == 5, r.json()
    # Header names are case-insensitive (T-H26-18); whitespace stripping is in test_http_units.py (h11 strips it too).
    relaxed = {"Accept": good["accept"], "Content-Type": "application/json", "MCP-PROTOCOL-VERSION": MODERN, "mcp-METHOD": "tools/call", "Mcp-Name": "echo"}
    assert c.post("/mcp", headers=relaxed, json=body).status_code == 200
    # resources/read and prompts/get name their target too.
    r = c.post("/mcp", headers=modern_headers("resources/read"), json=modern_body(6, "resources/read", {"uri": "res://x"}))
    assert r.status_code == 400 and r.json()["error"]["code"] == -32020


def test_modern_base64_header_values(c: httpx.Client) -> None:
    """T-H26-16, T-H26-17: =?base64?...?= values are decoded before comparing."""
    name = "échø"
    enc = "=?base64?" + base64.b64encode(name.encode()).decode() + "?="
    body = modern_body(9, "tools/call", {"name": name, "arguments": {}})
    r = c.post("/mcp", headers=modern_headers("tools/call", enc), json=body)
    # Header accepted; the unknown tool is the server's answer: -32602 -> 400 (DIGEST §15).
    assert r.status_code == 400 and r.json()["error"]["code"] == -32602 and r.json()["id"] == 9
    plain = "=?base64?" + base64.b64encode(b"echo").decode() + "?="
    r = c.post("/mcp", headers=modern_headers("tools/call", plain), json=modern_body(10, "tools/call", {"name": "echo", "arguments": {"text": "z"}}))
    assert r.status_code == 200 and sse_messages(r.text)[-1]["result"]["content"][0]["text"] == "z"


def test_modern_error_statuses(c: httpx.Client) -> None:
    """T-H26-13, DIGEST §15: -32022 / -32602 / -32021 -> 400; unknown method -> 404 + -32601."""
    r = c.post("/mcp", headers=modern_headers("tools/list", version="2099-01-01"), json=modern_body(1, "tools/list", version="2099-01-01"))
    assert r.status_code == 400 and r.json()["error"]["code"] == -32022
    assert MODERN in r.json()["error"]["data"]["supported"]
    bare = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}}
    r = c.post("/mcp", headers=modern_headers("tools/list"), json=bare)
    assert r.status_code == 400 and r.json()["error"]["code"] == -32602  # missing clientCapabilities
    r = c.post("/mcp", headers=modern_headers("tools/call", "ask"), json=modern_body(3, "tools/call", {"name": "ask", "arguments": {}}))
    assert r.status_code == 400 and r.json()["error"]["code"] == -32021  # elicitation not declared
    r = c.post("/mcp", headers=modern_headers("no/such"), json=modern_body(4, "no/such"))
    assert r.status_code == 404 and r.json()["error"]["code"] == -32601 and r.json()["id"] == 4
    r = c.post("/mcp", headers=modern_headers("initialize"), json={"jsonrpc": "2.0", "id": 5, "method": "ping", "params": {}})
    assert r.status_code == 400  # a 2026-07-28 header on a body without _meta: the version headers disagree
    r = c.post("/mcp", headers=modern_headers("tools/list"), json=[modern_body(6, "tools/list")])
    assert r.status_code == 400 and r.json()["error"]["code"] == -32600  # no batches on 2026-07-28


def test_modern_never_sends_requests_on_the_stream(c: httpx.Client) -> None:
    """T-H26-07, M-14: elicitation becomes an input_required result, never a request on the stream."""
    body = modern_body(8, "tools/call", {"name": "ask", "arguments": {}}, caps={"elicitation": {}})
    r = c.post("/mcp", headers=modern_headers("tools/call", "ask"), json=body)
    msgs = sse_messages(r.text)
    assert all("method" not in m for m in msgs)
    result = msgs[-1]["result"]
    assert result["resultType"] == "input_required"
    assert next(iter(result["inputRequests"].values()))["method"] == "elicitation/create"
    # A notification is accepted with 202 (T-H26-04).
    r = c.post("/mcp", headers={**POST_HEADERS, "mcp-protocol-version": MODERN}, json={"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 8}})
    assert (r.status_code, r.content) == (202, b"")


def test_modern_closing_the_stream_cancels_the_request(base: str) -> None:
    """T-H26-11: the client closing the response stream cancels the handler."""
    with client(base) as c:
        body = modern_body(12, "tools/call", {"name": "slow", "arguments": {"seconds": 30, "tag": "modern-close"}, "_meta": {"progressToken": "p"}})
        with c.stream("POST", "/mcp", headers=modern_headers("tools/call", "slow"), json=body) as r:
            assert r.status_code == 200
            first = next(line for line in r.iter_lines() if line.startswith("data:") and line[5:].strip())
            assert json.loads(first[5:])["method"] == "notifications/progress"
        assert wait_for(lambda: OUTCOMES.get("modern-close") == "cancelled")


def test_modern_json_response(json_base: str) -> None:
    with client(json_base) as c:
        body = modern_body(1, "tools/call", {"name": "echo", "arguments": {"text": "j"}})
        r = c.post("/mcp", headers=modern_headers("tools/call", "echo"), json=body)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json()["result"]["content"][0]["text"] == "j"


# -- the official SDK client ---------------------------------------------------------------------

SDK_CLIENT = Path(__file__).parents[1] / "interop" / "peers" / "python" / "sdk_client.py"


@pytest.fixture(scope="module")
def fixture_url() -> Iterator[str]:
    with running(create_app(fixture_app)) as url:
        yield f"{url}/mcp"


@pytest.mark.interop
@pytest.mark.parametrize(
    ("era", "version"),
    [("legacy", "2025-11-25"), ("legacy", "2025-06-18"), ("legacy", "2025-03-26"), ("modern", "2026-07-28")],
)
def test_official_python_client_over_streamable_http(fixture_url: str, era: str, version: str) -> None:
    """T-HTTP-*, T-H26-*: the SDK's Streamable HTTP client runs the FIXTURE.md report against our endpoint."""
    cmd = [sys.executable, str(SDK_CLIENT), "--era", era, "--url", fixture_url, "--total-timeout", "90"]
    if era == "legacy":
        cmd += ["--protocol-version", version]
    proc = subprocess.run(cmd, capture_output=True, timeout=150, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    report = json.loads(proc.stdout)
    if version < "2025-06-18":
        # Elicitation does not exist before 2025-06-18: the one step allowed to fail.
        assert "error" in report.pop("ask_name")
        report["ask_name"] = {"text": "n/a"}
    check_report(report, era=era, version=version)
