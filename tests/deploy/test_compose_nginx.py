"""deploy/compose run for real, as far as this machine allows (no Docker engine here): the nginx.conf
of the compose file in front of three `anyport serve` processes, started with the environment of the
compose file's anyport service and the Dockerfile's ENV and CMD, and a redis-server, all on free
loopback ports. A legacy session goes through it: an SSE answer whose events arrive as they are
written (nothing buffered), a GET stream that gets a notification sent by another replica, requests
spread over the three replicas with no stickiness. The image's HEALTHCHECK command runs too.

Only the lines that tie the conf to the containers change (upstream names, listen address, file
paths): tests/deploy/recipes.py ``local_nginx_conf``. nginx and redis-server come from
scripts/ensure-nginx and scripts/ensure-redis (make test).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from anyport.protocol import KeyRing
from tests.deploy.recipes import (
    compose,
    dockerfile_instructions,
    exec_form,
    local_nginx_conf,
    runtime_env,
    stages,
)
from tests.redis_servers import RedisServer, free_port, redis_server
from tests.scaleout.nginx import Nginx, _stop as stop_nginx, _wait_ready as wait_nginx, nginx_binary

APP = str(Path(__file__).parents[1] / "scaleout" / "replica_app.py")
VERSION = "2025-11-25"
POST = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def _container_env(port: int, redis_url: str, keys: str) -> dict[str, str]:
    """What a replica container sees: the image's ENV, then the compose service's environment, with
    the addresses of this machine instead of the compose network's."""
    runtime = stages(dockerfile_instructions())[-1]
    image = {k: v for k, v in runtime_env(runtime).items() if k.startswith(("ANYPORT_", "PYTHON"))}
    service = yaml_service()
    env = {**image, **{k: str(v) for k, v in service["environment"].items()}}
    assert env["ANYPORT_REDIS_URL"] == "redis://redis:6379/0"  # the compose service name
    assert env["ANYPORT_TRUSTED_PROXIES"] == "172.28.0.10"  # nginx's fixed address there
    env.update(
        ANYPORT_REDIS_URL=redis_url, ANYPORT_TRUSTED_PROXIES="127.0.0.1", ANYPORT_HOST="127.0.0.1",
        ANYPORT_PORT=str(port), ANYPORT_STATE_KEYS=keys,
    )
    return env


def yaml_service() -> dict[str, Any]:
    services = compose()["services"]
    assert {"redis", "anyport-1", "anyport-2", "anyport-3", "nginx"} == set(services)
    assert services["anyport-1"] == services["anyport-2"] == services["anyport-3"]
    service: dict[str, Any] = services["anyport-1"]
    return service


def _command() -> list[str]:
    """The image's CMD, run with this interpreter, serving the scale-out tests' app."""
    cmd = exec_form(stages(dockerfile_instructions())[-1], "CMD")
    assert cmd[:2] == ["anyport", "serve"] and cmd[2] == "/app/server.py", cmd
    return [sys.executable, "-m", "anyport", "serve", APP, *cmd[3:]]


def _wait_replica(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"replica on port {port} exited with {proc.returncode}: {err[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"replica on port {port} not ready within {timeout} s")


@contextlib.contextmanager
def _replicas(redis: RedisServer, n: int = 3) -> Iterator[list[int]]:
    ports = [free_port() for _ in range(n)]
    base = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    keys = KeyRing.generate_key()  # one key ring for every replica, as the compose file's secret
    procs = [
        subprocess.Popen(
            _command(), env={**base, **_container_env(p, redis.url, keys)},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for p in ports
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_replica(port, proc)
        yield ports
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def _compose_nginx(upstreams: list[int]) -> Iterator[Nginx]:
    with tempfile.TemporaryDirectory(prefix="anyport-compose-nginx-") as name:
        folder = Path(name)
        port = free_port()
        conf = folder / "nginx.conf"
        conf.write_text(local_nginx_conf(folder, port, upstreams))
        proc = subprocess.Popen(
            [nginx_binary(), "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            wait_nginx(port, proc, folder, 15.0)
            yield Nginx(folder, port, proc)
        finally:
            stop_nginx(proc)


@dataclass
class Topology:
    redis: RedisServer
    ports: list[int]
    nginx: Nginx


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    with redis_server() as redis, _replicas(redis) as ports, _compose_nginx(ports) as nginx:
        yield Topology(redis, ports, nginx)


def _events(block: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in block.replace("\r\n", "\n").split("\n\n"):
        ev: dict[str, Any] = {}
        for line in part.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                ev["id"] = value
            elif field == "data" and value.strip():
                ev["data"] = json.loads(value)
        if ev:
            out.append(ev)
    return out


def _read_events(response: httpx.Response, until: Any) -> list[tuple[float, dict[str, Any]]]:
    """(arrival time, event) of an SSE response, until ``until(event)`` is true or the stream ends."""
    seen: list[tuple[float, dict[str, Any]]] = []
    buf = ""
    for chunk in response.iter_text():
        buf += chunk.replace("\r\n", "\n")
        *blocks, buf = buf.split("\n\n")
        for block in blocks:
            for ev in _events(block):
                seen.append((time.monotonic(), ev))
                if until(ev):
                    return seen
    return seen


def _call(id_: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0", "id": id_, "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": {"progressToken": f"p{id_}"}},
    }


def _text(answer: dict[str, Any]) -> str:
    text: str = answer["result"]["content"][0]["text"]
    return text


def test_a_legacy_session_with_sse_and_a_get_stream_through_the_compose_nginx(topology: Topology) -> None:
    url = topology.nginx.url
    with httpx.Client(timeout=30) as c, httpx.Client(timeout=httpx.Timeout(30, read=10)) as listener:
        r = c.post(url, headers={**POST, "mcp-protocol-version": VERSION}, json={
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "deploy-test", "version": "1"}},
        })
        assert r.status_code == 200, r.text
        session = r.headers["mcp-session-id"]
        h = {**POST, "mcp-session-id": session, "mcp-protocol-version": VERSION}
        assert c.post(url, headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202

        # Requests are balanced one by one: three whoami calls, three replicas.
        pids = [_text(_events(c.post(url, headers=h, json=_call(i, "whoami", {})).text)[-1]["data"]) for i in (1, 2, 3)]
        assert len(set(pids)) == 3, pids

        # An SSE answer: its progress events reach the client as they are written, not at the end.
        with c.stream("POST", url, headers=h, json=_call(4, "slow_count", {"n": 4, "delay": 0.3})) as s:
            assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
            events = _read_events(s, lambda ev: ev.get("data", {}).get("id") == 4)
        progress = [(t, ev["data"]["params"]["progress"]) for t, ev in events if ev.get("data", {}).get("method") == "notifications/progress"]
        assert [p for _, p in progress] == [1, 2, 3, 4], events
        # Written 0.3 s apart: through a buffering proxy they would all arrive with the answer.
        assert events[-1][0] - progress[0][0] >= 0.6, "the first progress event waited in a buffer"
        assert progress[-1][0] - progress[0][0] >= 0.6, "the progress events arrived together (buffered)"
        answer = events[-1][1]["data"]
        assert answer["id"] == 4 and not answer["result"]["isError"] and _text(answer) in pids

        # A GET stream (held by one replica) gets the notification another replica sends.
        get_headers = {"accept": "text/event-stream", "mcp-session-id": session, "mcp-protocol-version": VERSION}
        with listener.stream("GET", url, headers=get_headers) as g:
            assert g.status_code == 200 and g.headers["content-type"].startswith("text/event-stream")
            time.sleep(0.3)  # the stream is registered with its replica
            r = c.post(url, headers=h, json=_call(5, "announce", {}))
            assert r.status_code == 200, r.text
            announcer = _text(_events(r.text)[-1]["data"])
            notes = _read_events(g, lambda ev: ev.get("data", {}).get("method") == "notifications/tools/list_changed")
            assert notes and notes[-1][1]["data"]["method"] == "notifications/tools/list_changed", notes
        assert announcer in pids

        r = c.delete(url, headers={"mcp-session-id": session, "mcp-protocol-version": VERSION})
        assert r.status_code in (200, 204), r.text
        assert c.post(url, headers=h, json={"jsonrpc": "2.0", "id": 9, "method": "ping"}).status_code == 404

    log = topology.nginx.access_log()
    upstreams = {e["upstream"] for e in log if e["uri"] == "/mcp"}
    assert upstreams == {f"127.0.0.1:{p}" for p in topology.ports}, log  # round robin over all three
    assert not [e for e in log if e["status"] in ("502", "503", "504")], log


def test_readiness_and_the_2026_era_through_the_compose_nginx(topology: Topology) -> None:
    """/readyz passes through; a stateless 2026-07-28 request (no session) is answered by any replica."""
    base = topology.nginx.url.removesuffix("/mcp")
    with httpx.Client(timeout=10) as c:
        assert c.get(f"{base}/readyz").json() == {"status": "ready"}
        assert c.get(f"{base}/healthz").json() == {"status": "ok"}
        body = {
            "jsonrpc": "2.0", "id": 1, "method": "tools/list",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientCapabilities": {}}},
        }
        r = c.post(topology.nginx.url, headers={**POST, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"}, json=body)
        assert r.status_code == 200, r.text
        payload = r.json() if r.headers["content-type"].startswith("application/json") else _events(r.text)[-1]["data"]
        assert "whoami" in {t["name"] for t in payload["result"]["tools"]}, payload


def test_the_image_healthcheck_command(topology: Topology) -> None:
    """The Dockerfile's HEALTHCHECK (a Python one-liner, no curl) passes against a live replica and
    fails where nothing listens."""
    cmd = exec_form(stages(dockerfile_instructions())[-1], "HEALTHCHECK")
    assert cmd[0] == "python", cmd
    argv = [sys.executable, *cmd[1:]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    ok = subprocess.run(argv, env={**env, "ANYPORT_PORT": str(topology.ports[0])}, capture_output=True, timeout=20, check=False)
    assert ok.returncode == 0, ok.stderr
    dead = subprocess.run(argv, env={**env, "ANYPORT_PORT": str(free_port())}, capture_output=True, timeout=20, check=False)
    assert dead.returncode != 0
