"""Edge rules of the HTTP app driven directly through ASGI: trusted proxies and slow clients."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from pydantic import Field

from anyport import Server
from anyport.transports.http import create_app

INIT = json.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}).encode()


async def call(app: Any, headers: dict[str, str], body: bytes, *, client: str = "127.0.0.1", stall: bool = False) -> tuple[int, dict[str, Any]]:
    scope = {
        "type": "http", "method": "POST", "path": "/mcp", "query_string": b"", "root_path": "",
        "client": (client, 50000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in {
            "accept": "application/json, text/event-stream", "content-type": "application/json", **headers}.items()],
    }
    sent = [{"type": "http.request", "body": body, "more_body": stall}]

    async def receive() -> dict[str, Any]:
        if sent:
            return sent.pop(0)
        await asyncio.sleep(3600)  # a client that never sends the rest
        return {"type": "http.disconnect"}

    out: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    await asyncio.wait_for(app(scope, receive, send), 10)
    status = next(m["status"] for m in out if m["type"] == "http.response.start")
    raw = b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")
    text = raw.decode()
    if text.startswith(("event:", "id:", ":", "data:")):
        datas = [line[5:].strip() for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
        return status, json.loads(datas[-1])
    return status, json.loads(raw) if raw else {}


async def test_forwarded_host_only_from_trusted_proxies_T_HTTP_01() -> None:
    """Behind a proxy the public Host arrives as X-Forwarded-Host: believed from a trusted peer only."""
    app = create_app(Server("p"), allowed_hosts=["mcp.example.com"], trusted_proxies=["10.0.0.5"])
    fwd = {"host": "backend:8000", "x-forwarded-host": "mcp.example.com", "x-forwarded-proto": "https"}
    status, body = await call(app, fwd, INIT, client="10.0.0.5")
    assert status == 200 and body["result"]["protocolVersion"] == "2025-11-25"
    status, body = await call(app, fwd, INIT, client="203.0.113.9")  # a client forging the header
    assert status == 403 and body["error"]["message"] == "Forbidden: Host not allowed"


async def test_forwarded_same_origin_is_allowed_and_foreign_origin_is_not_T_HTTP_02() -> None:
    app = create_app(Server("p"), allowed_hosts=["mcp.example.com"], trusted_proxies=["*"])
    fwd = {"host": "backend:8000", "x-forwarded-host": "mcp.example.com", "x-forwarded-proto": "https"}
    status, _ = await call(app, {**fwd, "origin": "https://mcp.example.com"}, INIT)
    assert status == 200
    status, body = await call(app, {**fwd, "origin": "https://evil.example"}, INIT)
    assert status == 403 and "Origin" in body["error"]["message"] and "id" not in body


async def test_without_trusted_proxies_forwarded_headers_are_ignored() -> None:
    app = create_app(Server("p"))
    status, _ = await call(app, {"host": "127.0.0.1:8000", "x-forwarded-host": "evil.example"}, INIT)
    assert status == 200  # the real Host is checked, the header changes nothing
    status, _ = await call(app, {"host": "evil.example", "x-forwarded-host": "localhost"}, INIT)
    assert status == 403


async def test_slow_client_body_gets_408() -> None:
    """A client that starts a body and never finishes it is answered 408, not waited on forever."""
    app = create_app(Server("p"), body_timeout=0.2)
    status, body = await call(app, {"host": "localhost"}, INIT[:10], stall=True)
    assert status == 408 and "Request Timeout" in body["error"]["message"]


async def test_mcp_param_headers_are_validated_T_H26_21() -> None:
    """T-H26-21: an x-mcp-header argument must be mirrored in Mcp-Param-<Name>, equal after decoding."""
    app_server = Server("p")

    @app_server.tool()
    def route(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], n: int = 0) -> str:
        return region

    app = create_app(app_server)
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}

    def body(region: str) -> bytes:
        return json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                           "params": {"name": "route", "arguments": {"region": region}, "_meta": meta}}).encode()

    base = {"host": "localhost", "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "route"}
    status, ok = await call(app, {**base, "mcp-param-region": "eu-west"}, body("eu-west"))
    assert status == 200 and ok["result"]["content"][0]["text"] == "eu-west"
    status, enc = await call(app, {**base, "mcp-param-region": "=?base64?w6l0w6k=?="}, body("été"))
    assert status == 200 and enc["result"]["content"][0]["text"] == "été"
    for headers in ({}, {"mcp-param-region": "us-east"}, {"mcp-param-region": "=?base64?!!!?="}):
        status, err = await call(app, {**base, **headers}, body("eu-west"))
        assert status == 400 and err["error"]["code"] == -32020 and err["id"] == 7, headers


async def test_remembered_header_verdicts_stay_right_past_their_bound_T_HTTP_02_T_HTTP_06() -> None:
    """The Origin/Host and Accept/Content-Type verdicts are remembered per distinct value, and the
    memory is bounded: a value seen after many others is still judged, both ways, every time."""
    app = create_app(Server("p"), stateless=True)
    ping = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"}).encode()
    for i in range(600):  # more distinct values than are remembered
        status, _ = await call(app, {"host": f"h{i}.example"}, ping)
        assert status == 403
        status, _ = await call(app, {"host": "localhost", "accept": f"text/x-{i}"}, ping)
        assert status == 406
    for _ in range(3):
        status, body = await call(app, {"host": "localhost:9"}, ping)
        assert status == 200 and body["result"] == {}
        status, _ = await call(app, {"host": "evil.example"}, ping)
        assert status == 403
        status, _ = await call(app, {"host": "localhost", "content-type": "text/plain"}, ping)
        assert status == 415
        status, _ = await call(app, {"host": "localhost", "origin": "https://evil.example"}, ping)
        assert status == 403
    assert len(app.gate._origin_host_verdicts) <= 256 and len(app.gate._media_verdicts) <= 256


async def test_answered_posts_leave_no_reference_cycles() -> None:
    """An answered POST is freed by reference counting as soon as it is done: nothing of it waits
    for the garbage collector (which would cost every request CPU and hold its memory longer).
    Stateless and session POSTs, JSON and SSE replies, legacy and 2026-07-28."""
    import gc

    def tool_server() -> Server:
        server = Server("p")

        @server.tool()
        def echo(text: str) -> str:
            return text

        return server

    call_echo = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}).encode()
    modern = json.dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"text": "x"}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}}}).encode()
    modern_headers = {"host": "localhost", "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "echo"}
    apps = [create_app(tool_server(), stateless=True, json_response=True), create_app(tool_server(), stateless=True),
            create_app(tool_server(), json_response=True), create_app(tool_server())]
    sessions: list[dict[str, str]] = []
    for app in apps:
        headers = {"host": "localhost", "mcp-protocol-version": "2025-11-25"}
        if not app.stateless:
            _, _ = await call(app, headers, INIT)
            sid = app.sessions.ids()[0]  # the session the initialize opened
            headers = {**headers, "mcp-session-id": sid}
            await call(app, headers, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode())
        sessions.append(headers)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for app, headers in zip(apps, sessions, strict=True):
            for _ in range(20):
                status, body = await call(app, headers, call_echo)
                assert status == 200 and body["result"]["content"][0]["text"] == "x"
                status, body = await call(app, modern_headers, modern)
                assert status == 200 and body["result"]["content"][0]["text"] == "x"
        gc.collect()
        ours = [o for o in gc.garbage if type(o).__module__.startswith("anyport")]
        assert ours == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_a_bug_of_ours_is_a_json_rpc_500_not_plain_text(monkeypatch: Any) -> None:
    """The last line behind the core's own errors: an exception escaping the endpoint gives a JSON-RPC
    -32603 with HTTP 500 (the fuzzers check that no client input gets there), and the app goes on."""
    server = Server("p")
    app = create_app(server)

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server, "open_connection", broken)
    status, body = await call(app, {"host": "localhost"}, INIT)
    assert status == 500 and body == {"jsonrpc": "2.0", "error": {"code": -32603, "message": "Internal error"}}
    monkeypatch.undo()
    status, body = await call(app, {"host": "localhost"}, INIT)
    assert status == 200 and body["result"]["protocolVersion"] == "2025-11-25"
