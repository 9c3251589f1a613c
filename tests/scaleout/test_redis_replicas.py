"""Scale-out with Redis and real processes (issue 12): three `anyport serve --http --redis`
replicas, and one `--workers 3`, sharing a real redis-server started here; no sticky routing.

The client's HTTP transport sends each request to the next replica in turn (round robin), so the
consecutive requests of one legacy session land on different processes: `whoami` names the
process that answered each call.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from anyport import Client
from anyport.state import RedisState
from tests.redis_servers import RedisServer, free_port

APP = str(Path(__file__).with_name("replica_app.py"))
NAME = {"action": "accept", "content": {"name": "ada"}}




def _serve(*args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "anyport", "serve", APP, "--http", "--log-level", "warning", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica on port {port} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"replica on port {port} not ready within {timeout} s")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
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
def replicas(redis: RedisServer, prefix: str, n: int = 3) -> Iterator[list[int]]:
    ports = [free_port() for _ in range(n)]
    procs = [_serve("--port", str(p), "--redis", redis.url, "--redis-prefix", prefix) for p in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_ready(port, proc)
        yield ports
    finally:
        _stop(procs)


class RoundRobin(httpx.AsyncBaseTransport):
    """Each request to the next replica in turn: a load balancer with no stickiness at all."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.sent = 0
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        port = self.ports[self.sent % len(self.ports)]
        self.sent += 1
        request.url = request.url.copy_with(port=port)
        request.headers["host"] = f"127.0.0.1:{port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _keys(redis: RedisServer, prefix: str) -> list[bytes]:
    state = RedisState.from_url(redis.url, prefix=prefix)
    try:
        return [k async for k in state.client.scan_iter(match=f"{prefix}:*", count=1000)]
    finally:
        await state.aclose()


async def test_a_legacy_session_is_served_by_every_replica_in_turn(redis: RedisServer) -> None:
    """DESIGN.md §4: initialize on one replica, then lists, calls with progress and an elicitation
    whose answer POST lands on another replica than the one waiting for it; DELETE is seen by all,
    and no key of the session is left in Redis afterwards."""
    with replicas(redis, "rr") as ports:
        balancer = RoundRobin(ports)
        http = httpx.AsyncClient(transport=balancer, timeout=30)
        progress: list[float] = []
        async with Client(
            f"http://127.0.0.1:{ports[0]}/mcp", era="legacy", httpx_client=http, on_elicit=lambda p: NAME, listen=False,
        ) as client:
            assert {"whoami", "count", "ask"} <= {t.name for t in await client.list_tools()}
            pids = [(await client.call_tool("whoami")).text for _ in range(6)]
            assert len(set(pids)) == 3, pids  # every replica served the same session
            result = await client.call_tool("count", {"n": 5}, on_progress=lambda p, total, msg: progress.append(p))
            assert not result.is_error and progress == [1, 2, 3, 4, 5]
            for _ in range(3):  # whichever replica runs it, the answer comes back through another one
                answer = (await client.call_tool("ask")).text
                assert answer.startswith("accept:ada:"), answer
            session_id = client._session.stream.session_id  # type: ignore[attr-defined]
            assert session_id
        await http.aclose()
        assert balancer.sent >= 12
        async with httpx.AsyncClient(timeout=10) as check:
            for port in ports:  # DELETE on one replica: the session is gone on every one (T-HTTP-42)
                r = await check.post(
                    f"http://127.0.0.1:{port}/mcp", headers={
                        "mcp-session-id": session_id, "accept": "application/json, text/event-stream",
                        "content-type": "application/json", "mcp-protocol-version": "2025-11-25",
                    }, json={"jsonrpc": "2.0", "id": 9, "method": "ping"},
                )
                assert r.status_code == 404, (port, r.status_code, r.text)
        assert await _keys(redis, "rr") == []


async def test_workers_share_one_port_and_the_sessions(redis: RedisServer) -> None:
    """`--workers 3 --redis`: one port, three processes; new connections spread over them and the
    session goes on whichever worker accepts each one."""
    port = free_port()
    proc = _serve("--port", str(port), "--workers", "3", "--redis", redis.url, "--redis-prefix", "workers")
    try:
        _wait_ready(port, proc)
        http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))
        async with Client(
            f"http://127.0.0.1:{port}/mcp", era="legacy", httpx_client=http, on_elicit=lambda p: NAME, listen=False,
        ) as client:
            pids = {(await client.call_tool("whoami")).text for _ in range(40)}
            assert (await client.call_tool("ask")).text.startswith("accept:ada:")
        await http.aclose()
        assert len(pids) >= 2, pids
    finally:
        _stop([proc])


def test_workers_without_shared_state_are_refused() -> None:
    proc = _serve("--port", str(free_port()), "--workers", "3")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert b"--workers 3 needs shared state" in err


def test_redis_unreachable_at_start_is_one_line_and_a_failure() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    proc = _serve("--port", str(free_port()), "--redis", url)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert len(lines) == 1 and "is unreachable" in lines[0] and "Traceback" not in err.decode(), err


async def test_a_task_made_on_one_replica_is_read_and_awaited_on_the_others(redis: RedisServer) -> None:
    """Durable tasks (F-TASK-01/02): the task record lives in Redis; tasks/get and tasks/result
    work from replicas that did not create it, and tasks/list shows it to its session anywhere."""
    with replicas(redis, "tasks") as ports:
        balancer = RoundRobin(ports)
        http = httpx.AsyncClient(transport=balancer, timeout=30)
        async with Client(f"http://127.0.0.1:{ports[0]}/mcp", era="legacy", protocol_version="2025-11-25", httpx_client=http, listen=False) as client:
            created = await client.request("tools/call", {"name": "slow_job", "arguments": {"seconds": 0.5}, "task": {"ttl": 60_000}})
            task_id = created["task"]["taskId"]
            seen = {(await client.request("tasks/get", {"taskId": task_id}))["status"] for _ in range(3)}
            assert seen <= {"working", "completed"}
            result = await client.request("tasks/result", {"taskId": task_id})
            assert result["content"][0]["text"].isdigit()
            assert (await client.request("tasks/get", {"taskId": task_id}))["status"] == "completed"
            listed = await client.request("tasks/list", {})
            assert [t["taskId"] for t in listed["tasks"]] == [task_id]
        await http.aclose()
