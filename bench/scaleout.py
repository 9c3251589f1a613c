"""Throughput of the scale-out topology, for context (issue 12): 3 replicas with Redis behind nginx
(round robin, no stickiness), against one replica with Redis and one in memory, each measured with
``anyport bench URL`` (legacy sessions, one per worker; every request of a session may land on a
different replica behind nginx).

Everything runs on this machine: on 2 cores, three replicas, nginx, Redis and the load client share
them, so the figure says what the topology costs here, not how it scales on more cores.
Starts its own redis-server and nginx on free loopback ports (tests/redis_servers.py,
tests/scaleout/nginx.py) and stops every process it started.

Usage: python bench/scaleout.py [--seconds 2] [--concurrency 1,16,64]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/http.py would shadow the standard library's http package; the repo root holds tests/.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import httpx  # noqa: E402
from tests.redis_servers import free_port, redis_server  # noqa: E402
from tests.scaleout.nginx import nginx_balancer  # noqa: E402

APP = str(ROOT / "tests" / "interop" / "fixture_server.py")


def _serve(port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "anyport", "serve", APP, "--http", "--port", str(port), "--log-level", "warning", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )


def _ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"no replica on port {port} within {timeout} s")


@contextlib.contextmanager
def _replicas(n: int, *extra: str) -> Iterator[list[int]]:
    ports = [free_port() for _ in range(n)]
    procs = [_serve(p, *extra) for p in ports]
    try:
        for p in ports:
            _ready(p)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _bench(url: str, seconds: float, concurrency: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "anyport", "bench", url, "--era", "legacy", "--tool", "echo", "--arg", "text=hi",
         "--seconds", str(seconds), "--concurrency", concurrency],
        capture_output=True, text=True, timeout=600, check=False,
    )
    return out.stdout.strip() or out.stderr.strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--concurrency", default="1,16,64")
    args = p.parse_args()
    with redis_server() as redis:
        print("## one replica, in memory\n")
        with _replicas(1) as ports:
            print(_bench(f"http://127.0.0.1:{ports[0]}/mcp", args.seconds, args.concurrency))
        print("\n## one replica, Redis\n")
        with _replicas(1, "--redis", redis.url, "--redis-prefix", "one") as ports:
            print(_bench(f"http://127.0.0.1:{ports[0]}/mcp", args.seconds, args.concurrency))
        print("\n## three replicas, Redis, behind nginx (round robin, no stickiness)\n")
        with _replicas(3, "--redis", redis.url, "--redis-prefix", "three") as ports, nginx_balancer(ports) as nginx:
            print(_bench(f"{nginx.url}", args.seconds, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
