"""Task leases with real processes (issue 12, durable tasks): a task whose replica was killed is
reported failed by another replica once its lease runs out, never `working` forever.

Two `anyport serve --http --redis` replicas of ``replica_app.py`` share a real redis-server, with
a short lease (``ANYPORT_TASK_LEASE_SECONDS``; ``_serve`` of ``test_redis_replicas`` strips
``ANYPORT_*`` variables, so the replicas are started here). One legacy session (its record in
Redis) sends each request to the replica the test chooses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from anyport import Client, JSONRPCError
from anyport.server._tasks import LEASE_ENV, LEASE_LOST
from tests.redis_servers import RedisServer, free_port
from tests.scaleout.test_redis_replicas import APP, _stop, _wait_ready

#: Short, so the test is quick; long enough for a busy machine to renew (every LEASE / 3).
LEASE = 1.5
#: How late past the lease a replica may notice (tasks/get polls; tasks/result re-checks at the lease).
MARGIN = 2.5




def _serve_leased(port: int, redis: RedisServer, prefix: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    env[LEASE_ENV] = str(LEASE)
    return subprocess.Popen(
        [sys.executable, "-m", "anyport", "serve", APP, "--http", "--log-level", "warning", "--port", str(port),
         "--redis", redis.url, "--redis-prefix", prefix],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )


@contextlib.contextmanager
def leased_replicas(redis: RedisServer, prefix: str, n: int = 2) -> Iterator[list[tuple[int, subprocess.Popen[bytes]]]]:
    ports = [free_port() for _ in range(n)]
    procs = [_serve_leased(p, redis, prefix) for p in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_ready(port, proc)
        yield list(zip(ports, procs, strict=True))
    finally:
        _stop(procs)


class Pinned(httpx.AsyncBaseTransport):
    """Every request to the replica on ``port``, which the test moves at will."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(port=self.port)
        request.headers["host"] = f"127.0.0.1:{self.port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_task_of_a_killed_replica_fails_when_its_lease_runs_out(redis: RedisServer) -> None:
    """slow_job(30) as a 2025-11-25 task on replica A; A stays alive past several renewals (B sees it
    working), then is killed (-9): B's tasks/get says failed within the lease and a margin, and a
    tasks/result waiting on B ends with the lease error instead of hanging."""
    with leased_replicas(redis, "leases") as [(port_a, proc_a), (port_b, _)]:
        pinned = Pinned(port_a)
        http = httpx.AsyncClient(transport=pinned, timeout=30)
        async with Client(
            f"http://127.0.0.1:{port_a}/mcp", era="legacy", protocol_version="2025-11-25", httpx_client=http,
            listen=False, timeout=30,
        ) as client:
            created = await client.request(
                "tools/call", {"name": "slow_job", "arguments": {"seconds": 30}, "task": {"ttl": 60_000}},
            )
            task_id = created["task"]["taskId"]
            assert created["task"]["status"] == "working"

            pinned.port = port_b  # B reads the record A holds a lease on
            await asyncio.sleep(LEASE * 1.5)  # past the first lease: A renewed it
            alive = await client.request("tasks/get", {"taskId": task_id})
            assert alive["status"] == "working", alive

            proc_a.kill()  # kill -9: no outcome written, no renewal any more
            proc_a.wait(10)
            killed = time.monotonic()
            waiting = asyncio.ensure_future(client.request("tasks/result", {"taskId": task_id}))
            status = "working"
            while status == "working" and time.monotonic() - killed < LEASE + MARGIN:
                got = await client.request("tasks/get", {"taskId": task_id})
                status = got["status"]
                if status == "working":
                    await asyncio.sleep(0.1)
            took = time.monotonic() - killed
            assert status == "failed", f"still {status} {took:.1f} s after the kill"
            assert got["statusMessage"] == LEASE_LOST
            assert took < LEASE + MARGIN

            with pytest.raises(JSONRPCError) as exc:
                await asyncio.wait_for(waiting, MARGIN)
            assert exc.value.code == -32603 and str(exc.value) == LEASE_LOST, exc.value
            with pytest.raises(JSONRPCError) as again:  # a fresh tasks/result: at once
                await asyncio.wait_for(client.request("tasks/result", {"taskId": task_id}), MARGIN)
            assert again.value.code == -32603
            listed = await client.request("tasks/list", {})
            assert [(t["taskId"], t["status"]) for t in listed["tasks"]] == [(task_id, "failed")]
        await http.aclose()


async def test_tasks_result_waiting_on_another_replica_wakes_when_the_lease_runs_out(redis: RedisServer) -> None:
    """tasks/result sent to B before A is killed: renewals wake no waiter, so B must look at the
    lease on its own; the wait ends with the failure about one lease after the kill."""
    with leased_replicas(redis, "leases-wait") as [(port_a, proc_a), (port_b, _)]:
        pinned = Pinned(port_a)
        http = httpx.AsyncClient(transport=pinned, timeout=30)
        async with Client(
            f"http://127.0.0.1:{port_a}/mcp", era="legacy", protocol_version="2025-11-25", httpx_client=http,
            listen=False, timeout=30,
        ) as client:
            created = await client.request(
                "tools/call", {"name": "slow_job", "arguments": {"seconds": 30}, "task": {"ttl": 60_000}},
            )
            task_id = created["task"]["taskId"]
            pinned.port = port_b
            waiting = asyncio.ensure_future(client.request("tasks/result", {"taskId": task_id}))
            await asyncio.sleep(LEASE * 1.5)  # several renewals went by: the wait holds
            assert not waiting.done()
            proc_a.kill()
            proc_a.wait(10)
            killed = time.monotonic()
            with pytest.raises(JSONRPCError) as exc:
                await asyncio.wait_for(waiting, LEASE + MARGIN)
            took = time.monotonic() - killed
            assert exc.value.code == -32603 and str(exc.value) == LEASE_LOST, exc.value
            assert took < LEASE + MARGIN
            got = await client.request("tasks/get", {"taskId": task_id})
            assert got["status"] == "failed" and got["statusMessage"] == LEASE_LOST
        await http.aclose()
