"""The scale-out soak (issue 12): live legacy sessions with open GET streams spread over 3 replicas
that share one Redis, then a long run of requests sent to the replicas in turn (no stickiness).
Reports the replicas' RSS after warm-up and at the end (the issue asks for < 10 % growth), Redis
memory with the sessions and after they are deleted, and the outcome of every request.

Starts its own redis-server and replicas on free loopback ports and stops them. Every loop is
bounded by a count and a time limit. Usage:
python bench/scaleout_soak.py [--sessions 1000] [--requests 100000] [--concurrency 32] [--limit 600]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import httpx  # noqa: E402
import redis  # noqa: E402
from tests.redis_servers import free_port, redis_server  # noqa: E402

APP = str(ROOT / "tests" / "interop" / "fixture_server.py")
VERSION = "2025-11-25"
POST = {"accept": "application/json, text/event-stream", "content-type": "application/json", "mcp-protocol-version": VERSION}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _open(c: httpx.AsyncClient, url: str) -> str:
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "soak", "version": "1"}}}
    r = await c.post(url, headers=POST, json=init)
    r.raise_for_status()
    sid = r.headers["mcp-session-id"]
    r = await c.post(url, headers={**POST, "mcp-session-id": sid}, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    r.raise_for_status()
    return sid


async def _hold_get(c: httpx.AsyncClient, url: str, sid: str, stop: asyncio.Event) -> None:
    headers = {"accept": "text/event-stream", "mcp-session-id": sid, "mcp-protocol-version": VERSION}
    with contextlib.suppress(httpx.HTTPError, asyncio.CancelledError):
        async with c.stream("GET", url, headers=headers, timeout=httpx.Timeout(30, read=None)) as r:
            async for _ in r.aiter_bytes():
                if stop.is_set():
                    return


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"sessions": args.sessions, "requests": args.requests}
    with redis_server() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
        ports = [free_port() for _ in range(3)]
        logs = [Path(server.folder) / f"replica-{i}.log" for i in range(3)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "anyport", "serve", APP, "--http", "--port", str(p), "--log-level", "warning",
                 "--redis", server.url, "--redis-prefix", "soak", "--max-sessions", str(args.sessions * 2)],
                stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env,
            )
            for p, log in zip(ports, logs, strict=True)
        ]
        r = redis.Redis(port=server.port)
        try:
            for p in ports:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        if httpx.get(f"http://127.0.0.1:{p}/readyz", timeout=1).status_code == 200:
                            break
                    time.sleep(0.1)
            asyncio.run(drive(args, ports, procs, r, out))
            out["redis_keys_after_delete"] = r.dbsize()
            out["redis_used_memory_after_delete_mb"] = round(r.info("memory")["used_memory"] / 2**20, 1)
            out["replica_log_tail"] = [line for f in logs for line in f.read_text(errors="replace").splitlines()[-60:]]
            base, end = out.get("rss_mb_after_warmup", []), out["rss_mb_at_end"]
            out["rss_growth_percent"] = [round(100 * (e - b) / b, 1) for b, e in zip(base, end, strict=False) if b]
            return out
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def drive(args: argparse.Namespace, ports: list[int], procs: list[subprocess.Popen[bytes]], r: Any, out: dict[str, Any]) -> None:
    """The sessions, their GET streams and the requests, against running replicas."""
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    limits = httpx.Limits(max_connections=args.sessions + args.concurrency + 16, max_keepalive_connections=args.concurrency + 16)
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=30, limits=limits) as c:
        sids: list[str] = []
        for i in range(args.sessions):
            sids.append(await _open(c, urls[i % 3]))
        # Each session's GET stream on the replica after the one that opened it.
        holders = [asyncio.create_task(_hold_get(c, urls[(i + 1) % 3], sid, stop)) for i, sid in enumerate(sids)]
        await asyncio.sleep(2.0)
        out["redis_used_memory_with_sessions_mb"] = round(r.info("memory")["used_memory"] / 2**20, 1)
        outcomes: collections.Counter[str] = collections.Counter()
        sent = 0
        started = time.monotonic()

        async def worker(w: int) -> None:
            nonlocal sent
            n = 0
            while sent < args.requests and time.monotonic() - started < args.limit:
                sent += 1
                n += 1
                sid = sids[(w * 7919 + n) % len(sids)]
                body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
                try:
                    resp = await c.post(urls[(w + n) % 3], headers={**POST, "mcp-session-id": sid}, json=body)
                    outcomes[str(resp.status_code)] += 1
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1
                if sent == args.requests // 10:  # warm-up done: the RSS baseline
                    out["rss_mb_after_warmup"] = [round(_rss_mb(p.pid), 1) for p in procs]

        await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
        took = time.monotonic() - started
        out["rss_mb_at_end"] = [round(_rss_mb(p.pid), 1) for p in procs]
        out["seconds"] = round(took, 1)
        out["requests_per_second"] = round(sent / took)
        out["outcomes"] = dict(outcomes)
        out["get_streams_still_open"] = sum(1 for h in holders if not h.done())
        stop.set()
        for h in holders:
            h.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
        for i, sid in enumerate(sids):
            await c.delete(urls[i % 3], headers={**POST, "mcp-session-id": sid})
    await asyncio.sleep(1.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--limit", type=float, default=600.0, help="seconds the request phase may take at most")
    result = run(p.parse_args())
    import json

    print(json.dumps(result, indent=2))
    ok = result["outcomes"].get("200", 0) == sum(result["outcomes"].values()) and result["redis_keys_after_delete"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
