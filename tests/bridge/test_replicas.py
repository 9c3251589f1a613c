"""Bridge replicas sharing a Redis, with no sticky load balancer: a session's requests reach the
replica that holds its child whichever replica they land on (``Affinity``), the replica that held
it dying costs the session its child but not the session, and rate limits are shared.

Two bridges of rogue.py on loopback ports, a real redis-server on a free port."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest

from anyport.bridge import Bridge, BridgeOptions, bridge_app
from anyport.bridge._affinity import Affinity
from tests.bridge._helpers import (
    POST_HEADERS,
    alive,
    call,
    initialize,
    modern_call,
    rogue,
    text_of,
    wait_ready,
    wait_until,
)
from tests.redis_servers import RedisServer, redis_server
from tests.transports._http_helpers import running


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@contextmanager
def replica(redis: RedisServer, prefix: str, **http: Any) -> Iterator[tuple[str, Affinity]]:
    bridge = Bridge(BridgeOptions(command=tuple(rogue())))
    app = bridge_app(bridge, redis=redis.url, redis_prefix=prefix, advertise_url="http://127.0.0.1:1", **http)
    assert app.affinity is not None
    with running(app, start_timeout=30) as base:
        app.affinity.url = base  # the real port is known once it serves
        yield base, app.affinity
    assert not bridge.pool.children, "a child outlived its replica"


@contextmanager
def two_replicas(redis: RedisServer, **http: Any) -> Iterator[tuple[tuple[str, Affinity], tuple[str, Affinity]]]:
    prefix = f"t{secrets.token_hex(4)}"
    with ExitStack() as stack:
        a = stack.enter_context(replica(redis, prefix, **http))
        b = stack.enter_context(replica(redis, prefix, **http))
        yield a, b


def test_a_sessions_requests_reach_its_child_on_whichever_replica_they_land(redis: RedisServer) -> None:
    """T-HTTP-30/34 across replicas: one session, one child, requests alternating between replicas
    (no sticky routing); DELETE on the other replica ends the session and its child (T-HTTP-41/42)."""
    with two_replicas(redis) as ((a, aff_a), (b, aff_b)), httpx.Client(timeout=20) as c:
        h = initialize(httpx.Client(base_url=a, timeout=20))
        counts = [text_of(call(httpx.Client(base_url=base, timeout=20), h, i, "inc")) for i, base in enumerate([a, b, b, a, b])]
        assert counts == ["1", "2", "3", "4", "5"]  # one child kept the count
        pid = int(text_of(call(httpx.Client(base_url=b, timeout=20), h, 9, "pid")))
        assert alive(pid) and aff_b.forwarded >= 4 and aff_a.forwarded == 0
        assert c.delete(f"{b}/mcp", headers=h).status_code in (200, 202, 204)
        assert wait_until(lambda: not alive(pid)), "the child outlived its session"
        body = {"jsonrpc": "2.0", "id": 10, "method": "tools/list"}
        assert c.post(f"{a}/mcp", headers=h, json=body).status_code == 404
        assert c.post(f"{b}/mcp", headers=h, json=body).status_code == 404


def test_a_get_stream_opened_on_another_replica_gets_the_sessions_notifications(redis: RedisServer) -> None:
    """T-HTTP-25: the standalone GET stream, forwarded as a stream; the child's list_changed reaches it."""
    with two_replicas(redis) as ((a, _), (b, _)), httpx.Client(timeout=20) as c:
        h = initialize(httpx.Client(base_url=a, timeout=20))
        got: list[str] = []
        opened = threading.Event()

        def listen() -> None:
            with c.stream("GET", f"{b}/mcp", headers={**h, "accept": "text/event-stream"}) as stream:
                assert stream.status_code == 200
                opened.set()
                for line in stream.iter_lines():
                    if line.startswith("data:") and "list_changed" in line:
                        got.append(line)
                        return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        assert opened.wait(10)
        for i in range(20):  # until the stream is subscribed on the child's replica
            assert text_of(call(httpx.Client(base_url=a, timeout=20), h, i, "changed")) == "ok"
            t.join(0.3)
            if got:
                break
        assert got and "notifications/tools/list_changed" in got[0]


def test_http_sse_messages_posted_to_another_replica_reach_the_connection(redis: RedisServer) -> None:
    """T-SSE-03/04: the POST of a connection's message lands on another replica; the answer comes on the
    connection's stream at the replica that holds it."""
    with two_replicas(redis) as ((a, _), (b, _)), httpx.Client(timeout=20) as c:
        with c.stream("GET", f"{a}/sse", headers={"accept": "text/event-stream"}) as stream:
            lines = stream.iter_lines()
            endpoint = next(line for line in lines if line.startswith("data:"))[5:].strip()
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            assert c.post(f"{b}{endpoint}", json=init).status_code == 202
            assert any('"id":1' in line for line in _until(lines, '"id":1'))
            c.post(f"{b}{endpoint}", json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            for i in (2, 3):
                assert c.post(f"{b}{endpoint}", json={"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                                      "params": {"name": "inc", "arguments": {}}}).status_code == 202
                answer = _until(lines, f'"id":{i}')[-1]
                assert f'"text":"{i - 1}"' in answer


def test_the_replica_holding_a_session_goes_and_the_session_goes_on_with_a_new_child(redis: RedisServer) -> None:
    """T-HTTP-39/40 need not happen: the session's record is in Redis, and the replica a request lands on
    takes it over with a new child (the old child's state is gone: the count starts again) and claims it:
    after the holder stopped (its claim released), and after it crashed (its claim left behind, naming a
    replica that no longer answers)."""
    import redis as redis_py

    prefix = f"t{secrets.token_hex(4)}"
    with replica(redis, prefix) as (b, aff_b), httpx.Client(base_url=b, timeout=20) as cb:
        with replica(redis, prefix) as (a, _aff_a), httpx.Client(base_url=a, timeout=20) as ca:
            h = initialize(ca)
            assert text_of(call(ca, h, 1, "inc")) == "1"
            assert text_of(call(cb, h, 2, "inc")) == "2"  # forwarded to a
        assert text_of(call(cb, h, 3, "inc")) == "1"  # a stopped: served here, with a child of its own
        assert text_of(call(cb, h, 4, "inc")) == "2"
        store = redis_py.Redis.from_url(redis.url)
        key = f"{prefix}:{{{h['mcp-session-id']}}}:bridge-owner"
        assert store.get(key) == b.encode()  # claimed by b now
        with replica(redis, prefix) as (a2, _), httpx.Client(base_url=a2, timeout=20) as ca2:
            h2 = initialize(ca2)
            assert text_of(call(ca2, h2, 1, "inc")) == "1"
            key2 = f"{prefix}:{{{h2['mcp-session-id']}}}:bridge-owner"
            dead = store.get(key2)
        store.set(key2, dead)  # as if a2 had been killed: its claim outlives it
        store.close()
        before = aff_b.taken_over
        assert text_of(call(cb, h2, 2, "inc")) == "1"
        assert aff_b.taken_over == before + 1


def test_a_2026_retry_reaches_the_replica_where_its_mrtr_call_is_parked(redis: RedisServer) -> None:
    """M-14..M-18 across replicas: a legacy child's elicitation becomes an input_required round on one
    replica; the retry with inputResponses lands on the other and is forwarded to the parked call. A
    requestState whose clear id was altered is refused (M-16)."""
    caps = {"elicitation": {}}
    with two_replicas(redis) as ((a, _), (b, aff_b)):
        with httpx.Client(base_url=a, timeout=20) as ca, httpx.Client(base_url=b, timeout=20) as cb:
            first = modern_call(ca, 1, "ask", caps=caps)[-1]["result"]
            assert first["resultType"] == "input_required"
            ((key, _ask),) = first["inputRequests"].items()
            retry = {"inputResponses": {key: {"action": "accept", "content": {"name": "Ada"}}}, "requestState": first["requestState"]}
            forwarded = aff_b.forwarded
            assert text_of(modern_call(cb, 2, "ask", caps=caps, extra=retry)) == "name=Ada"
            assert aff_b.forwarded == forwarded + 1
            second = modern_call(cb, 3, "ask", caps=caps)[-1]["result"]  # parked on b this time
            pid, sealed = second["requestState"].split(".", 1)
            altered = {"requestState": f"{pid[:-1]}{'A' if pid[-1] != 'A' else 'B'}.{sealed}", "inputResponses": {}}
            assert modern_call(cb, 4, "ask", caps=caps, extra=altered)[-1]["error"]["code"] == -32602


def test_rate_limits_are_shared_by_the_replicas(redis: RedisServer) -> None:
    """One client's limit counts its requests on every replica (429 with data.retryAfter)."""
    with two_replicas(redis, rate_limit="3/minute") as ((a, _), (b, _)):
        with httpx.Client(base_url=a, timeout=20) as ca, httpx.Client(base_url=b, timeout=20) as cb:
            for c, i in ((ca, 1), (cb, 2), (ca, 3)):
                assert text_of(modern_call(c, i, "pid")).isdigit()
            r = cb.post("/mcp", headers={**POST_HEADERS, "mcp-protocol-version": "2026-07-28", "mcp-method": "ping"},
                        json={"jsonrpc": "2.0", "id": 4, "method": "ping"})
            assert r.status_code == 429 and "retryAfter" in r.json()["error"]["data"]


def _until(lines: Iterator[str], marker: str) -> list[str]:
    seen = []
    for line in lines:
        seen.append(line)
        if line.startswith("data:") and marker in line:
            return seen
    raise AssertionError(f"the stream ended before {marker}")


@pytest.mark.parametrize(("client", "transport"), [("python", "streamable"), ("python", "sse"), ("typescript", "streamable")])
def test_official_sdk_peers_through_nginx_round_robin_over_two_replicas(redis: RedisServer, client: str, transport: str) -> None:
    """The interop fixture (every step: server->client requests, progress, logs, cancellation), an official
    SDK client -> a real nginx with plain round robin (no stickiness) -> two bridge replicas -> the official
    Python SDK's stdio fixture server; each replica served some of the session's requests (access log)."""
    from tests.bridge.test_fixture_peers import _child, _client
    from tests.interop._report import check_report
    from tests.interop.test_official_peers import _peer_report
    from tests.scaleout.nginx import nginx_balancer

    prefix = f"t{secrets.token_hex(4)}"
    with ExitStack() as stack:
        replicas = []
        for _ in range(2):
            bridge = Bridge(BridgeOptions(command=tuple(_child("python")), child_era="legacy"))
            app = bridge_app(bridge, redis=redis.url, redis_prefix=prefix, advertise_url="http://127.0.0.1:1")
            assert app.affinity is not None
            base = stack.enter_context(running(app, start_timeout=30))
            app.affinity.url = base
            replicas.append((base, app.affinity))
        ports = [int(base.rsplit(":", 1)[1]) for base, _ in replicas]
        nginx = stack.enter_context(nginx_balancer(ports))
        root = nginx.url.removesuffix("/mcp")
        url = f"{root}/sse" if transport == "sse" else f"{root}/mcp"
        report = _peer_report(_client(client, "legacy", url, transport == "sse"))
        upstreams = {line["upstream"] for line in nginx.access_log() if line["method"] == "POST"}
        forwarded = sum(app.forwarded for _, app in replicas)
    check_report(report, era="legacy", version="2025-11-25")
    assert len(upstreams) == 2, "round robin should have used both replicas"
    assert forwarded > 0


def test_anyport_bridge_replicas_from_the_command_line(redis: RedisServer) -> None:
    """Two `anyport bridge --redis URL --advertise-url URL` processes: a session opened on one is served by its
    child through the other; both processes leave no child behind."""
    import subprocess
    import sys
    import time

    from tests.redis_servers import free_port

    procs: list[subprocess.Popen[bytes]] = []
    bases = []
    prefix = f"cli{secrets.token_hex(3)}"
    try:
        for _ in range(2):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            argv = [sys.executable, "-m", "anyport.cli._bridge", "bridge", "--port", str(port), "--redis", redis.url,
                    "--redis-prefix", prefix, "--advertise-url", base, "--log-level", "warning", "--", *rogue()]
            procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            bases.append(base)
        for base, proc in zip(bases, procs, strict=True):
            wait_ready(base, proc)
        with httpx.Client(base_url=bases[0], timeout=20) as ca, httpx.Client(base_url=bases[1], timeout=20) as cb:
            h = initialize(ca)
            assert [text_of(call(c, h, i, "inc")) for i, c in enumerate([cb, ca, cb])] == ["1", "2", "3"]
            pid = int(text_of(call(cb, h, 9, "pid")))
    finally:
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + 20
        for proc in procs:
            proc.wait(max(0.1, deadline - time.monotonic()))
    assert wait_until(lambda: not alive(pid)), "a child outlived its bridge"


def test_replica_flags_are_checked_before_anything_starts(redis: RedisServer) -> None:
    """One line and exit 2 for --advertise-url without --redis or with a path; exit 1 for a Redis that does not answer."""
    from click.testing import CliRunner

    from anyport.cli._bridge import commands
    from tests.redis_servers import free_port

    runner = CliRunner()
    r = runner.invoke(commands, ["bridge", "--advertise-url", "http://10.0.0.5:8000", "--", *rogue()])
    assert r.exit_code == 2 and "--advertise-url needs --redis" in r.output
    r = runner.invoke(commands, ["bridge", "--redis", redis.url, "--advertise-url", "10.0.0.5:8000/mcp", "--", *rogue()])
    assert r.exit_code == 2 and "expected http://HOST:PORT" in r.output
    r = runner.invoke(commands, ["bridge", "--redis", f"redis://127.0.0.1:{free_port()}/0", "--", *rogue()])
    assert r.exit_code == 1 and "is unreachable" in r.output
