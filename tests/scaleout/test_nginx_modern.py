"""Scale-out behind a real load balancer, 2026-07-28 era (issue 12): redis-server, three
`anyport serve --http --redis` replicas and nginx in front, balancing every request round robin.

On 2026-07-28 there is no session: every request carries its own ``_meta`` envelope and may land on
any replica. An elicitation is a multi round-trip request (MRTR): the first round answers
``input_required`` with a ``requestState`` sealed with the key ring of ``ANYPORT_STATE_KEYS``; the
client retries with ``inputResponses`` and that state, and the retry lands on another replica, which
can open the state only because every replica was started with the same key (one made by
``anyport keygen`` here). Without a shared key the retry is refused.

Three clients: ours (``Client(era="modern")``), the official Python SDK (``mcp==2.3.0``,
``Client(mode="2026-07-28")``) and the official TypeScript SDK (2.4.0,
``versionNegotiation: { mode: { pin: '2026-07-28' } }``). nginx's access log says which replica
served each request.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from anyport import Client, InvalidParamsError
from tests.redis_servers import RedisServer, free_port
from tests.scaleout.nginx import nginx_balancer
from tests.scaleout.test_nginx_topology import PEERS, TOOLS, TS_SDK, Topology, _calls, _run_peer
from tests.scaleout.test_redis_replicas import APP, NAME, _stop, _wait_ready, replicas

MODERN = "2026-07-28"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"




def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}


@pytest.fixture(scope="module")
def state_key() -> str:
    """One fresh key from `anyport keygen` (its first stdout line; the advice goes to stderr)."""
    out = subprocess.run(
        [sys.executable, "-m", "anyport", "keygen"], capture_output=True, text=True, timeout=30, check=True, env=_clean_env(),
    )
    key = out.stdout.splitlines()[0].strip()
    assert len(key) >= 43, out.stdout
    return key


@contextlib.contextmanager
def keyed_replicas(redis: RedisServer, prefix: str, key: str, n: int = 3) -> Iterator[list[int]]:
    """``n`` replicas sharing Redis and one ANYPORT_STATE_KEYS (``_serve`` strips it: started here)."""
    env = _clean_env() | {"ANYPORT_STATE_KEYS": key}
    ports = [free_port() for _ in range(n)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "anyport", "serve", APP, "--http", "--log-level", "warning", "--port", str(p),
             "--redis", redis.url, "--redis-prefix", prefix],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )
        for p in ports
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_ready(port, proc)
        yield ports
    finally:
        _stop(procs)


@pytest.fixture
def topology(redis: RedisServer, state_key: str, request: pytest.FixtureRequest) -> Iterator[Topology]:
    prefix = f"modern-{request.node.name}"
    with keyed_replicas(redis, prefix, state_key) as ports, nginx_balancer(ports) as nginx:
        yield Topology(redis, prefix, ports, nginx)


def _mcp_posts(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in log if e["uri"] == "/mcp"]


def _check_modern_balancing(topology: Topology, pids: list[str], ask: str) -> None:
    """What nginx's access log says: only stateless 2026-07-28 POSTs (no session id, no initialize,
    no GET stream, no DELETE), all answered 200 by one of the replicas; each whoami was answered by
    the replica nginx chose for it; the `ask` retry (inputResponses + requestState) reached another
    replica than its first round, and that replica is the one that answered."""
    log = topology.nginx.access_log()
    mcp = _mcp_posts(log)
    assert mcp and all(e["method"] == "POST" and e["status"] == "200" for e in mcp), log
    assert all(e["session"] == "" for e in mcp), log  # 2026-07-28: no Mcp-Session-Id anywhere
    bodies = [e["body"] for e in mcp]
    assert all(isinstance(b, dict) and b.get("method") != "initialize" for b in bodies), bodies
    assert all(b["params"]["_meta"][VERSION_KEY] == MODERN for b in bodies), bodies  # every request enveloped
    upstreams = {f"127.0.0.1:{p}" for p in topology.ports}
    assert {e["upstream"] for e in mcp} <= upstreams, log

    whoami = _calls(log, "whoami")
    assert len(whoami) == len(pids), whoami
    replica_of = dict(zip([e["upstream"] for e in whoami], pids, strict=True))
    assert len(replica_of) == len(set(pids)) == len(set(replica_of.values())) >= 2, (whoami, pids)
    assert all(replica_of[e["upstream"]] == pid for e, pid in zip(whoami, pids, strict=True)), (whoami, pids)

    rounds = _calls(log, "ask")
    first = [e for e in rounds if "inputResponses" not in e["body"]["params"]]
    retries = [e for e in rounds if "inputResponses" in e["body"]["params"]]
    assert len(first) == len(retries) == 1 and rounds == [first[0], retries[0]], rounds
    params = retries[0]["body"]["params"]
    assert isinstance(params.get("requestState"), str) and params["requestState"], params
    assert [answer["action"] for answer in params["inputResponses"].values()] == ["accept"], params
    assert retries[0]["upstream"] != first[0]["upstream"], (first, retries)  # the retry went elsewhere
    answered_by = ask.rsplit(":", 1)[1]
    if retries[0]["upstream"] in replica_of:
        assert replica_of[retries[0]["upstream"]] == answered_by, (retries, replica_of, ask)
    assert answered_by != replica_of.get(first[0]["upstream"]), (first, replica_of, ask)

    assert topology.keys() == [], topology.keys()  # stateless: the round's state travels in requestState


# -- ours ---------------------------------------------------------------------------------------------------


async def test_our_modern_client_through_nginx(topology: Topology) -> None:
    """tools/list, whoami x6 over the replicas, count with progress, and an elicitation whose
    retry is served by another replica than the first round."""
    progress: list[float] = []
    asked: list[dict[str, Any]] = []

    def on_elicit(params: dict[str, Any]) -> dict[str, Any]:
        asked.append(params)
        return NAME

    async with httpx.AsyncClient(timeout=30) as http:
        async with Client(topology.nginx.url, era="modern", httpx_client=http, on_elicit=on_elicit, timeout=30) as client:
            assert client.era == "modern" and client.protocol_version == MODERN
            assert TOOLS <= {t.name for t in await client.list_tools()}
            pids = [(await client.call_tool("whoami")).text for _ in range(6)]
            assert len(set(pids)) >= 2, pids
            result = await client.call_tool("count", {"n": 5}, on_progress=lambda p, total, msg: progress.append(p))
            assert not result.is_error and result.text in pids and progress == [1, 2, 3, 4, 5], (result, progress)
            answer = (await client.call_tool("ask")).text
    assert answer.startswith("accept:ada:"), answer
    assert len(asked) == 1 and asked[0]["message"] == "What is your name?", asked
    _check_modern_balancing(topology, pids, answer)


async def test_without_a_shared_key_the_retry_on_another_replica_is_refused(redis: RedisServer) -> None:
    """The control: replicas each with their own random key (no ANYPORT_STATE_KEYS) cannot open the
    requestState another one sealed; the retry gets an error, never a wrong answer nor a hang."""
    with replicas(redis, "modern-nokey") as ports, nginx_balancer(ports) as nginx:
        async with httpx.AsyncClient(timeout=30) as http:
            async with Client(nginx.url, era="modern", httpx_client=http, on_elicit=lambda p: NAME, timeout=30) as client:
                with pytest.raises(InvalidParamsError, match=r"invalid requestState \(unknown key\)"):
                    await client.call_tool("ask")
        rounds = _calls(nginx.access_log(), "ask")
    assert len(rounds) == 2 and rounds[0]["upstream"] != rounds[1]["upstream"], rounds
    assert "requestState" in rounds[1]["body"]["params"], rounds


# -- the official Python SDK --------------------------------------------------------------------------------


@pytest.mark.interop
def test_official_python_sdk_modern_through_nginx(topology: Topology) -> None:
    """mcp 2.3.0 with Client(mode="2026-07-28"): tools/list, whoami x6, count with progress, and the
    SDK's own input_required loop answering the elicitation on another replica."""
    report = _run_peer([
        sys.executable, str(PEERS / "sdk_modern_session.py"), "--url", topology.nginx.url, "--calls", "6", "--timeout", "60",
    ])
    assert report["error"] is None, report
    assert report["protocolVersion"] == MODERN, report
    assert TOOLS <= set(report["tools"]), report
    pids = report["pids"]
    assert len(pids) == 6 and len(set(pids)) >= 2, report
    assert report["count"] in pids and report["progress"] == [1, 2, 3], report
    assert report["ask"].startswith("accept:ada:") and report["elicitations"] == 1, report
    assert report["sessionIds"] == [], report
    assert report["http"] and all(exchange == ["POST", 200] for exchange in report["http"]), report
    _check_modern_balancing(topology, pids, report["ask"])


# -- the official TypeScript SDK ----------------------------------------------------------------------------


@pytest.mark.interop
def test_typescript_sdk_modern_through_nginx(topology: Topology) -> None:
    """@modelcontextprotocol/client 2.4.0 pinned to 2026-07-28: the same run as the Python SDK's."""
    node = shutil.which("node")
    # make test installs node and the TS peers before the tests run; their absence is a broken setup.
    assert node is not None, "node is not installed (make test installs it)"
    assert TS_SDK.is_dir(), "run make test (npm ci of tests/interop/peers/ts)"
    report = _run_peer([node, str(PEERS / "ts_modern_session.mjs"), "--url", topology.nginx.url, "--calls", "6", "--timeout", "60"])
    assert report["error"] is None and report["errors"] == [], report
    assert report["era"] == "modern" and report["protocolVersion"] == MODERN, report
    assert TOOLS <= set(report["tools"]), report
    pids = report["pids"]
    assert len(pids) == 6 and len(set(pids)) >= 2, report
    assert report["count"] in pids and report["progress"] == [1, 2, 3], report
    assert report["ask"].startswith("accept:ada:") and report["elicitations"] == 1, report
    assert report["sessionIds"] == [], report
    assert report["http"] and all(exchange == ["POST", 200] for exchange in report["http"]), report
    _check_modern_balancing(topology, pids, report["ask"])
