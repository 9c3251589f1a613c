"""Rate limits (one process, and shared by replicas through Redis) and Redis faults (issue 12).

A limited request gets HTTP 429 with Retry-After and a JSON-RPC error -32029 (data: retryAfter,
limit); the official Python SDK client surfaces it as an error instead of hanging. With Redis
stopped, requests get 503 + Retry-After; once it is back, the same replicas serve again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from anyport.transports.http import create_app
from tests.redis_servers import RedisServer, free_port
from tests.scaleout.replica_app import app
from tests.scaleout.test_redis_replicas import _serve, _stop, _wait_ready, replicas
from tests.transports._http_helpers import running

POST = {"accept": "application/json, text/event-stream", "content-type": "application/json", "mcp-protocol-version": "2025-06-18"}
PEERS = Path(__file__).with_name("peers")




def _call(id_: int, name: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": {}}}


def _assert_limited(r: httpx.Response, id_: int | None) -> None:
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["error"]["code"] == -32029 and body["error"]["data"]["retryAfter"] > 0
    assert body.get("id") == id_


def test_a_client_over_its_rate_gets_429_retry_after_and_32029() -> None:
    http_app = create_app(app, stateless=True, json_response=True, rate_limit="3/10s", tool_rate_limits={"ask": "1/10s"})
    with running(http_app) as base, httpx.Client(base_url=base, timeout=10) as c:
        for i in range(3):
            r = c.post("/mcp", headers=POST, json=_call(i, "whoami"))
            assert r.status_code == 200 and "result" in r.json(), r.text
        _assert_limited(c.post("/mcp", headers=POST, json=_call(9, "whoami")), None)  # refused before the body is read
        assert c.get("/healthz").status_code == 200  # only the endpoint is limited


def test_a_tool_limit_counts_calls_of_that_tool_only() -> None:
    http_app = create_app(app, stateless=True, json_response=True, tool_rate_limits={"whoami": "2/10s"})
    with running(http_app) as base, httpx.Client(base_url=base, timeout=10) as c:
        assert all(c.post("/mcp", headers=POST, json=_call(i, "whoami")).status_code == 200 for i in range(2))
        _assert_limited(c.post("/mcp", headers=POST, json=_call(7, "whoami")), 7)  # the refused call's id
        r = c.post("/mcp", headers=POST, json={"jsonrpc": "2.0", "id": 8, "method": "tools/list"})
        assert r.status_code == 200


def test_bad_rates_are_refused_when_the_app_is_made() -> None:
    with pytest.raises(ValueError, match="rate"):
        create_app(app, rate_limit="lots")


def test_replicas_share_one_limit_through_redis(redis: RedisServer) -> None:
    ports = [free_port(), free_port()]
    procs = [_serve("--port", str(p), "--redis", redis.url, "--redis-prefix", "rl", "--stateless", "--rate-limit", "4/60s") for p in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_ready(port, proc)
        with httpx.Client(timeout=10) as c:
            statuses = [c.post(f"http://127.0.0.1:{ports[i % 2]}/mcp", headers=POST, json=_call(i, "whoami")).status_code for i in range(6)]
        assert statuses == [200, 200, 200, 200, 429, 429]
    finally:
        _stop(procs)


def test_the_official_sdk_client_surfaces_a_429_as_an_error_not_a_hang(redis: RedisServer) -> None:
    port = free_port()
    proc = _serve("--port", str(port), "--redis", redis.url, "--redis-prefix", "rlsdk", "--rate-limit", "5/60s")
    try:
        _wait_ready(port, proc)
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, str(PEERS / "sdk_session.py"), "--url", f"http://127.0.0.1:{port}/mcp", "--calls", "8", "--timeout", "30"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        report = json.loads(out.stdout)
        assert time.monotonic() - started < 25  # an error, long before the 30 s the session may take
        # mcp 2.3.0 does not read the body of a 4xx: it raises its own "Server returned an error
        # response" (-32603) for the call; what matters is that the caller gets an error at once.
        assert report["error"] is not None and report["error"].startswith("MCPError"), report
        assert ["POST", 429] in report["http"] and len(report["pids"]) == 2, report
    finally:
        _stop([proc])


def test_redis_down_gives_503_and_the_replicas_recover_when_it_returns(redis: RedisServer) -> None:
    """Stop redis-server under the replicas: requests fail cleanly (503 + Retry-After, nothing
    hangs); start it again on the same port: the same processes serve new sessions within 5 s."""
    with replicas(redis, "fault", n=2) as ports, httpx.Client(timeout=10) as c:
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        assert c.post(f"http://127.0.0.1:{ports[0]}/mcp", headers=POST, json=init).status_code == 200
        redis.stop()
        try:
            for port in ports:
                started = time.monotonic()
                r = c.post(f"http://127.0.0.1:{port}/mcp", headers=POST, json=init)
                assert r.status_code == 503 and "retry-after" in r.headers and r.json()["error"]["code"] == -32000, r.text
                assert time.monotonic() - started < 5
                assert c.get(f"http://127.0.0.1:{port}/readyz").status_code == 503
        finally:
            redis.start()
        deadline = time.monotonic() + 5
        recovered = False
        while time.monotonic() < deadline and not recovered:
            recovered = all(c.post(f"http://127.0.0.1:{p}/mcp", headers=POST, json=init).status_code == 200 for p in ports)
            time.sleep(0.1)
        assert recovered
        assert all(c.get(f"http://127.0.0.1:{p}/readyz").status_code == 200 for p in ports)


def test_the_http_sse_message_endpoint_counts_against_the_same_rate() -> None:
    """2024-11-05 HTTP+SSE: POST /messages/ is limited per client like the Streamable HTTP endpoint."""
    http_app = create_app(app, rate_limit="2/10s")
    with running(http_app) as base, httpx.Client(base_url=base, timeout=10) as c:
        statuses = [c.post("/messages/?session_id=nope", headers={"content-type": "application/json"}, json=_call(i, "whoami")).status_code for i in range(3)]
        assert statuses[:2] == [400, 400]  # counted although the session id is not one of ours
        assert statuses[2] == 429


def test_a_tool_limit_holds_on_the_http_sse_transport_too() -> None:
    """The 2024-11-05 HTTP+SSE transport's message POSTs count against the per-tool rates like a
    Streamable HTTP POST: the call over the rate is answered 429 + -32029 on the POST (its id), and
    never reaches the connection's stream; other methods go on."""
    from tests.transports.test_http_legacy_sse import JSON, SSE_ACCEPT, Events, _handshake, _open

    http_app = create_app(app, tool_rate_limits={"whoami": "1/10s"})
    with running(http_app) as base, httpx.Client(base_url=base, timeout=10) as c, c.stream("GET", "/sse", headers=SSE_ACCEPT) as r:
        events = Events(r)
        endpoint = _open(c, events)
        _handshake(c, events, endpoint)
        assert c.post(endpoint, headers=JSON, json=_call(1, "whoami")).status_code == 202
        assert events.message()["id"] == 1
        _assert_limited(c.post(endpoint, headers=JSON, json=_call(2, "whoami")), 2)
        assert c.post(endpoint, headers=JSON, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).status_code == 202
        assert events.message()["id"] == 3  # the limited call never reached the stream


def test_with_auth_each_principal_has_its_own_budget() -> None:
    """Issue 12: per principal when auth is on. Two API keys from the same address each get the
    whole rate; the third call of one key is refused while the other key still passes."""
    from anyport.auth import APIKeys, AuthChain, new_api_key

    alice, alice_entry = new_api_key("alice")
    bob, bob_entry = new_api_key("bob")

    def make(base: str) -> Any:
        chain = AuthChain([APIKeys([alice_entry, bob_entry])], resource=base + "/mcp")
        return create_app(app, stateless=True, json_response=True, rate_limit="2/10s", auth=chain)

    from tests.auth._serving import served

    with served(make) as base, httpx.Client(base_url=base, timeout=10) as c:
        for i in range(2):
            assert c.post("/mcp", headers={**POST, "x-api-key": alice}, json=_call(i, "whoami")).status_code == 200
        _assert_limited(c.post("/mcp", headers={**POST, "x-api-key": alice}, json=_call(5, "whoami")), None)
        assert c.post("/mcp", headers={**POST, "x-api-key": bob}, json=_call(6, "whoami")).status_code == 200
