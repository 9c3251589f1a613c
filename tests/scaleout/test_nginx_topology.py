"""Scale-out behind a real load balancer (issue 12): redis-server, three `anyport serve --http --redis`
replicas and nginx in front, balancing every request round robin with no stickiness.

Three clients each run one legacy Streamable HTTP session through nginx: ours, the official Python
SDK's and the official TypeScript SDK's. Consecutive requests of a session land on different replicas
(the `whoami` pids say so, and nginx's access log names the replica of each request); the answer to an
elicitation lands on another replica than the one waiting for it; DELETE ends the session everywhere
and leaves nothing in Redis.

``scripts/ensure-nginx`` and ``scripts/ensure-redis`` (run by ``make test``) install nginx and Redis;
the TS SDK comes from tests/interop/peers/ts (its npm ci is part of ``make test`` too). Everything
listens on 127.0.0.1; every process is started here, bounded by timeouts and stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from anyport import Client
from tests.redis_servers import RedisServer
from tests.scaleout.nginx import Nginx, nginx_balancer
from tests.scaleout.test_redis_replicas import NAME, replicas

PEERS = Path(__file__).with_name("peers")
TS_SDK = Path(__file__).parents[1] / "interop" / "peers" / "ts" / "node_modules" / "@modelcontextprotocol" / "client"
TOOLS = {"whoami", "count", "ask"}
#: A bound on every peer subprocess (its own run is bounded by a shorter --timeout).
PEER_TIMEOUT = 90


@dataclass
class Topology:
    redis: RedisServer
    prefix: str
    ports: list[int]
    nginx: Nginx

    def keys(self) -> list[str]:
        """The keys this topology's replicas left in Redis."""
        out = self.redis.cli("--scan", "--pattern", f"{self.prefix}:*")
        return [line for line in out.splitlines() if line]




@pytest.fixture
def topology(redis: RedisServer, request: pytest.FixtureRequest) -> Iterator[Topology]:
    prefix = f"nginx-{request.node.name}"
    with replicas(redis, prefix) as ports, nginx_balancer(ports) as nginx:
        yield Topology(redis, prefix, ports, nginx)


def _calls(log: list[dict[str, Any]], tool: str) -> list[dict[str, Any]]:
    return [
        e for e in log
        if e["method"] == "POST" and isinstance(e["body"], dict) and e["body"].get("method") == "tools/call"
        and e["body"].get("params", {}).get("name") == tool
    ]


def _elicitation_answers(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e for e in log
        if e["method"] == "POST" and isinstance(e["body"], dict) and "action" in (e["body"].get("result") or {})
    ]


def _check_balancing(topology: Topology, session_id: str, pids: list[str], asks: int) -> None:
    """What nginx's access log says about the session: only this session went through it, every
    request was balanced on its own (the replica of each whoami is the one whose pid came back), and
    each elicitation answer reached another replica than the one running the `ask` call."""
    log = topology.nginx.access_log()
    assert {e["session"] for e in log if e["session"]} == {session_id}, log
    assert all(e["status"] not in ("404", "502", "503", "504") for e in log), log  # no unknown session, no proxy failure
    upstreams = {f"127.0.0.1:{p}" for p in topology.ports}
    assert {e["upstream"] for e in log if e["session"]} <= upstreams, log

    whoami = _calls(log, "whoami")
    assert len(whoami) == len(pids), whoami
    replica_of = dict(zip([e["upstream"] for e in whoami], pids, strict=True))
    assert len(replica_of) == len(set(pids)) == len(set(replica_of.values())), (whoami, pids)  # one pid per replica
    assert all(replica_of[e["upstream"]] == pid for e, pid in zip(whoami, pids, strict=True)), (whoami, pids)

    calls, answers = _calls(log, "ask"), _elicitation_answers(log)
    assert len(calls) == len(answers) == asks, log
    for call, answer in zip(calls, answers, strict=True):  # both are logged in the order they were sent
        assert answer["session"] == call["session"] == session_id
        assert answer["upstream"] != call["upstream"], (call, answer)

    deletes = [e for e in log if e["method"] == "DELETE"]
    assert [e["status"] for e in deletes] in (["200"], ["204"]), deletes


def _assert_gone_everywhere(topology: Topology, session_id: str) -> None:
    """After DELETE on one replica, every replica (and nginx) answers 404 for the session, and no key
    of it is left in Redis."""
    headers = {
        "mcp-session-id": session_id, "accept": "application/json, text/event-stream",
        "content-type": "application/json", "mcp-protocol-version": "2025-11-25",
    }
    urls = [f"http://127.0.0.1:{p}/mcp" for p in topology.ports] + [topology.nginx.url]
    with httpx.Client(timeout=10) as http:
        for url in urls:
            r = http.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 9, "method": "ping"})
            assert r.status_code == 404, (url, r.status_code, r.text)
    assert topology.keys() == [], topology.keys()


def _run_peer(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, timeout=PEER_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err[-3000:]
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"the peer printed no report: {proc.stdout[:500]!r} / {err[-2000:]}") from None
    assert "session not found" not in (proc.stdout.decode() + err).lower(), (report, err[-3000:])
    return report


# -- ours ---------------------------------------------------------------------------------------------------


async def test_our_client_through_nginx(topology: Topology) -> None:
    """tools/list, whoami x6 over the three replicas, a call with progress, three elicitations each
    answered through another replica than the one waiting, and DELETE at the end."""
    progress: list[float] = []
    async with asyncio.timeout(60), httpx.AsyncClient(timeout=30) as http:
        async with Client(topology.nginx.url, era="legacy", httpx_client=http, on_elicit=lambda p: NAME, listen=False) as client:
            assert TOOLS <= {t.name for t in await client.list_tools()}
            pids = [(await client.call_tool("whoami")).text for _ in range(6)]
            assert len(set(pids)) == 3, pids  # round robin over three replicas: each served the session
            result = await client.call_tool("count", {"n": 5}, on_progress=lambda p, total, msg: progress.append(p))
            assert not result.is_error and result.text in pids and progress == [1, 2, 3, 4, 5]
            for _ in range(3):
                answer = (await client.call_tool("ask")).text
                assert answer.startswith("accept:ada:") and answer.rsplit(":", 1)[1] in pids, answer
            assert client._session is not None
            session_id = getattr(client._session.stream, "session_id", None)  # the HTTP stream's session
            assert isinstance(session_id, str) and session_id
    _check_balancing(topology, session_id, pids, asks=3)
    _assert_gone_everywhere(topology, session_id)


# -- the official Python SDK --------------------------------------------------------------------------------


@pytest.mark.interop
def test_official_python_sdk_through_nginx(topology: Topology) -> None:
    """mcp 2.3.0, legacy era: initialize, tools/list, whoami x6, an elicitation answered "ada", DELETE;
    never "Session not found" although no two consecutive requests reach the same replica."""
    report = _run_peer([
        sys.executable, str(PEERS / "sdk_session.py"), "--url", topology.nginx.url, "--calls", "6", "--timeout", "60",
    ])
    assert report["error"] is None, report
    assert TOOLS <= set(report["tools"]), report
    pids = report["pids"]
    assert len(pids) == 6 and len(set(pids)) >= 2, report
    assert report["ask"].startswith("accept:ada:"), report
    assert len(report["sessionIds"]) == 1, report
    assert all(status < 400 for _, status in report["http"]), report
    assert ["DELETE", 200] in report["http"] or ["DELETE", 204] in report["http"], report
    _check_balancing(topology, report["sessionIds"][0], pids, asks=1)
    _assert_gone_everywhere(topology, report["sessionIds"][0])


# -- the official TypeScript SDK ----------------------------------------------------------------------------


@pytest.mark.interop
def test_typescript_sdk_through_nginx(topology: Topology) -> None:
    """@modelcontextprotocol/client 2.4.0, legacy era: the same session as the Python SDK's."""
    node = shutil.which("node")
    # make test installs node and the TS peers before the tests run; their absence is a broken setup.
    assert node is not None, "node is not installed (make test installs it)"
    assert TS_SDK.is_dir(), "run make test (npm ci of tests/interop/peers/ts)"
    report = _run_peer([node, str(PEERS / "ts_session.mjs"), "--url", topology.nginx.url, "--calls", "6", "--timeout", "60"])
    assert report["error"] is None and report["errors"] == [], report
    assert TOOLS <= set(report["tools"]), report
    pids = report["pids"]
    assert len(pids) == 6 and len(set(pids)) >= 2, report
    assert report["ask"].startswith("accept:ada:"), report
    assert report["sessionId"], report
    assert all(status < 400 for _, status in report["http"]), report
    assert ["DELETE", 200] in report["http"] or ["DELETE", 204] in report["http"], report
    _check_balancing(topology, report["sessionId"], pids, asks=1)
    _assert_gone_everywhere(topology, report["sessionId"])
