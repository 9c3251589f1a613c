"""What observing costs per request (issue 14): the stateless JSON ``tools/call`` path of the HTTP app,
driven in process through ASGI (no sockets, no uvicorn: only the app's own work, so the overhead
shows at its largest relative size), plain and with each part of ``anyport.observe`` on.

    python bench/observe_cost.py [--requests N] [--rounds R] [--json]

For each configuration: process CPU µs per request, the best of R rounds of N requests after a
warm-up; and the ratio to the plain app. The server CPU per request of a real server (uvicorn, HTTP
parsing, the socket) is ~40-50 µs on this machine (bench/RESULTS.md), so an added x µs here is at
most x / 40 of a real request's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/http.py would shadow the standard library's http package (prometheus-client imports it).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from anyport.observe import AccessLog, MCPMetrics, Observed, Tracing  # noqa: E402
from anyport.transports.http import create_app  # noqa: E402

BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "echo", "arguments": {"text": "hello, benchmark"}}}).encode()
SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
    "path": "/mcp", "raw_path": b"/mcp", "root_path": "", "query_string": b"", "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "headers": [
        (b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"), (b"mcp-protocol-version", b"2025-11-25"),
        (b"content-length", str(len(BODY)).encode()),
    ],
}


def _fixture() -> Any:
    from tests.interop.fixture_server import app

    return app


def configurations() -> dict[str, Callable[[], Any]]:
    def access() -> AccessLog:
        return AccessLog(open("/dev/null", "wb"))

    def sdk_tracing() -> Tracing:
        from opentelemetry.sdk.trace import TracerProvider

        return Tracing(TracerProvider())  # spans made and ended, exported nowhere

    return {
        "plain": lambda: _fixture(),
        "observed, all off": lambda: Observed(_fixture()),
        "metrics": lambda: Observed(_fixture(), metrics=MCPMetrics()),
        "metrics + JSON access log": lambda: Observed(_fixture(), metrics=MCPMetrics(), access=access()),
        "tracing, OTel API only (no SDK)": lambda: Observed(_fixture(), tracing=Tracing()),
        "tracing, OTel SDK, no exporter": lambda: Observed(_fixture(), tracing=sdk_tracing()),
    }


async def _run(app: Any, n: int) -> float:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    started = time.process_time()
    for _ in range(n):
        await app(SCOPE, receive, send)
    spent = time.process_time() - started
    assert sent[0]["status"] == 200 and b"hello, benchmark" in sent[-1]["body"], sent[:2]
    return spent / n * 1e6


async def measure(requests: int, rounds: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, make in configurations().items():
        app = create_app(make(), stateless=True, json_response=True)
        await _run(app, 500)
        out[name] = min([await _run(app, requests) for _ in range(rounds)])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    results = asyncio.run(measure(args.requests, args.rounds))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    base = results["plain"]
    print("| configuration | app CPU µs/request | added µs | vs plain |\n|---|---:|---:|---:|")
    for name, us in results.items():
        print(f"| {name} | {us:.1f} | {us - base:+.1f} | {us / base:.2f}x |")


if __name__ == "__main__":
    main()
