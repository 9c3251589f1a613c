"""What Redis-backed state costs (issue 12): Redis bytes per idle legacy session, Redis commands per
request, and what is left in Redis after every session is deleted.

Starts its own redis-server (free loopback port, no persistence) and one `anyport serve --http
--redis` replica of tests/interop/fixture_server.py, then, with a plain HTTP client:

1. opens ``--sessions`` legacy sessions (initialize + notifications/initialized): Redis
   ``used_memory`` and commands processed, per session;
2. sends ``--calls`` ``tools/call echo`` in one session, with JSON replies and with SSE replies
   (a resumable stream: its events are logged): Redis commands per request;
3. DELETEs every session: keys left (should be 0) and ``used_memory`` after.

Every loop is bounded; both processes are stopped at the end. Usage:
python bench/redis_costs.py [--sessions 1000] [--calls 1000] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http package that httpx imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import redis  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "interop" / "fixture_server.py"
VERSION = "2025-11-25"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready within {timeout} s")


def _stats(r: redis.Redis) -> tuple[int, int]:
    memory = r.info("memory")["used_memory"]
    commands = r.info("stats")["total_commands_processed"]
    return int(memory), int(commands)


def _headers(accept_sse: bool = True) -> dict[str, str]:
    return {"accept": "application/json, text/event-stream", "content-type": "application/json", "mcp-protocol-version": VERSION}


def _open(c: httpx.Client, url: str) -> str:
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}}}
    r = c.post(url, headers=_headers(), json=init)
    r.raise_for_status()
    sid = r.headers["mcp-session-id"]
    c.post(url, headers={**_headers(), "mcp-session-id": sid}, json={"jsonrpc": "2.0", "method": "notifications/initialized"}).raise_for_status()
    return sid


def _calls(c: httpx.Client, url: str, sid: str, n: int) -> None:
    h = {**_headers(), "mcp-session-id": sid}
    for i in range(n):
        body = {"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}}
        c.post(url, headers=h, json=body).raise_for_status()


def _serve(port: int, redis_url: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "anyport", "serve", str(APP), "--http", "--port", str(port), "--log-level", "warning",
         "--redis", redis_url, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )


def run(sessions: int, calls: int) -> dict[str, Any]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed (make test installs it)")
    rport, aport, jport = _free_port(), _free_port(), _free_port()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as folder:
        procs.append(subprocess.Popen(
            [binary, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        try:
            r = redis.Redis(port=rport)
            _wait(r.ping, "redis-server")
            url = f"redis://127.0.0.1:{rport}/0"
            procs.append(_serve(aport, url, "--redis-prefix", "sse"))
            procs.append(_serve(jport, url, "--redis-prefix", "json", "--json-response"))
            for port in (aport, jport):
                _wait(lambda p=port: httpx.get(f"http://127.0.0.1:{p}/readyz").status_code == 200, f"anyport on {port}")
            out: dict[str, Any] = {"sessions": sessions, "calls": calls}
            with httpx.Client(timeout=30) as c:
                sse_url, json_url = f"http://127.0.0.1:{aport}/mcp", f"http://127.0.0.1:{jport}/mcp"
                m0, c0 = _stats(r)
                ids = [_open(c, json_url) for _ in range(sessions)]
                m1, c1 = _stats(r)
                out["bytes_per_idle_session"] = round((m1 - m0) / sessions)
                out["commands_per_session_opened"] = round((c1 - c0) / sessions, 2)
                out["keys_per_idle_session"] = round(r.dbsize() / sessions, 2)
                for name, base in (("json", json_url), ("sse", sse_url)):
                    sid = _open(c, base)
                    before = _stats(r)[1]
                    _calls(c, base, sid, calls)
                    out[f"commands_per_call_{name}"] = round((_stats(r)[1] - before) / calls, 2)
                    ids.append(sid) if name == "json" else c.delete(base, headers={**_headers(), "mcp-session-id": sid})
                for sid in ids:
                    c.delete(json_url, headers={**_headers(), "mcp-session-id": sid})
                time.sleep(0.2)
                out["keys_left_after_delete"] = r.dbsize()
                out["used_memory_after_delete_minus_before"] = _stats(r)[0] - m0
            return out
        finally:
            for proc in reversed(procs):
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
                if proc.poll() is None:
                    proc.kill()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    result = run(args.sessions, args.calls)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if result["keys_left_after_delete"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
