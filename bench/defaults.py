"""Out of the box vs tuned (issue 14: "defaults are what users get"): ``anyport serve FILE --http``
with no tuning flag next to the best configuration this repository knows, the same load.

    python bench/defaults.py [--rounds R] [--requests N] [--concurrency C]

Each configuration is a fresh ``anyport serve`` process on a free loopback port, loaded by
``anyport bench URL`` (stateless JSON replies, 2025-11-25); the configurations alternate R
times so that other load on the machine hits both alike. Reported: the median server CPU µs per
request and req/s of each, and the ratio of CPU (target: defaults <= 1.25x tuned). Also with
``--metrics-port`` and ``--access-log`` on, for the cost of leaving them on.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = str(ROOT / "tests" / "interop" / "fixture_server.py")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def configurations() -> dict[str, list[str]]:
    return {
        "defaults (no flags)": [],
        "tuned (--log-level warning)": ["--log-level", "warning"],
        "defaults + --metrics-port + --access-log": ["--metrics-port", str(_port()), "--access-log"],
    }


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")


def run_one(flags: list[str], requests: int, concurrency: int) -> dict[str, float]:
    port = _port()
    cmd = [sys.executable, "-m", "anyport", "serve", FIXTURE, "--http", "--stateless", "--json-response", "--port", str(port), *flags]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    try:
        _wait_healthy(port, proc)
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [sys.executable, "-m", "anyport", "bench", f"http://127.0.0.1:{port}/mcp", "--concurrency", str(concurrency),
                 "--requests", str(requests), "--server-pid", str(proc.pid), "--json", f"{tmp}/out.json"],
                capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
            )
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-2000:])
            data = json.loads(Path(tmp, "out.json").read_text())
        cell = next(c for c in data["cells"] if c["mode"] == "stateless" and c["concurrency"] == concurrency)
        return {"cpu_us": (cell["cpu_user"] + cell["cpu_sys"]) / cell["requests"] * 1e6, "rps": cell["requests"] / cell["seconds"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()
    configs = configurations()
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, flags in configs.items():
            samples[name].append(run_one(flags, args.requests, args.concurrency))
    tuned = statistics.median(s["cpu_us"] for s in samples["tuned (--log-level warning)"])
    print(f"stateless JSON, {args.concurrency} concurrent, median of {args.rounds} rounds\n")
    print("| configuration | server CPU µs/req | req/s | CPU vs tuned |\n|---|---:|---:|---:|")
    for name, rows in samples.items():
        cpu = statistics.median(r["cpu_us"] for r in rows)
        rps = statistics.median(r["rps"] for r in rows)
        print(f"| {name} | {cpu:.0f} | {rps:,.0f} | {cpu / tuned:.2f}x |")


if __name__ == "__main__":
    main()
