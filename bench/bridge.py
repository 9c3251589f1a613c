"""The bridge's costs: ``anyport bridge -- COMMAND`` against the same stdio server spoken to directly.

The server is the official reference server (@modelcontextprotocol/server-everything, its ``echo``
tool) when ``make test`` installed it, else tests/bridge/peers/rogue.py (its ``pid`` tool). Phases:

1. added latency per call: sequential ``tools/call`` on stdio directly (raw JSON lines) and through
   the bridge (one legacy Streamable HTTP session, keep-alive); p50 / p99 in milliseconds;
2. throughput: ``--sessions`` (16) concurrent legacy sessions for ``--seconds``, one child each;
   calls per second (and the same with ``--shared`` children, ``--concurrency`` 16);
3. child start cost: the first call of a new session with no warm spare (spawn + initialize + call)
   and with warm spares, median of ``--starts``; a 2026-07-28 request (a child of its own) too;
4. with redis-server installed: two bridges sharing it (``--redis``, ``--advertise-url``), one
   session's calls on the replica holding its child and on the other one, which forwards them;
5. ``--soak N``: N sessions opened, used and deleted by 8 workers; children and the bridge's RSS
   before and after;
6. ``--peers``: phases 1 and 2 (latency, 16-session throughput) through two other stdio-to-HTTP
   bridges too, in the same run: supergateway 4 (npm, ``--outputTransport streamableHttp
   --stateful``: a child per session) installed into ``bench/.bridge-peers``, and sparfenyuk's
   mcp-proxy (PyPI, Streamable HTTP at /mcp, one child for every session) installed into the venv
   ``bench/.bridge-peers/venv`` (not bench/.peers-venv: mcp-proxy needs ``mcp<2``, which would
   replace that environment's mcp 2.3.0). A peer that cannot be installed or started is reported as
   unavailable, with the reason.

Every loop is bounded by a count and by time; the bridge runs as ``python -m anyport.cli._bridge``
on a free loopback port and is stopped at the end. Tables go to stdout, raw figures to
``bench/results/bridge-<timestamp>.json``.

Usage: python bench/bridge.py [--quick] [--calls N] [--sessions N] [--seconds S] [--starts N] [--soak N] [--peers]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]  # bench/http.py would shadow the standard library's http package, which httpx imports

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "tests" / "bridge" / "peers"
EVERYTHING = PEERS / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
MODERN = "2026-07-28"
BRIDGE_PEERS = ROOT / "bench" / ".bridge-peers"
SUPERGATEWAY = "supergateway@4.0.0"
MCP_PROXY = "mcp-proxy==0.13.0"
PRELOAD = ROOT / "tests" / "conformance" / "bind-localhost.cjs"  # keeps a Node server that names no host on loopback
_VERSION = re.compile(rb'"protocolVersion"\s*:\s*"([^"]+)"')


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def server(choice: str = "auto") -> tuple[list[str], str, dict[str, Any]]:
    """(command, tool, arguments) of the server to bridge."""
    node = shutil.which("node")
    if choice != "rogue" and EVERYTHING.is_file() and node:
        return [node, str(EVERYTHING), "stdio"], "echo", {"message": "hi"}
    return [sys.executable, str(PEERS / "rogue.py")], "pid", {}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


def init_body(version: str = "2025-11-25") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}


def call_body(id_: int, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": tool, "arguments": args}}


# -- direct stdio ------------------------------------------------------------------------------


def direct_latency(cmd: list[str], tool: str, args: dict[str, Any], calls: int) -> list[float]:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        def ask(msg: dict[str, Any]) -> dict[str, Any]:
            proc.stdin.write(orjson.dumps(msg) + b"\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            while True:
                line = proc.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    raise RuntimeError("the server exited")
                answer = orjson.loads(line)
                if answer.get("id") == msg["id"]:
                    return answer  # type: ignore[no-any-return]

        ask(init_body())
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        out = []
        for i in range(calls):
            t = time.perf_counter()
            ask(call_body(i + 1, tool, args))
            out.append(time.perf_counter() - t)
        return out
    finally:
        proc.stdin.close()
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


# -- through the bridge --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def bridge(cmd: list[str], *options: str, port: int | None = None) -> Iterator[tuple[str, int]]:
    port = port or free_port()
    argv = [sys.executable, "-m", "anyport.cli._bridge", "bridge", "--port", str(port), "--log-level", "warning", *options, "--", *cmd]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the bridge exited ({proc.returncode})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the bridge did not become ready")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def negotiated(r: httpx.Response) -> str:
    """The protocol version an initialize answer settled on (a peer may not speak 2025-11-25)."""
    m = _VERSION.search(r.content)
    return m.group(1).decode() if m else "2025-11-25"


def session(c: httpx.Client) -> dict[str, str]:
    r = c.post("/mcp", headers=HEADERS, json=init_body())
    r.raise_for_status()
    h = {**HEADERS, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": negotiated(r)}
    c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return h


def checked(r: httpx.Response) -> None:
    if r.status_code != 200 or b'"result"' not in r.content:
        raise RuntimeError(f"bad answer: {r.status_code} {r.text[:200]}")


def bridge_latency(base: str, tool: str, args: dict[str, Any], calls: int) -> list[float]:
    with httpx.Client(base_url=base, timeout=30) as c:
        h = session(c)
        checked(c.post("/mcp", headers=h, json=call_body(0, tool, args)))  # the child starts here
        out = []
        for i in range(calls):
            t = time.perf_counter()
            checked(c.post("/mcp", headers=h, json=call_body(i + 1, tool, args)))
            out.append(time.perf_counter() - t)
        c.delete("/mcp", headers=h)
        return out


async def throughput(base: str, tool: str, args: dict[str, Any], sessions: int, seconds: float) -> float:
    """Calls per second of ``sessions`` concurrent sessions, once every one has its child."""
    limits = httpx.Limits(max_connections=sessions * 2, max_keepalive_connections=sessions * 2)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as c:
        async def open_one() -> dict[str, str]:
            r = await c.post("/mcp", headers=HEADERS, json=init_body())
            h = {**HEADERS, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": negotiated(r)}
            await c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            checked(await c.post("/mcp", headers=h, json=call_body(0, tool, args)))  # its child is up
            return h

        async def run(h: dict[str, str], end: float) -> int:
            done = 0
            while time.monotonic() < end:
                done += 1
                checked(await c.post("/mcp", headers=h, json=call_body(done, tool, args)))
            return done

        opened = await asyncio.wait_for(asyncio.gather(*(open_one() for _ in range(sessions))), 300)
        started = time.monotonic()
        counts = await asyncio.wait_for(asyncio.gather(*(run(h, started + seconds) for h in opened)), seconds + 120)
        elapsed = time.monotonic() - started
        await asyncio.gather(*(c.delete("/mcp", headers=h) for h in opened))
        return sum(counts) / elapsed


def replica_latency(cmd: list[str], tool: str, args: dict[str, Any], calls: int) -> dict[str, dict[str, float]]:
    """Two bridges sharing a redis-server (started here on a free loopback port), with plain round
    robin in mind: one session's calls on the replica that holds its child, and on the other one,
    which forwards them (``--advertise-url``); p50 / p99 of each, interleaved."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.redis_servers import redis_server

    with redis_server() as redis, contextlib.ExitStack() as stack:
        bases = []
        for _ in range(2):
            port = free_port()
            options = ("--spares", "0", "--redis", redis.url, "--redis-prefix", "bench", "--advertise-url", f"http://127.0.0.1:{port}")
            bases.append(stack.enter_context(bridge(cmd, *options, port=port))[0])
        with httpx.Client(base_url=bases[0], timeout=30) as owner, httpx.Client(base_url=bases[1], timeout=30) as other:
            h = session(owner)
            checked(owner.post("/mcp", headers=h, json=call_body(0, tool, args)))  # the child starts on the first replica
            times: dict[str, list[float]] = {"owner": [], "forwarded": []}
            for i in range(calls):
                name, c = ("owner", owner) if i % 2 == 0 else ("forwarded", other)
                t = time.perf_counter()
                checked(c.post("/mcp", headers=h, json=call_body(i + 1, tool, args)))
                times[name].append(time.perf_counter() - t)
            owner.delete("/mcp", headers=h)
    return {name: {"p50": pct(v, 50), "p99": pct(v, 99)} for name, v in times.items()}


def first_calls(base: str, tool: str, args: dict[str, Any], starts: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, timeout=60) as c:
        for _ in range(starts):
            h = session(c)
            t = time.perf_counter()
            checked(c.post("/mcp", headers=h, json=call_body(1, tool, args)))
            out.append(time.perf_counter() - t)
            c.delete("/mcp", headers=h)
            time.sleep(0.5)  # let the pool start its next spare
    return out


def modern_calls(base: str, tool: str, args: dict[str, Any], starts: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, timeout=60) as c:
        for i in range(starts):
            body = call_body(i, tool, args)
            body["params"]["_meta"] = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
            h = {**HEADERS, "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": tool}
            t = time.perf_counter()
            checked(c.post("/mcp", headers=h, json=body))
            out.append(time.perf_counter() - t)
            time.sleep(0.5)
    return out


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                if int(f.read().split(")")[-1].split()[1]) == pid:
                    count += 1
    return count


def soak(base: str, pid: int, tool: str, args: dict[str, Any], total: int) -> dict[str, Any]:
    import threading

    def worker(n: int, errors: list[str]) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            for _ in range(n):
                try:
                    h = session(c)
                    checked(c.post("/mcp", headers=h, json=call_body(1, tool, args)))
                    c.delete("/mcp", headers=h)
                except Exception as exc:
                    errors.append(repr(exc))

    def run(n: int) -> list[str]:
        errors: list[str] = []
        threads = [threading.Thread(target=worker, args=(n // 8, errors)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(3600)
        return errors

    run(80)
    time.sleep(3)
    before = {"children": children(pid), "rss": rss_mib(pid)}
    started = time.monotonic()
    errors = run(total)
    elapsed = time.monotonic() - started
    time.sleep(5)
    after = {"children": children(pid), "rss": rss_mib(pid)}
    return {"sessions": total, "seconds": elapsed, "errors": len(errors), "before": before, "after": after}


# -- peer bridges (--peers) ----------------------------------------------------------------------


def _install(cmd: list[str], limit: float) -> str | None:
    """None when ``cmd`` succeeded, else why not."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False, cwd=BRIDGE_PEERS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(cmd[:3])}: {type(exc).__name__}: {exc}"
    if done.returncode != 0:
        return f"{' '.join(cmd[:3])} failed: {(done.stderr or done.stdout).strip()[-400:]}"
    return None


def ensure_supergateway() -> tuple[str | None, str]:
    """(path of the supergateway CLI, note) — installed with npm into bench/.bridge-peers on first use."""
    binary = BRIDGE_PEERS / "node_modules" / ".bin" / "supergateway"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            return None, "npm is not installed"
        BRIDGE_PEERS.mkdir(parents=True, exist_ok=True)
        log(f"installing {SUPERGATEWAY} into bench/.bridge-peers ...")
        why = _install([npm, "install", "--no-audit", "--no-fund", "--prefix", str(BRIDGE_PEERS), SUPERGATEWAY], 300)
        if why or not binary.exists():
            return None, f"could not install {SUPERGATEWAY}: {why or 'no supergateway binary'}"
    return str(binary), SUPERGATEWAY


def ensure_mcp_proxy() -> tuple[str | None, str]:
    """(path of the mcp-proxy CLI, note) — installed with pip into bench/.bridge-peers/venv on first use."""
    venv = BRIDGE_PEERS / "venv"
    binary = venv / "bin" / "mcp-proxy"
    if not binary.exists():
        BRIDGE_PEERS.mkdir(parents=True, exist_ok=True)
        log(f"installing {MCP_PROXY} into bench/.bridge-peers/venv ...")
        why = _install([sys.executable, "-m", "venv", str(venv)], 120) or _install(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input",
             "--timeout", "30", "--retries", "2", MCP_PROXY], 600)
        if why or not binary.exists():
            return None, f"could not install {MCP_PROXY}: {why or 'no mcp-proxy binary'}"
    return str(binary), MCP_PROXY


@contextlib.contextmanager
def peer(argv: list[str], env: dict[str, str]) -> Iterator[str]:
    """A peer bridge in a process group of its own; yields its base URL once an initialize gets a session."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace")[-600:] if proc.stderr else ""
                raise RuntimeError(f"{Path(argv[0]).name} exited ({proc.returncode}): {err}")
            with contextlib.suppress(httpx.HTTPError), httpx.Client(base_url=base, timeout=5) as c:
                r = c.post("/mcp", headers=HEADERS, json=init_body())
                if r.status_code == 200 and "mcp-session-id" in r.headers:
                    c.delete("/mcp", headers={**HEADERS, "mcp-session-id": r.headers["mcp-session-id"]})
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{Path(argv[0]).name} did not answer an initialize within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


def peer_commands(cmd: list[str]) -> dict[str, tuple[list[str] | None, dict[str, str], str]]:
    """{name: (argv with {port}, environment, note)}; argv None: unavailable, the note says why."""
    out: dict[str, tuple[list[str] | None, dict[str, str], str]] = {}
    sg, note = ensure_supergateway()
    if sg is not None and any(" " in part for part in cmd):
        sg, note = None, "supergateway takes the command as one string: the server's path must have no space"
    node_env = {**os.environ, "NODE_OPTIONS": f"--require {PRELOAD}"}  # supergateway's listen() names no host
    out["supergateway"] = (
        None if sg is None else [sg, "--stdio", " ".join(cmd), "--outputTransport", "streamableHttp", "--stateful",
                                 "--port", "{port}", "--streamableHttpPath", "/mcp", "--logLevel", "none"],
        node_env, note + " (--outputTransport streamableHttp --stateful: a child per session)" if sg else note)
    mp, note = ensure_mcp_proxy()
    out["mcp-proxy"] = (
        None if mp is None else [mp, "--host", "127.0.0.1", "--port", "{port}", "--log-level", "WARNING", "--", *cmd],
        dict(os.environ), note + " (one child for every session)" if mp else note)
    return out


def measure_peers(cmd: list[str], tool: str, targs: dict[str, Any], calls: int, sessions: int, seconds: float,
                  direct: list[float]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, (argv, env, note) in peer_commands(cmd).items():
        if argv is None:
            log(f"{name}: unavailable: {note}")
            results[name] = {"unavailable": note}
            continue
        try:
            with peer(argv, env) as base:
                log(f"{name}: latency ...")
                via = bridge_latency(base, tool, targs, calls)
                log(f"{name}: throughput, {sessions} sessions ...")
                tp = asyncio.run(throughput(base, tool, targs, sessions, seconds))
        except Exception as exc:  # a peer that fails is a figure too: it is reported, the run goes on
            log(f"{name}: failed: {exc!r}")
            results[name] = {"unavailable": f"{note}: failed: {exc!r}"[:600]}
            continue
        results[name] = {"note": note, "p50": pct(via, 50), "p99": pct(via, 99),
                         "added_p50": pct(via, 50) - pct(direct, 50), "added_p99": pct(via, 99) - pct(direct, 99),
                         "throughput": tp}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few calls, short phases")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--soak", type=int, default=0, metavar="N", help="also open and close N sessions (e.g. 10000)")
    parser.add_argument("--server", choices=("auto", "everything", "rogue"), default="auto",
                        help="the reference server when installed (auto), or the small Python one (faster to start)")
    parser.add_argument("--skip", action="store_true", help="with --soak: only the soak")
    parser.add_argument("--peers", action="store_true",
                        help="also measure latency and throughput through supergateway 4 and mcp-proxy (installed into bench/.bridge-peers)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.calls, args.seconds, args.starts = 200, 3.0, 3
    cmd, tool, targs = server(args.server)
    log(f"server: {' '.join(cmd)} (tool {tool})")
    results: dict[str, Any] = {"server": cmd, "tool": tool}
    if not args.skip:
        log("direct stdio latency ...")
        direct = direct_latency(cmd, tool, targs, args.calls)
        with bridge(cmd, "--spares", "0", "--max", str(args.sessions + 8)) as (base, _pid):
            log("bridge latency ...")
            via = bridge_latency(base, tool, targs, args.calls)
            log("throughput, one child per session ...")
            per_session = asyncio.run(throughput(base, tool, targs, args.sessions, args.seconds))
            log("child start cost, no spare ...")
            cold = first_calls(base, tool, targs, args.starts)
        with bridge(cmd, "--spares", "2") as (base, _pid):
            log("child start cost, warm spares ...")
            warm = first_calls(base, tool, targs, args.starts)
            modern = modern_calls(base, tool, targs, args.starts)
        with bridge(cmd, "--shared", "--min", "2", "--max", "2", "--concurrency", "16") as (base, _pid):
            log("throughput, shared children ...")
            shared = asyncio.run(throughput(base, tool, targs, args.sessions, args.seconds))
        if shutil.which("redis-server"):
            log("two replicas sharing a redis-server: calls on the child's replica and forwarded from the other ...")
            results["replicas_ms"] = replica_latency(cmd, tool, targs, args.calls)
        results["latency_ms"] = {
            "direct": {"p50": pct(direct, 50), "p99": pct(direct, 99)},
            "bridge": {"p50": pct(via, 50), "p99": pct(via, 99)},
        }
        results["throughput_calls_per_s"] = {"per_session": per_session, "shared": shared, "sessions": args.sessions}
        if args.peers:
            results["peers"] = measure_peers(cmd, tool, targs, args.calls, args.sessions, args.seconds, direct)
        results["first_call_ms"] = {
            "no_spare": statistics.median(cold) * 1000, "warm_spare": statistics.median(warm) * 1000,
            "modern_own_child": statistics.median(modern) * 1000,
        }
    if args.soak:
        with bridge(cmd, "--spares", "2", "--max", "64") as (base, pid):
            log(f"soak: {args.soak} sessions ...")
            results["soak"] = soak(base, pid, tool, targs, args.soak)
    if not args.skip:
        lat = results["latency_ms"]
        print("| path | p50 ms | p99 ms |\n|---|---|---|")
        for name in ("direct", "bridge"):
            print(f"| {name} | {lat[name]['p50']:.2f} | {lat[name]['p99']:.2f} |")
        print(f"\nadded by the bridge: p50 +{lat['bridge']['p50'] - lat['direct']['p50']:.2f} ms, "
              f"p99 +{lat['bridge']['p99'] - lat['direct']['p99']:.2f} ms")
        if "replicas_ms" in results:
            rep = results["replicas_ms"]
            print(f"\ntwo replicas, --redis: a call on the child's replica p50 {rep['owner']['p50']:.2f} ms / p99 {rep['owner']['p99']:.2f} ms; "
                  f"forwarded from the other replica p50 {rep['forwarded']['p50']:.2f} ms / p99 {rep['forwarded']['p99']:.2f} ms")
        tp = results["throughput_calls_per_s"]
        print(f"\nthroughput, {args.sessions} sessions: {tp['per_session']:.0f} calls/s (a child each), {tp['shared']:.0f} calls/s (2 shared children)")
        if args.peers:
            print(f"\n| bridge | p50 ms | p99 ms | added p50 | added p99 | {args.sessions} sessions, calls/s |\n|---|---|---|---|---|---|")
            print(f"| anyport bridge (a child per session) | {lat['bridge']['p50']:.2f} | {lat['bridge']['p99']:.2f} | "
                  f"+{lat['bridge']['p50'] - lat['direct']['p50']:.2f} | +{lat['bridge']['p99'] - lat['direct']['p99']:.2f} | "
                  f"{tp['per_session']:.0f} |")
            print(f"| anyport bridge --shared (2 children) | | | | | {tp['shared']:.0f} |")
            for name, p in results["peers"].items():
                if "unavailable" in p:
                    print(f"| {name} | unavailable: {p['unavailable']} | | | | |")
                else:
                    print(f"| {name} ({p['note']}) | {p['p50']:.2f} | {p['p99']:.2f} | +{p['added_p50']:.2f} | "
                          f"+{p['added_p99']:.2f} | {p['throughput']:.0f} |")
        fc = results["first_call_ms"]
        print(f"\nfirst call of a session: {fc['no_spare']:.0f} ms without a spare, {fc['warm_spare']:.0f} ms with warm spares; "
              f"a 2026-07-28 request (its own child): {fc['modern_own_child']:.0f} ms")
    if args.soak:
        s = results["soak"]
        print(f"\nsoak: {s['sessions']} sessions in {s['seconds']:.0f} s, {s['errors']} errors; children {s['before']['children']} -> "
              f"{s['after']['children']}, bridge RSS {s['before']['rss']:.1f} -> {s['after']['rss']:.1f} MiB")
    out = args.json or ROOT / "bench" / "results" / f"bridge-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    log(f"raw figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
