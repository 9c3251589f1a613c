"""HTTP benchmark: anyport vs the official Python SDK vs the TypeScript SDK vs a raw ASGI floor.

Every server answers the same ``tools/call echo`` over Streamable HTTP on loopback, in one run:

- modes: stateless JSON reply, stateless SSE reply, stateful JSON, stateful SSE (2025-11-25:
  initialize + ``Mcp-Session-Id``), and 2026-07-28 requests (``_meta`` envelope plus the
  ``MCP-Protocol-Version`` / ``Mcp-Method`` / ``Mcp-Name`` headers) with JSON and SSE replies;
- concurrency 1, 16 and 64 (workers, each with its own keep-alive connection and, when
  stateful, its own session): requests/s, latency p50/p99, server CPU per request
  (``/proc/PID/stat``, all threads);
- the 2024-11-05 HTTP+SSE transport (GET /sse + POST /messages/) for anyport and the Python
  SDK at concurrency 1 and 16;
- memory per idle legacy session: 1,000 sessions opened (initialize + initialized) on a fresh
  server, VmRSS before / with them / after DELETE-ing them all.

The load comes from a separate process (bench/_http_load.py: a raw asyncio HTTP/1.1 client, no
SDK, the same for every server). Servers are started by this script on free ports and stopped at
the end. Measurements run round-robin: every (mode, concurrency) cell is split into
``--rounds`` slices and the servers take turns, so load from elsewhere lands on all rows alike.
Every loop is bounded by a count and by time. Results: a Markdown table on stdout, raw numbers
in ``bench/results/http-<timestamp>.json``, a latency plot next to it if matplotlib is there.

Usage: python bench/http.py [--quick] [--only anyport,pysdk,ts,floor] [--pyspy PATH]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime as dt
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from _common import percentile, set_affinity

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS_DIR = BENCH / "results"
TS_DIR = ROOT / "tests" / "interop" / "peers" / "ts"
SERVER_KEYS = ("anyport", "pysdk", "ts", "floor")
LABELS = {"anyport": "anyport", "pysdk": "official Python SDK", "ts": "TypeScript SDK", "floor": "raw ASGI floor"}


@dataclass(frozen=True, slots=True)
class Mode:
    key: str
    label: str
    #: What the load client does (bench/_http_load.py): stateless, stateful, modern, sse.
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


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the servers ---------------------------------------------------------------------------------


def default_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def ts_unavailable() -> str | None:
    if shutil.which("node") is None:
        return "node not found on PATH"
    if not (TS_DIR / "node_modules" / "@modelcontextprotocol" / "server").is_dir():
        return f"TypeScript SDK not installed (run npm ci in {TS_DIR.relative_to(ROOT)})"
    return None


def command(server: str, config: str, port: int, python: str) -> list[str] | None:
    """The command line of ``server`` in process configuration ``config``; None: not supported.

    Configurations: stateless-json, stateless-sse, stateful-json, stateful-sse, sse-transport.
    """
    p = str(port)
    stateless = config.startswith("stateless")
    json_reply = config.endswith("-json")
    if server == "anyport":
        # uvicorn at log level "warning" like the SDK's (MCPServer(log_level="WARNING")): no access log.
        cmd = [python, "-m", "anyport", "serve", "tests/interop/fixture_server.py", "--http", "--port", p,
               "--log-level", "warning"]
        if config == "sse-transport":
            return cmd  # the HTTP+SSE transport is on by default, next to Streamable HTTP
        return cmd + (["--stateless"] if stateless else []) + (["--json-response"] if json_reply else [])
    if server == "pysdk":
        cmd = [python, "bench/pysdk_http_server.py", "--port", p]
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProc:
    """One server process on a free loopback port; stderr goes to a temporary file."""

    def __init__(self, server: str, config: str, python: str) -> None:
        self.server = server
        self.config = config
        self.port = free_port()
        cmd = command(server, config, self.port, python)
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
        try:
            self._stderr.flush()
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

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


class LoadClient:
    """The load-generator process (bench/_http_load.py): one JSON job in, one JSON result out."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()
        self._buf = b""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.python, str(BENCH / "_http_load.py")], cwd=BENCH, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, close_fds=True, bufsize=0,
        )
        self._buf = b""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def run(self, job: dict[str, Any], limit: float) -> dict[str, Any]:
        """Send ``job``; its result, or a failure when none arrives within ``limit`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(orjson.dumps(job) + b"\n")
        except BrokenPipeError:
            return self._restart("the load client died")
        deadline = time.monotonic() + limit
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return self._restart(f"the load client gave no result within {limit:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return self._restart("the load client died")
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return orjson.loads(line)

    def _restart(self, why: str) -> dict[str, Any]:
        tail = self.stderr_tail()
        self.stop()
        return {"ok": False, "kind": "hung", "error": f"{why}; client stderr: {tail}"}

    def stderr_tail(self, limit: int = 600) -> str:
        try:
            self._stderr.flush()
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)
        assert proc.stdout is not None
        proc.stdout.close()


class Pinning:
    """``--pin auto`` (two CPUs or more): at concurrency 1 the load client and the server share one
    CPU (each hand-off is a plain context switch; on a VM a cross-CPU wake-up costs more than the
    request and varies run to run), at higher concurrency they run on two different CPUs."""

    def __init__(self, mode: str) -> None:
        self.original = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        cpus = sorted(self.original or ())
        self.enabled = mode == "auto" and len(cpus) >= 2
        self.a, self.b = (cpus[0], cpus[1]) if self.enabled else (-1, -1)

    def describe(self) -> str:
        if not self.enabled:
            return "none (the scheduler places client and servers)"
        return (f"concurrency 1: client and server on CPU {self.a}; higher concurrency: client on CPU {self.a}, "
                f"server on CPU {self.b}")

    def place(self, client_pid: int, server_pid: int, concurrency: int) -> None:
        if self.enabled:
            set_affinity(client_pid, {self.a})
            set_affinity(server_pid, {self.a} if concurrency == 1 else {self.b})


# -- measuring -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Cell:
    """One server in one mode at one concurrency, accumulated over its slices."""

    server: str
    mode: str
    concurrency: int
    status: str = "ok"
    detail: str = ""
    requests: int = 0
    seconds: float = 0.0
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    cpu_known: bool = True
    client_cpu: float = 0.0
    slices: int = 0
    replies: dict[str, int] = field(default_factory=dict)
    latencies_us: list[float] = field(default_factory=list)
    # Folded statistics (``finish``).
    rps: float | None = None
    p50_us: float | None = None
    p90_us: float | None = None
    p99_us: float | None = None
    mean_us: float | None = None
    cpu_us_per_req: float | None = None
    client_cpu_us_per_req: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def add(self, result: dict[str, Any]) -> None:
        self.slices += 1
        self.requests += int(result["done"])
        self.seconds += float(result["seconds"])
        self.latencies_us.extend(result["latencies_us"])
        cpu = result.get("server_cpu")
        if cpu is None:
            self.cpu_known = False
        else:
            self.cpu_user += cpu[0]
            self.cpu_sys += cpu[1]
        self.client_cpu += float(result["client_cpu"])
        for k, v in result.get("replies", {}).items():
            self.replies[k] = self.replies.get(k, 0) + v

    def finish(self) -> None:
        if not self.requests or not self.seconds:
            return
        self.rps = self.requests / self.seconds
        ordered = sorted(self.latencies_us)
        self.p50_us, self.p90_us, self.p99_us = (percentile(ordered, q) for q in (50, 90, 99))
        self.mean_us = statistics.fmean(ordered)
        if self.cpu_known:
            self.cpu_us_per_req = (self.cpu_user + self.cpu_sys) / self.requests * 1e6
        self.client_cpu_us_per_req = self.client_cpu / self.requests * 1e6


def mode_of(key: str) -> Mode:
    return SSE_TRANSPORT if key == SSE_TRANSPORT.key else next(m for m in MODES if m.key == key)


class Bench:
    def __init__(self, args: argparse.Namespace, cfg: Settings) -> None:
        self.args = args
        self.cfg = cfg
        self.python: str = args.python
        self.servers: list[str] = [k for k in SERVER_KEYS if k in args.only]
        self.modes: list[str] = [k for k in MODE_KEYS if k in args.modes]
        self.pinning = Pinning(args.pin)
        self.client = LoadClient(self.python)
        self.procs: dict[tuple[str, str], ServerProc] = {}
        self.proc_errors: dict[tuple[str, str], str] = {}
        self.cells: dict[tuple[str, str, int], Cell] = {}
        self.ts_missing = ts_unavailable()

    def concurrencies(self, mode: str) -> tuple[int, ...]:
        return self.cfg.sse_concurrencies if mode == SSE_TRANSPORT.key else self.cfg.concurrencies

    def plan(self) -> None:
        """Every cell, and which server processes they need (one per server and configuration)."""
        for mode_key in self.modes:
            mode = mode_of(mode_key)
            for server in self.servers:
                for c in self.concurrencies(mode_key):
                    cell = self.cells[(server, mode_key, c)] = Cell(server, mode_key, c)
                    if server == "ts" and self.ts_missing:
                        cell.status, cell.detail = "unavailable", self.ts_missing
                    elif command(server, mode.config, 0, self.python) is None:
                        cell.status = "unsupported"
                    else:
                        self.procs.setdefault((server, mode.config), None)  # type: ignore[arg-type]

    def start_servers(self) -> None:
        keys = list(self.procs)
        for key in keys:
            self.procs[key] = ServerProc(key[0], key[1], self.python)
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
        if self.pinning.enabled and self.pinning.original is not None:
            set_affinity(0, self.pinning.original)

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
        self.pinning.place(self.client.pid, proc.pid, cell.concurrency)
        limit = 4 * self.cfg.timeout + self.cfg.slice_seconds + self.cfg.warmup_seconds + 10
        result = self.client.run(self.job(mode.kind, mode, proc, cell.concurrency), limit)
        if result.get("ok"):
            cell.add(result)
            return
        kind = result.get("kind", "failed")
        error = str(result.get("error", ""))
        if mode.kind == "modern" and kind == "wrong answer" and result.get("phase") in ("setup", "warm-up"):
            cell.status, cell.detail = "not supported", error
        else:
            cell.status = f"{kind} during {result.get('phase', '?')}"
            cell.detail = error + (f"; server stderr: {proc.stderr_tail()}" if not proc.alive() else "")
        log(f"  {cell.server}/{cell.mode}/c{cell.concurrency}: {cell.status}: {cell.detail[:300]}")

    def run_cells(self) -> None:
        cfg = self.cfg
        order = [(m, c) for m in self.modes for c in self.concurrencies(m)]
        for r in range(cfg.rounds):
            log(f"round {r + 1}/{cfg.rounds}")
            for i, (mode_key, c) in enumerate(order):
                for server in _rotated(self.servers, r + i):
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
            if server == "ts" and self.ts_missing:
                row["status"], row["detail"] = "unavailable", self.ts_missing
                continue
            self.pinning_release_all()
            proc = ServerProc(server, "stateful-json", self.python)
            proc.start()
            try:
                error = proc.wait_ready(self.cfg.startup_timeout)
                if error is not None:
                    row["status"], row["detail"] = "failed to start", error
                    continue
                self.pinning.place(self.client.pid if self.client.proc else self._client_pid(), proc.pid, 16)
                job = {
                    "job": "sessions", "host": "127.0.0.1", "port": proc.port, "path": "/mcp", "concurrency": 16,
                    "count": self.cfg.sessions, "seconds": self.cfg.sessions_seconds, "timeout": self.cfg.timeout,
                    "server_pid": proc.pid, "warmup": 50, "settle_seconds": 1.0,
                }
                result = self.client.run(job, 2 * self.cfg.sessions_seconds + 6 * self.cfg.timeout + 10)
                row.update({k: v for k, v in result.items() if k not in ("ok", "kind", "error")})
                if not result.get("ok"):
                    row["status"] = f"{result.get('kind', 'failed')} during {result.get('phase', '?')}"
                    row["detail"] = str(result.get("error", ""))
                before, opened, after = row.get("rss_before_kib"), row.get("rss_open_kib"), row.get("rss_after_kib")
                if before is not None and opened is not None and row.get("opened"):
                    row["kib_per_session"] = (opened - before) / row["opened"]
                if before is not None and after is not None and result.get("ok"):
                    row["kib_not_returned"] = after - before
                log(f"  memory {server}: {row.get('kib_per_session', float('nan')):.1f} KiB/session, "
                    f"{row.get('kib_not_returned', 'n/a')} KiB not returned ({row['status']})")
            finally:
                proc.stop()
        return rows

    def _client_pid(self) -> int:
        self.client.start()
        return self.client.pid

    def pyspy(self, pyspy: str, seconds: float) -> dict[str, Any]:
        """py-spy on anyport's stateless JSON server under concurrency-16 load: top frames by self time."""
        out: dict[str, Any] = {"py_spy": pyspy, "seconds": seconds, "mode": "stateless-json", "concurrency": 16}
        self.pinning_release_all()
        proc = ServerProc("anyport", "stateless-json", self.python)
        proc.start()
        raw = Path(tempfile.mkstemp(suffix=".txt", prefix="pyspy-")[1])
        spy: subprocess.Popen[bytes] | None = None
        try:
            error = proc.wait_ready(self.cfg.startup_timeout)
            if error is not None:
                return {**out, "error": error}
            if self.client.proc is None:
                self.client.start()
            self.pinning.place(self.client.pid, proc.pid, 16)
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
        self.client.stop()
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


def _rotated(items: Sequence[str], k: int) -> list[str]:
    k %= max(1, len(items))
    return [*items[k:], *items[:k]]


# -- reporting -----------------------------------------------------------------------------------


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def _reply(cell: Cell) -> str:
    return "/".join(sorted(cell.replies)) or "—"


def table(bench: Bench) -> str:
    """One row per mode, server and concurrency; ratios compare req/s in the same mode and concurrency."""
    head = ["mode", "server", "conc.", "req/s", "p50 µs", "p99 µs", "server CPU µs/req", "req/s vs floor",
            "req/s vs Python SDK", "reply", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * 7 + ["---", "---"]) + "|"]
    for mode_key in bench.modes:
        for server in bench.servers:
            for c in bench.concurrencies(mode_key):
                cell = bench.cells[(server, mode_key, c)]
                floor = bench.cells.get(("floor", mode_key, c))
                sdk = bench.cells.get(("pysdk", mode_key, c))
                status = cell.status if cell.ok or not cell.detail else f"{cell.status}: {cell.detail[:100]}"
                cells = [
                    mode_of(mode_key).label, LABELS[server], str(c), _num(cell.rps, ",.0f"), _num(cell.p50_us, ",.0f"),
                    _num(cell.p99_us, ",.0f"), _num(cell.cpu_us_per_req, ".0f"),
                    _ratio(cell.rps, floor.rps if floor else None), _ratio(cell.rps, sdk.rps if sdk else None),
                    _reply(cell), status,
                ]
                lines.append("| " + " | ".join(x.replace("|", "/").replace("\n", " ") for x in cells) + " |")
    return "\n".join(lines)


def summary(bench: Bench) -> str:
    """anyport's req/s as a multiple of the floor's and of the Python SDK's, per mode and concurrency."""
    if "anyport" not in bench.servers:
        return ""
    cs = FULL.concurrencies
    head = ["mode"] + [f"vs floor c{c}" for c in cs] + [f"vs Python SDK c{c}" for c in cs]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (2 * len(cs))]
    for mode_key in bench.modes:
        row = [mode_of(mode_key).label]
        for ref in ("floor", "pysdk"):
            for c in cs:
                ours = bench.cells.get(("anyport", mode_key, c))
                other = bench.cells.get((ref, mode_key, c))
                row.append(_ratio(ours.rps if ours else None, other.rps if other else None))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def memory_table(rows: Sequence[dict[str, Any]]) -> str:
    head = ["server", "sessions", "RSS before MiB", "RSS with sessions MiB", "RSS after DELETE MiB", "KiB/session",
            "KiB not returned", "open s", "status"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * 7 + "---|"]

    def mib(v: int | None) -> str:
        return "—" if v is None else f"{v / 1024:.1f}"

    for r in rows:
        status = r["status"] if r["status"] in ("ok", "no sessions") or not r.get("detail") else f"{r['status']}: {r['detail'][:100]}"
        lines.append("| " + " | ".join([
            LABELS[r["server"]], str(r.get("opened", "—")), mib(r.get("rss_before_kib")), mib(r.get("rss_open_kib")),
            mib(r.get("rss_after_kib")), _num(r.get("kib_per_session"), ".1f"), _num(r.get("kib_not_returned"), ",.0f"),
            _num(r.get("open_seconds"), ".2f"), status,
        ]) + " |")
    return "\n".join(lines)


def plot(bench: Bench, path: Path) -> str | None:
    """Latency (p50, p99) against concurrency, one panel per mode; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    modes = bench.modes
    fig, axes = plt.subplots(1, len(modes), figsize=(4 * len(modes), 4), squeeze=False)
    for ax, mode_key in zip(axes[0], modes, strict=True):
        cs = bench.concurrencies(mode_key)
        for server in bench.servers:
            cells = [bench.cells[(server, mode_key, c)] for c in cs]
            if not any(cell.p50_us for cell in cells):
                continue
            xs = [c for c, cell in zip(cs, cells, strict=True) if cell.p50_us]
            line = ax.plot(xs, [cell.p50_us / 1000 for cell in cells if cell.p50_us], marker="o", label=LABELS[server])
            ax.plot(xs, [cell.p99_us / 1000 for cell in cells if cell.p99_us], linestyle="--", color=line[0].get_color())
        ax.set_title(mode_of(mode_key).label, fontsize=9)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrency")
        ax.set_ylabel("latency ms (solid p50, dashed p99)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


_VERSIONS_SCRIPT = """
import importlib.metadata as m, json, sys
out = {"python": sys.version.split()[0]}
for name in ("anyport", "mcp", "orjson", "pydantic", "uvicorn", "uvloop", "httptools", "starlette"):
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def environment(python: str) -> dict[str, Any]:
    def run(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False, cwd=ROOT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({type(exc).__name__})"
        return done.stdout.strip()

    model = ""
    with contextlib.suppress(OSError):
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    try:
        versions: dict[str, Any] = orjson.loads(run([python, "-c", _VERSIONS_SCRIPT]))
    except orjson.JSONDecodeError:
        versions = {}
    if ts_unavailable() is None:
        versions["node"] = run(["node", "--version"])
        with contextlib.suppress(OSError, orjson.JSONDecodeError):
            pkg = TS_DIR / "node_modules/@modelcontextprotocol/server/package.json"
            versions["@modelcontextprotocol/server"] = orjson.loads(pkg.read_bytes()).get("version")
    return {"platform": platform.platform(), "cpu_model": model, "cpus": os.cpu_count(), "server_python": python,
            "client_python": sys.version.split()[0], "versions": versions}


# -- CLI -----------------------------------------------------------------------------------------


def _csv(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)} (got {text!r})")
        return items

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run, about a minute")
    p.add_argument("--only", type=_csv(SERVER_KEYS), default=list(SERVER_KEYS), help="servers: anyport,pysdk,ts,floor")
    p.add_argument("--modes", type=_csv(MODE_KEYS), default=list(MODE_KEYS), help=f"modes: {','.join(MODE_KEYS)}")
    p.add_argument("--seconds", type=float, help="measured seconds per slice (default 1.0; quick 0.3)")
    p.add_argument("--rounds", type=int, help="round-robin slices per cell (default 3; quick 1)")
    p.add_argument("--sessions", type=int, help="idle sessions for the memory measurement (default 1000; quick 300)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    p.add_argument("--timeout", type=float, help="seconds without an answer before a server counts as hung")
    p.add_argument("--pin", choices=("auto", "none"), default="auto", help="CPU placement (see README)")
    p.add_argument("--pyspy", metavar="PATH", help="py-spy binary: also profile anyport (stateless JSON, concurrency 16)")
    p.add_argument("--pyspy-seconds", type=float, default=10.0)
    p.add_argument("--python", default=default_python(), help="interpreter for the Python servers and the client")
    p.add_argument("--json", type=Path, help="raw results path (default bench/results/http-<time>.json)")
    args = p.parse_args(argv)
    for name in ("rounds", "sessions"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name} must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    overrides = {"slice_seconds": args.seconds, "rounds": args.rounds, "sessions": args.sessions, "timeout": args.timeout}
    cfg = dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
    started = dt.datetime.now()
    t_start = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]
    bench = Bench(args, cfg)
    log(f"http benchmark ({'quick' if args.quick else 'full'}): {cfg}")
    log(f"CPU placement: {bench.pinning.describe()}")
    memory: list[dict[str, Any]] = []
    profile: dict[str, Any] | None = None
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

    report = table(bench)
    print(report)
    summ = summary(bench)
    if summ:
        print("\nanyport req/s relative to the floor and to the official Python SDK:\n")
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
    png = plot(bench, path.with_suffix(".png"))
    log(f"latency plot: {png}" if png else "latency plot: skipped (matplotlib not installed)")
    payload = {
        "benchmark": "http",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t_start, 1),
        "argv": sys.argv,
        "mode": "quick" if args.quick else "full",
        "settings": dataclasses.asdict(cfg),
        "cpu_placement": bench.pinning.describe(),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "environment": environment(args.python),
        "commands": commands,
        "startup_s": startup,
        "server_exits": exits,
        "cells": [dataclasses.asdict(c) for c in bench.cells.values()],
        "memory": memory,
        "pyspy": profile,
        "plot": png,
        "table": report,
        "summary": summ,
        "memory_table": mem,
    }
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    log(f"raw results: {path} (run took {payload['duration_s']:.0f} s)")
    bad = [c for c in bench.cells.values() if c.status not in ("ok", "unsupported", "unavailable", "not supported")]
    bad_mem = [r for r in memory if r["status"] not in ("ok", "no sessions", "unavailable")]
    return 1 if bad or bad_mem else 0


if __name__ == "__main__":
    sys.exit(main())
