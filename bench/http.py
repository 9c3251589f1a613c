"""HTTP benchmark: anyport vs the official Python SDK vs FastMCP vs the TypeScript SDK vs a raw ASGI floor.

Every server answers the same ``tools/call echo`` over Streamable HTTP on loopback, in one run:

- modes: stateless JSON reply, stateless SSE reply, stateful JSON, stateful SSE (2025-11-25:
  initialize + ``Mcp-Session-Id``), and 2026-07-28 requests (``_meta`` envelope plus the
  ``MCP-Protocol-Version`` / ``Mcp-Method`` / ``Mcp-Name`` headers) with JSON and SSE replies;
- concurrency 1, 16 and 64 (workers, each with its own keep-alive connection and, when
  stateful, its own session): requests/s, latency p50/p99, server CPU per request
  (``/proc/PID/stat``, all threads);
- the 2024-11-05 HTTP+SSE transport (GET /sse + POST /messages/) for anyport, the Python
  SDK and FastMCP at concurrency 1 and 16;
- memory per idle legacy session: 1,000 sessions opened (initialize + initialized) on a fresh
  server, VmRSS before / with them / after DELETE-ing them all.

The load comes from a separate process (``python -m anyport.bench._http_load``: a raw asyncio
HTTP/1.1 client, no SDK, the same for every server, and the one ``anyport bench URL`` uses).
Servers are started by this script on free loopback ports and stopped at the end; the official
Python peers run in bench/.peers-venv (created on first use, see bench/_common.py).
Measurements run round-robin: every (mode, concurrency) cell is split into ``--rounds`` slices
and the servers take turns, so load from elsewhere lands on all rows alike. Every loop is
bounded by a count and by time. Results: Markdown tables on stdout, raw numbers in
``bench/results/http-<timestamp>.json`` and, with ``--plot``, a PNG of latency and req/s against
concurrency next to it.

Usage: python bench/http.py [--quick] [--only anyport,pysdk,fastmcp,ts,floor] [--plot] [--pyspy PATH]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from _common import (
    RESULTS_DIR,
    ROOT,
    Peers,
    add_peers_options,
    csv,
    default_python,
    environment,
    log,
    plot,
    ts_unavailable,
)

from anyport.bench._http_load import Cell, LoadClient, run_limit
from anyport.bench._report import markdown_table, num, ratio, status_text
from anyport.bench._stdio import rotated
from anyport.bench._system import Pinning, file_tail, free_port

SERVER_KEYS = ("anyport", "anyport-redis", "pysdk", "fastmcp", "ts", "floor")
LABELS = {
    "anyport": "anyport", "anyport-redis": "anyport + Redis", "pysdk": "official Python SDK", "fastmcp": "FastMCP",
    "ts": "TypeScript SDK", "floor": "raw ASGI floor",
}
#: The redis-server the "anyport-redis" rows share state through (started by ``main`` on a free port).
REDIS: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Mode:
    key: str
    label: str
    #: What the load client does (anyport.bench._http_load): stateless, stateful, modern, sse.
    kind: str
    #: Which server process configuration serves it (see ``command``).
    config: str
    path: str = "/mcp"


MODES = (
    Mode("stateless-json", "stateless, JSON reply", "stateless", "stateless-json"),
    Mode("stateless-sse", "stateless, SSE reply", "stateless", "stateless-sse"),
    Mode("stateful-json", "stateful (session), JSON reply", "stateful", "stateful-json"),
    Mode("stateful-sse", "stateful (session), SSE reply", "stateful", "stateful-sse"),
    Mode("modern-json", "2026-07-28, JSON reply", "modern", "stateless-json"),
    Mode("modern-sse", "2026-07-28, SSE reply", "modern", "stateless-sse"),
)
SSE_TRANSPORT = Mode("http+sse", "HTTP+SSE transport (2024-11-05)", "sse", "sse-transport", "/sse")
MODE_KEYS = (*(m.key for m in MODES), SSE_TRANSPORT.key)


@dataclass(frozen=True, slots=True)
class Settings:
    concurrencies: tuple[int, ...] = (1, 16, 64)
    sse_concurrencies: tuple[int, ...] = (1, 16)
    #: Per slice: warm-up requests (count and seconds), then the measured requests (count and seconds).
    warmup_count: int = 400
    warmup_seconds: float = 0.3
    slice_count: int = 40_000
    slice_seconds: float = 1.0
    rounds: int = 3
    #: Idle legacy sessions opened for the memory measurement, and the time they may take.
    sessions: int = 1000
    sessions_seconds: float = 60.0
    #: Seconds without any answer before a server counts as hung.
    timeout: float = 10.0
    startup_timeout: float = 30.0


FULL = Settings()
QUICK = Settings(
    warmup_count=100, warmup_seconds=0.1, slice_count=10_000, slice_seconds=0.3, rounds=1, sessions=300,
    sessions_seconds=20.0, timeout=5.0, startup_timeout=20.0,
)


# -- the servers ---------------------------------------------------------------------------------


def command(server: str, config: str, port: int, pythons: dict[str, str]) -> list[str] | None:
    """The command line of ``server`` in process configuration ``config``; None: not supported.

    Configurations: stateless-json, stateless-sse, stateful-json, stateful-sse, sse-transport.
    ``pythons``: the interpreter of each Python server.
    """
    p = str(port)
    python = pythons.get(server, "")
    stateless = config.startswith("stateless")
    json_reply = config.endswith("-json")
    if server in ("anyport", "anyport-redis"):
        # uvicorn at log level "warning" like the SDK's (MCPServer(log_level="WARNING")): no access log.
        cmd = [python, "-m", "anyport", "serve", "tests/interop/fixture_server.py", "--http", "--port", p,
               "--log-level", "warning"]
        if server == "anyport-redis":
            if "url" not in REDIS:
                return None
            # Sessions, events and the bus in Redis, as one replica of many would keep them.
            cmd += ["--redis", REDIS["url"], "--redis-prefix", f"bench-{config}"]
        if config == "sse-transport":
            return cmd  # the HTTP+SSE transport is on by default, next to Streamable HTTP
        return cmd + (["--stateless"] if stateless else []) + (["--json-response"] if json_reply else [])
    if server == "pysdk":
        cmd = [python, "bench/pysdk_http_server.py", "--port", p]
        if config == "sse-transport":
            return [*cmd, "--sse"]
        return cmd + (["--stateless"] if stateless else []) + (["--json-response"] if json_reply else [])
    if server == "fastmcp":
        cmd = [python, "bench/fastmcp_server.py", "--port", p]
        if config == "sse-transport":
            return [*cmd, "--sse"]
        return cmd + (["--stateless"] if stateless else []) + (["--json-response"] if json_reply else [])
    if server == "ts":
        if config == "sse-transport":
            return None  # the TypeScript SDK v2 server package has no HTTP+SSE transport
        cmd = ["node", "bench/ts_http_server.mjs", "--port", p]
        return cmd + (["--stateless"] if stateless else []) + (["--json-response"] if json_reply else [])
    if server == "floor":
        if config == "sse-transport":
            return None
        return [python, "bench/floor_asgi.py", "--port", p, "--log-level", "warning"] + ([] if json_reply else ["--sse"])
    raise ValueError(server)


class ServerProc:
    """One server process on a free loopback port; stderr goes to a temporary file."""

    def __init__(self, server: str, config: str, pythons: dict[str, str]) -> None:
        self.server = server
        self.config = config
        self.port = free_port()
        cmd = command(server, config, self.port, pythons)
        assert cmd is not None
        self.command = cmd
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()
        self.exit = ""
        self.startup_s: float | None = None

    @property
    def name(self) -> str:
        return f"{self.server}/{self.config}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            close_fds=True,
        )

    def wait_ready(self, timeout: float) -> str | None:
        """Until the port accepts connections; returns an error text, or None when ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return f"exited with code {self.proc.returncode} before listening; stderr: {self.stderr_tail()}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                self.startup_s = time.perf_counter() - self.t0
                return None
            time.sleep(0.05)
        return f"not listening after {timeout:.0f} s; stderr: {self.stderr_tail()}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, limit: int = 600) -> str:
        return file_tail(self._stderr, limit).strip()

    def stop(self, grace: float = 5.0) -> None:
        proc = self.proc
        if proc is None:
            return
        ended_by = "exiting by itself" if proc.poll() is not None else "SIGTERM"
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is not None:
                break
            ended_by = sig.name
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        self.exit = f"exit code {proc.returncode} after {ended_by}"
        self.proc = None
        self._stderr.close()


def place(pinning: Pinning, client_pid: int, server_pid: int, concurrency: int) -> None:
    """``--pin auto`` (two CPUs or more): at concurrency 1 the load client and the server share one
    CPU (each hand-off is a plain context switch; on a VM a cross-CPU wake-up costs more than the
    request and varies run to run), at higher concurrency they run on two different CPUs."""
    if concurrency == 1:
        pinning.same_cpu(client_pid, server_pid)
    else:
        pinning.two_cpus(client_pid, server_pid)


def describe(pinning: Pinning) -> str:
    if not pinning.enabled:
        return "none (the scheduler places client and servers)"
    return (f"concurrency 1: client and server on CPU {pinning.a}; higher concurrency: client on CPU {pinning.a}, "
            f"server on CPU {pinning.b}")


# -- measuring -----------------------------------------------------------------------------------


def mode_of(key: str) -> Mode:
    return SSE_TRANSPORT if key == SSE_TRANSPORT.key else next(m for m in MODES if m.key == key)


class Bench:
    def __init__(self, args: argparse.Namespace, cfg: Settings, peers: Peers | None) -> None:
        self.args = args
        self.cfg = cfg
        self.python: str = args.python
        self.peers = peers
        self.pythons = {"anyport": args.python, "anyport-redis": args.python, "floor": args.python}
        self.fastmcp_missing: str | None = None
        if peers is not None:
            self.pythons["pysdk"] = peers.sdk_python
            if peers.python is not None:
                self.pythons["fastmcp"] = peers.python
            self.fastmcp_missing = peers.fastmcp_missing
        self.servers: list[str] = [k for k in SERVER_KEYS if k in args.only]
        self.modes: list[str] = [k for k in MODE_KEYS if k in args.modes]
        self.pinning = Pinning(args.pin)
        self.client = LoadClient(self.python)
        self.procs: dict[tuple[str, str], ServerProc] = {}
        self.proc_errors: dict[tuple[str, str], str] = {}
        self.cells: dict[tuple[str, str, int], Cell] = {}
        self.ts_missing = ts_unavailable()

    def unavailable(self, server: str) -> str | None:
        if server == "anyport-redis" and "url" not in REDIS:
            return REDIS.get("missing", "no redis-server")
        return self.ts_missing if server == "ts" else self.fastmcp_missing if server == "fastmcp" else None

    def concurrencies(self, mode: str) -> tuple[int, ...]:
        return self.cfg.sse_concurrencies if mode == SSE_TRANSPORT.key else self.cfg.concurrencies

    def plan(self) -> None:
        """Every cell, and which server processes they need (one per server and configuration)."""
        for mode_key in self.modes:
            mode = mode_of(mode_key)
            for server in self.servers:
                for c in self.concurrencies(mode_key):
                    cell = self.cells[(server, mode_key, c)] = Cell(server, mode_key, c)
                    missing = self.unavailable(server)
                    if missing:
                        cell.status, cell.detail = "unavailable", missing
                    elif command(server, mode.config, 0, self.pythons) is None:
                        cell.status = "unsupported"
                    else:
                        self.procs.setdefault((server, mode.config), None)  # type: ignore[arg-type]

    def start_servers(self) -> None:
        keys = list(self.procs)
        for key in keys:
            self.procs[key] = ServerProc(key[0], key[1], self.pythons)
        self.pinning_release_all()
        for proc in self.procs.values():
            proc.start()
        for key, proc in self.procs.items():
            error = proc.wait_ready(self.cfg.startup_timeout)
            if error is not None:
                self.proc_errors[key] = error
                log(f"  {proc.name}: failed to start: {error}")
            else:
                log(f"  {proc.name}: listening on port {proc.port} after {proc.startup_s:.2f} s (pid {proc.pid})")

    def pinning_release_all(self) -> None:
        self.pinning.release()

    def job(self, kind: str, mode: Mode, proc: ServerProc, concurrency: int) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "job": "run", "kind": kind, "host": "127.0.0.1", "port": proc.port, "path": mode.path,
            "concurrency": concurrency, "warmup_count": cfg.warmup_count, "warmup_seconds": cfg.warmup_seconds,
            "count": cfg.slice_count, "seconds": cfg.slice_seconds, "timeout": cfg.timeout, "server_pid": proc.pid,
        }

    def run_slice(self, cell: Cell) -> None:
        if not cell.ok:
            return
        mode = mode_of(cell.mode)
        key = (cell.server, mode.config)
        if key in self.proc_errors:
            cell.status, cell.detail = "failed to start", self.proc_errors[key]
            return
        proc = self.procs[key]
        if not proc.alive():
            cell.status, cell.detail = "died", f"server exited earlier; stderr: {proc.stderr_tail()}"
            return
        if self.client.proc is None:
            self.client.start()
        place(self.pinning, self.client.pid, proc.pid, cell.concurrency)
        job = self.job(mode.kind, mode, proc, cell.concurrency)
        result = self.client.run(job, run_limit(job))
        if result.get("ok"):
            cell.add(result)
            return
        kind = result.get("kind", "failed")
        error = str(result.get("error", ""))
        if mode.kind == "modern" and kind == "wrong answer" and result.get("phase") in ("setup", "warm-up"):
            cell.status, cell.detail = "not supported", error
        else:
            cell.fail(result)
            cell.detail = error + (f"; server stderr: {proc.stderr_tail()}" if not proc.alive() else "")
        log(f"  {cell.server}/{cell.mode}/c{cell.concurrency}: {cell.status}: {cell.detail[:300]}")

    def run_cells(self) -> None:
        cfg = self.cfg
        order = [(m, c) for m in self.modes for c in self.concurrencies(m)]
        for r in range(cfg.rounds):
            log(f"round {r + 1}/{cfg.rounds}")
            for i, (mode_key, c) in enumerate(order):
                for server in rotated(self.servers, r + i):
                    self.run_slice(self.cells[(server, mode_key, c)])
        for cell in self.cells.values():
            cell.finish()

    def memory(self) -> list[dict[str, Any]]:
        """Idle legacy sessions: RSS of a fresh stateful (JSON) server before, with them, after DELETE."""
        rows = []
        for server in self.servers:
            row: dict[str, Any] = {"server": server, "status": "ok", "detail": ""}
            rows.append(row)
            if server == "floor":
                row["status"] = "no sessions"
                continue
            missing = self.unavailable(server)
            if missing:
                row["status"], row["detail"] = "unavailable", missing
                continue
            self.pinning_release_all()
            proc = ServerProc(server, "stateful-json", self.pythons)
            proc.start()
            try:
                error = proc.wait_ready(self.cfg.startup_timeout)
                if error is not None:
                    row["status"], row["detail"] = "failed to start", error
                    continue
                place(self.pinning, self.client.pid, proc.pid, 16)
                job = {
                    "job": "sessions", "host": "127.0.0.1", "port": proc.port, "path": "/mcp", "concurrency": 16,
                    "count": self.cfg.sessions, "seconds": self.cfg.sessions_seconds, "timeout": self.cfg.timeout,
                    "server_pid": proc.pid, "warmup": 50, "settle_seconds": 1.0,
                }
                result = self.client.run(job, 4 * self.cfg.sessions_seconds + 8 * self.cfg.timeout + 10)
                row.update({k: v for k, v in result.items() if k not in ("ok", "kind", "error")})
                if not result.get("ok"):
                    row["status"] = f"{result.get('kind', 'failed')} during {result.get('phase', '?')}"
                    row["detail"] = str(result.get("error", ""))
                before, opened, after = row.get("rss_before_kib"), row.get("rss_open_kib"), row.get("rss_after_kib")
                if before is not None and opened is not None and row.get("opened"):
                    row["kib_per_session"] = (opened - before) / row["opened"]
                if before is not None and after is not None and result.get("ok"):
                    row["kib_not_returned"] = after - before
                reopen = row.get("rss_reopen_kib")
                if opened is not None and reopen is not None and result.get("ok"):
                    row["kib_reopen_growth"] = reopen - opened
                log(f"  memory {server}: {row.get('kib_per_session', float('nan')):.1f} KiB/session, "
                    f"{row.get('kib_not_returned', 'n/a')} KiB not returned ({row['status']})")
            finally:
                proc.stop()
        return rows

    def pyspy(self, pyspy: str, seconds: float) -> dict[str, Any]:
        """py-spy on anyport's stateless JSON server under concurrency-16 load: top frames by self time."""
        out: dict[str, Any] = {"py_spy": pyspy, "seconds": seconds, "mode": "stateless-json", "concurrency": 16}
        self.pinning_release_all()
        proc = ServerProc("anyport", "stateless-json", self.pythons)
        proc.start()
        raw = Path(tempfile.mkstemp(suffix=".txt", prefix="pyspy-")[1])
        spy: subprocess.Popen[bytes] | None = None
        try:
            error = proc.wait_ready(self.cfg.startup_timeout)
            if error is not None:
                return {**out, "error": error}
            place(self.pinning, self.client.pid, proc.pid, 16)
            spy = subprocess.Popen(
                [pyspy, "record", "--pid", str(proc.pid), "--duration", str(int(seconds)), "--rate", "250",
                 "--format", "raw", "--output", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            time.sleep(0.5)
            job = self.job("stateless", MODES[0], proc, 16)
            job.update(count=10_000_000, seconds=seconds + 1.0)
            result = self.client.run(job, seconds + 4 * self.cfg.timeout + 10)
            _, err = spy.communicate(timeout=seconds + 30)
            out["load"] = {k: v for k, v in result.items() if k != "latencies_us"}
            if spy.returncode != 0:
                return {**out, "error": f"py-spy exited {spy.returncode}: {err.decode(errors='replace')[-400:]}"}
            out.update(hot_spots(raw.read_text()))
            return out
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {**out, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            if spy is not None and spy.poll() is None:
                spy.kill()
                spy.wait(5)
            proc.stop()
            raw.unlink(missing_ok=True)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc is not None:
                proc.stop()
        self.client.dispose()
        self.pinning_release_all()


def hot_spots(collapsed: str, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed-stack output."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [_frame_name(f) for f in stack.split(";")]
        self_counts[frames[-1]] += count
        for name in set(frames):
            incl_counts[name] += count
    if not total:
        return {"samples": 0, "self": [], "inclusive": []}
    return {
        "samples": total,
        "self": [(name, round(100 * n / total, 1)) for name, n in self_counts.most_common(top)],
        "inclusive": [(name, round(100 * n / total, 1)) for name, n in incl_counts.most_common(top + 10)],
    }


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``, with site-packages paths shortened."""
    func, _, loc = frame.partition(" (")
    path = loc.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path})" if path else func


# -- reporting -----------------------------------------------------------------------------------


def table(bench: Bench) -> str:
    """One row per mode, server and concurrency; ratios compare req/s in the same mode and concurrency."""
    head = ["mode", "server", "conc.", "req/s", "p50 µs", "p99 µs", "server CPU µs/req", "req/s vs floor",
            "req/s vs Python SDK", "reply", "status"]
    body = []
    for mode_key in bench.modes:
        for server in bench.servers:
            for c in bench.concurrencies(mode_key):
                cell = bench.cells[(server, mode_key, c)]
                floor = bench.cells.get(("floor", mode_key, c))
                sdk = bench.cells.get(("pysdk", mode_key, c))
                body.append([
                    mode_of(mode_key).label, LABELS[server], str(c), num(cell.rps, ",.0f"), num(cell.p50_us, ",.0f"),
                    num(cell.p99_us, ",.0f"), num(cell.cpu_us_per_req, ".0f"),
                    ratio(cell.rps, floor.rps if floor else None), ratio(cell.rps, sdk.rps if sdk else None),
                    cell.reply, status_text(cell.status, cell.detail, limit=100),
                ])
    return markdown_table(head, "llrrrrrrrll", body)


def summary(bench: Bench) -> str:
    """anyport's req/s as a multiple of each other server's, per mode and concurrency."""
    others = [k for k in SERVER_KEYS if k != "anyport" and k in bench.servers]
    if "anyport" not in bench.servers or not others:
        return ""
    head = ["mode", "conc."] + [f"vs {LABELS[k]}" for k in others]
    body = []
    for mode_key in bench.modes:
        for c in bench.concurrencies(mode_key):
            ours = bench.cells.get(("anyport", mode_key, c))
            row = [mode_of(mode_key).label, str(c)]
            for ref in others:
                other = bench.cells.get((ref, mode_key, c))
                row.append(ratio(ours.rps if ours else None, other.rps if other else None))
            body.append(row)
    return markdown_table(head, "lr" + "r" * len(others), body)


def memory_table(rows: Sequence[dict[str, Any]]) -> str:
    head = ["server", "sessions", "RSS before MiB", "RSS with sessions MiB", "RSS after DELETE MiB", "KiB/session",
            "KiB not returned", "KiB more on reopening", "open s", "status"]

    def mib(v: int | None) -> str:
        return "—" if v is None else f"{v / 1024:.1f}"

    body = [
        [
            LABELS[r["server"]], str(r.get("opened", "—")), mib(r.get("rss_before_kib")), mib(r.get("rss_open_kib")),
            mib(r.get("rss_after_kib")), num(r.get("kib_per_session"), ".1f"), num(r.get("kib_not_returned"), ",.0f"),
            num(r.get("kib_reopen_growth"), ",.0f"), num(r.get("open_seconds"), ".2f"), status_text(r["status"], r.get("detail", ""), ("ok", "no sessions"), 100),
        ]
        for r in rows
    ]
    return markdown_table(head, "lrrrrrrrrl", body)


def plot_points(bench: Bench) -> list[dict[str, Any]]:
    """Every measured cell as a point of the plot (anyport.bench._plot)."""
    return [
        {"server": LABELS[cell.server], "mode": mode_of(cell.mode).label, "concurrency": cell.concurrency,
         "p50_us": cell.p50_us, "p99_us": cell.p99_us, "rps": cell.rps}
        for cell in bench.cells.values() if cell.ok and cell.p50_us
    ]


# -- CLI -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run, about a minute")
    p.add_argument("--only", type=csv(SERVER_KEYS), default=list(SERVER_KEYS), help=f"servers: {','.join(SERVER_KEYS)}")
    p.add_argument("--modes", type=csv(MODE_KEYS), default=list(MODE_KEYS), help=f"modes: {','.join(MODE_KEYS)}")
    p.add_argument("--seconds", type=float, help="measured seconds per slice (default 1.0; quick 0.3)")
    p.add_argument("--rounds", type=int, help="round-robin slices per cell (default 3; quick 1)")
    p.add_argument("--sessions", type=int, help="idle sessions for the memory measurement (default 1000; quick 300)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    p.add_argument("--timeout", type=float, help="seconds without an answer before a server counts as hung")
    p.add_argument("--pin", choices=("auto", "none"), default="auto", help="CPU placement (see README)")
    p.add_argument("--pyspy", metavar="PATH", help="py-spy binary: also profile anyport (stateless JSON, concurrency 16)")
    p.add_argument("--pyspy-seconds", type=float, default=10.0)
    p.add_argument("--python", default=default_python(), help="interpreter for anyport, the floor and the load client")
    add_peers_options(p)
    p.add_argument("--plot", action="store_true", help="also write a PNG of latency and req/s vs concurrency (needs matplotlib here or in the peers environment)")
    p.add_argument("--json", type=Path, help="raw results path (default bench/results/http-<time>.json)")
    args = p.parse_args(argv)
    for name in ("rounds", "sessions"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name} must be >= 1")
    return args


def _start_redis() -> subprocess.Popen[bytes] | None:
    """A redis-server of our own on a free loopback port (never one that may run on 6379), with no
    persistence; its URL goes to ``REDIS``. None (and the rows say why) when it cannot start."""
    binary = shutil.which("redis-server")
    if binary is None:
        REDIS["missing"] = "redis-server is not installed (make test installs it)"
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tempfile.gettempdir()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                REDIS["url"] = f"redis://127.0.0.1:{port}/0"
                return proc
        time.sleep(0.05)
    proc.kill()
    REDIS["missing"] = "redis-server did not start"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    overrides = {"slice_seconds": args.seconds, "rounds": args.rounds, "sessions": args.sessions, "timeout": args.timeout}
    cfg = dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
    started = dt.datetime.now()
    t_start = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]
    log(f"http benchmark ({'quick' if args.quick else 'full'}): {cfg}")
    peers = Peers(args) if {"pysdk", "fastmcp"} & set(args.only) or args.plot else None
    bench = Bench(args, cfg, peers)
    log(f"CPU placement: {describe(bench.pinning)}")
    memory: list[dict[str, Any]] = []
    profile: dict[str, Any] | None = None
    redis = _start_redis() if "anyport-redis" in bench.servers else None
    try:
        bench.plan()
        log(f"starting {len(bench.procs)} server processes ...")
        bench.start_servers()
        bench.client.start()
        bench.run_cells()
        commands = {f"{k[0]}/{k[1]}": p.command for k, p in bench.procs.items()}
        startup = {f"{k[0]}/{k[1]}": p.startup_s for k, p in bench.procs.items()}
        for proc in bench.procs.values():
            proc.stop()
        exits = {f"{k[0]}/{k[1]}": p.exit for k, p in bench.procs.items()}
        if not args.no_memory:
            log(f"memory: {cfg.sessions} idle legacy sessions per server")
            memory = bench.memory()
        if args.pyspy:
            log(f"py-spy: anyport stateless JSON at concurrency 16 for {args.pyspy_seconds:.0f} s")
            profile = bench.pyspy(args.pyspy, args.pyspy_seconds)
    finally:
        bench.close()
        if redis is not None:
            redis.terminate()
            redis.wait(10)

    report = table(bench)
    print(report)
    summ = summary(bench)
    if summ:
        print("\nanyport req/s relative to each server, same mode and concurrency:\n")
        print(summ)
    mem = memory_table(memory) if memory else ""
    if mem:
        print(f"\nMemory per idle legacy session ({cfg.sessions} sessions, fresh stateful JSON server):\n")
        print(mem)
    if profile is not None:
        print("\npy-spy, anyport stateless JSON at concurrency 16 (share of samples):\n")
        if "error" in profile:
            print(f"failed: {profile['error']}")
        else:
            print("| self % | function |\n|---:|---|")
            for name, share in profile["self"]:
                print(f"| {share} | `{name}` |")

    path = args.json or RESULTS_DIR / f"http-{started:%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    points = plot_points(bench)
    payload = {
        "benchmark": "http",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t_start, 1),
        "argv": sys.argv,
        "mode": "quick" if args.quick else "full",
        "settings": dataclasses.asdict(cfg),
        "cpu_placement": describe(bench.pinning),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "environment": environment(
            args.python, peers, ("anyport", "mcp", "orjson", "pydantic", "uvicorn", "uvloop", "httptools", "starlette"),
        ),
        "peers_environment": None if peers is None else {"python": peers.python, "note": peers.note},
        "commands": commands,
        "startup_s": startup,
        "server_exits": exits,
        "cells": [dataclasses.asdict(c) for c in bench.cells.values()],
        "memory": memory,
        "pyspy": profile,
        "title": f"anyport bench/http.py, {started:%Y-%m-%d %H:%M}{' (quick: a smoke run)' if args.quick else ''}",
        "points": points,
        "table": report,
        "summary": summ,
        "memory_table": mem,
    }
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    log(f"raw results: {path} (run took {payload['duration_s']:.0f} s)")
    if args.plot:
        png, why = plot(path, path.with_suffix(".png"), peers)
        log(f"plot: {png}" if png else f"plot: skipped: {why}")
    bad = [c for c in bench.cells.values() if c.status not in ("ok", "unsupported", "unavailable", "not supported")]
    bad_mem = [r for r in memory if r["status"] not in ("ok", "no sessions", "unavailable")]
    return 1 if bad or bad_mem else 0


if __name__ == "__main__":
    sys.exit(main())
