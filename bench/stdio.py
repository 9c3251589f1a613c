"""stdio benchmark: anyport vs the official Python SDK vs the TypeScript SDK vs a raw floor.

Every server is the interop fixture (tests/interop/FIXTURE.md) and every row calls its ``echo``
tool. The client is the same for all of them: raw JSON lines written and read with orjson over
the child's stdio pipes (bench/_common.py), no SDK. For each server and protocol era:

1. sequential latency: one ``tools/call echo`` at a time; p50 / p90 / p99 in microseconds;
2. pipelined throughput: ``--depth`` (64) requests kept in flight; calls per second;
3. server CPU per call: user+sys time of the server process (/proc/PID/stat) across phase 2;
4. start-up: spawn to first echo answer (handshake included on the legacy era), fresh
   processes, median of ``--startup-samples``.

The legacy era does ``initialize`` (2025-11-25) + ``notifications/initialized``; the modern era
(2026-07-28) sends no handshake and puts the protocol version, client capabilities and client
info in every request's ``params._meta``.

Phases 1 and 2 run round-robin: all rows keep a server process open and each phase is split
into ``--rounds`` slices taken in turn, so load from anything else on the machine is spread over
every row rather than skewing one of them. Every loop is bounded by a count and by time; a
server that hangs, dies or answers wrongly is reported as such in its row. Results go to stdout as a Markdown table and, raw, to
``bench/results/stdio-<timestamp>.json``.

Usage: python bench/stdio.py [--quick] [--only anyport,pysdk,ts,floor] [--calls N] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from _common import (
    ServerFailure,
    ServerHung,
    StdioServer,
    WrongAnswer,
    check_echo,
    echo_request,
    parse_line,
    percentile,
    set_affinity,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
ERAS = ("legacy", "modern")
SERVER_KEYS = ("anyport", "pysdk", "ts", "floor")


@dataclass(frozen=True, slots=True)
class Settings:
    """How much work each phase does, and how long anything may take."""

    #: Sequential calls, then pipelined calls, made before anything is measured.
    warmup: int = 200
    warmup_pipelined: int = 2000
    calls: int = 2000
    calls_seconds: float = 30.0
    pipelined_calls: int = 50_000
    pipelined_seconds: float = 10.0
    depth: int = 64
    startup_samples: int = 3
    #: The sequential and pipelined phases are split into this many slices, run round-robin.
    rounds: int = 5
    #: Longest wait for any single answer (or for the pipe to take a write) before "hung".
    timeout: float = 10.0
    #: Longest wait for the first answer of a fresh process (start-up includes imports).
    startup_timeout: float = 30.0


FULL = Settings()
QUICK = Settings(
    warmup=50, warmup_pipelined=500, calls=300, calls_seconds=2.0, pipelined_calls=10_000, pipelined_seconds=1.5,
    startup_samples=1, rounds=2, timeout=5.0, startup_timeout=15.0,
)


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """A server under test: how to start it, which eras it speaks, or why it cannot run here."""

    key: str
    label: str
    command: list[str]
    eras: tuple[str, ...]
    unavailable: str | None = None


@dataclass(slots=True)
class Row:
    """Everything measured for one server on one era (``None`` where a phase did not run)."""

    key: str
    label: str
    era: str
    status: str = "ok"
    detail: str = ""
    p50_us: float | None = None
    p90_us: float | None = None
    p99_us: float | None = None
    mean_us: float | None = None
    sequential_calls: int = 0
    sequential_cpu_us_per_call: float | None = None
    pipelined_calls: int = 0
    pipelined_seconds: float | None = None
    calls_per_s: float | None = None
    cpu_us_per_call: float | None = None
    cpu_user_us_per_call: float | None = None
    cpu_sys_us_per_call: float | None = None
    client_cpu_us_per_call: float | None = None
    startup_s: float | None = None
    startup_samples_s: list[float] = field(default_factory=list)
    exit: str = ""
    latencies_us: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def name(self) -> str:
        return f"{self.key}/{self.era}"


def log(message: str) -> None:
    """Progress on stderr; stdout carries only the table."""
    print(message, file=sys.stderr, flush=True)


# -- the servers ---------------------------------------------------------------------------------


def server_specs(python: str) -> dict[str, ServerSpec]:
    """The four servers, with the repo's fixture files and the given Python for the Python ones."""
    ts_dir = ROOT / "tests" / "interop" / "peers" / "ts"
    node = shutil.which("node")
    ts_missing = None
    if node is None:
        ts_missing = "node not found on PATH"
    elif not (ts_dir / "node_modules" / "@modelcontextprotocol" / "server").is_dir():
        ts_missing = f"TypeScript SDK not installed (run npm ci in {ts_dir.relative_to(ROOT)})"
    return {
        "anyport": ServerSpec(
            "anyport", "anyport", [python, "-m", "anyport", "serve", "tests/interop/fixture_server.py"], ERAS
        ),
        "pysdk": ServerSpec(
            "pysdk", "official Python SDK", [python, "tests/interop/peers/python/sdk_server.py"], ERAS
        ),
        "ts": ServerSpec(
            "ts", "TypeScript SDK", [node or "node", "tests/interop/peers/ts/server.mjs"], ERAS, ts_missing
        ),
        "floor": ServerSpec("floor", "raw floor", [python, "bench/floor_stdio.py"], ERAS),
    }


def default_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# -- the phases ----------------------------------------------------------------------------------


def handshake(srv: StdioServer, era: str, timeout: float) -> None:
    """The legacy era's initialize + initialized; the modern era has nothing to do."""
    if era == "legacy":
        srv.handshake(timeout)


def first_call(srv: StdioServer, era: str, request_id: int, timeout: float) -> None:
    """One echo call; a JSON-RPC error on the modern era means the server does not speak it."""
    msg = srv.roundtrip(echo_request(request_id, era), request_id, timeout)
    if era == "modern" and isinstance(msg, dict) and "error" in msg:
        raise EraUnsupported(orjson.dumps(msg["error"]).decode()[:300])
    check_echo(msg)


class EraUnsupported(ServerFailure):
    kind = "not supported"


def sequential(srv: StdioServer, era: str, first_id: int, count: int, seconds: float, timeout: float) -> list[float]:
    """Up to ``count`` calls one at a time (stopping after ``seconds``); latencies in µs."""
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds
    clock = time.perf_counter_ns
    for request_id in range(first_id, first_id + count):
        data = echo_request(request_id, era)
        t0 = clock()
        msg = srv.roundtrip(data, request_id, timeout)
        t1 = clock()
        check_echo(msg)
        latencies.append((t1 - t0) / 1000.0)
        if time.monotonic() > stop_at:
            break
    return latencies


@dataclass(slots=True)
class Pipelined:
    calls: int
    seconds: float


def pipelined(
    srv: StdioServer, era: str, first_id: int, count: int, seconds: float, depth: int, timeout: float
) -> Pipelined:
    """Keep ``depth`` requests in flight until ``count`` are answered or ``seconds`` have passed.

    After the time budget no new requests are sent and the ones in flight are drained. A stretch
    of ``timeout`` seconds without any answer, or a drain still unfinished ``timeout`` seconds
    after the budget, raises ``ServerHung``.
    """
    out = bytearray()
    outstanding: set[int] = set()
    next_id = first_id
    last_id = first_id + count
    clock = time.perf_counter
    t0 = clock()
    stop_at = t0 + seconds
    hard_stop = stop_at + timeout
    last_progress = t0
    done = 0
    while True:
        if next_id < last_id and clock() < stop_at:
            while len(outstanding) < depth and next_id < last_id:
                out += echo_request(next_id, era)
                outstanding.add(next_id)
                next_id += 1
        if not outstanding:
            break
        lines = srv.pump(out, timeout)
        now = clock()
        if now > hard_stop:
            raise srv.failure(ServerHung, f"{len(outstanding)} requests still in flight {timeout:.0f} s after the time budget")
        if not lines:
            if now - last_progress > timeout:
                raise srv.failure(ServerHung, f"no answer for {timeout:.0f} s with {len(outstanding)} requests in flight")
            continue
        last_progress = now
        for line in lines:
            msg = parse_line(line)
            if "method" in msg:
                continue  # a notification (or a request) from the server: not an answer
            try:
                outstanding.remove(msg.get("id"))
            except KeyError:
                raise WrongAnswer(f"answer to an id not in flight: {line[:200]!r}") from None
            check_echo(msg)
            done += 1
    return Pipelined(done, clock() - t0)


def startup_once(spec: ServerSpec, era: str, timeout: float) -> float:
    """Seconds from spawning a fresh process to the first echo answer (handshake included)."""
    srv = StdioServer(spec.command, cwd=str(ROOT))
    try:
        t0 = time.perf_counter()
        srv.start()
        handshake(srv, era, timeout)
        first_call(srv, era, 1, timeout)
        return time.perf_counter() - t0
    finally:
        srv.dispose()


class Pinning:
    """Where the client and the server run (``--pin``).

    ``auto`` (with at least two CPUs): sequential calls run with client and server on the SAME
    CPU, the pipelined phase with them on two DIFFERENT CPUs. On a VM a wake-up across CPUs can
    cost more than the server's own work and varies with whether the other vCPU was halted, so
    leaving latency to the scheduler makes the floor, and every ratio to it, jump between runs;
    one shared CPU turns each hand-off into a plain context switch. Throughput needs the two
    sides in parallel, hence two CPUs. Fresh processes for start-up run unpinned. ``none``
    leaves all placement to the scheduler.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.original: set[int] | None = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        cpus = sorted(self.original or ())
        self.enabled = mode == "auto" and len(cpus) >= 2
        self.a, self.b = (cpus[0], cpus[1]) if self.enabled else (-1, -1)

    def describe(self) -> str:
        if not self.enabled:
            return "none (the scheduler places client and server)"
        return f"sequential: client and server on CPU {self.a}; pipelined: client on CPU {self.a}, server on CPU {self.b}"

    def latency(self, pid: int) -> None:
        if self.enabled:
            set_affinity(0, {self.a})
            set_affinity(pid, {self.a})

    def throughput(self, pid: int) -> None:
        if self.enabled:
            set_affinity(0, {self.a})
            set_affinity(pid, {self.b})

    def release(self) -> None:
        """Back to the CPUs we started with (spawned processes inherit the client's mask)."""
        if self.enabled and self.original is not None:
            set_affinity(0, self.original)


class Runner:
    """One row: a long-lived server process, measured a slice at a time.

    The phases run round-robin over all rows (``Settings.rounds`` slices each), so load from
    anything else on the machine is spread over every server instead of landing on whichever
    one happened to be running. A failure ends the row: it is recorded, the process is closed,
    and the remaining slices are skipped.
    """

    def __init__(self, spec: ServerSpec, era: str, cfg: Settings, pinning: Pinning) -> None:
        self.spec = spec
        self.era = era
        self.cfg = cfg
        self.pinning = pinning
        self.row = Row(spec.key, spec.label, era)
        self.srv: StdioServer | None = None
        self.phase = "start"
        #: The phase in which the row failed, if it did.
        self.failed_phase: str | None = None
        self.next_id = 1
        self._latencies: list[float] = []
        self._seq_cpu = 0.0
        self._pipe_calls = 0
        self._pipe_seconds = 0.0
        self._pipe_user = 0.0
        self._pipe_sys = 0.0
        self._client_cpu = 0.0
        self._cpu_known = True
        if spec.unavailable is not None:
            self.row.status, self.row.detail = "unavailable", spec.unavailable

    @property
    def live(self) -> bool:
        return self.srv is not None and self.row.ok

    @property
    def ever_answered(self) -> bool:
        """Whether the server got past its first call (start-up samples make sense only then)."""
        opened = self.row.status != "unavailable"
        return opened and self.failed_phase not in ("start", "handshake", "first call")

    @contextlib.contextmanager
    def _phase(self, phase: str) -> Iterator[None]:
        self.phase = phase
        try:
            yield
        except ServerFailure as exc:
            kind = exc.kind
            self.row.status = kind if kind == "not supported" else f"{kind} during {phase}"
            self.row.detail = str(exc)
        except OSError as exc:
            self.row.status, self.row.detail = f"failed during {phase}", f"{type(exc).__name__}: {exc}"
        if not self.row.ok:
            self.failed_phase = phase
            log(f"  {self.row.name}: {self.row.status}: {self.row.detail}")
            self.close()

    def open(self) -> None:
        """Spawn, handshake, first call, warm-up."""
        if not self.row.ok:
            return
        srv = self.srv = StdioServer(self.spec.command, cwd=str(ROOT))
        self.pinning.release()
        with self._phase("start"):
            srv.start()
        if self.live:
            with self._phase("handshake" if self.era == "legacy" else "first call"):
                handshake(srv, self.era, self.cfg.startup_timeout)
                first_call(srv, self.era, self.next_id, self.cfg.startup_timeout)
                self.next_id += 1
        if self.live:
            with self._phase("warm-up"):
                cfg = self.cfg
                self.pinning.latency(srv.pid)
                done = sequential(srv, self.era, self.next_id, cfg.warmup, cfg.calls_seconds, cfg.timeout)
                self.next_id += len(done)
                self.pinning.throughput(srv.pid)
                pipelined(srv, self.era, self.next_id, cfg.warmup_pipelined, cfg.pipelined_seconds / cfg.rounds, cfg.depth, cfg.timeout)
                self.next_id += cfg.warmup_pipelined

    def sequential_slice(self, count: int, seconds: float) -> None:
        """``count`` more one-at-a-time calls (at most ``seconds``)."""
        if not self.live:
            return
        assert self.srv is not None
        with self._phase("sequential"):
            self.pinning.latency(self.srv.pid)
            cpu0 = self.srv.cpu()
            lat = sequential(self.srv, self.era, self.next_id, count, seconds, self.cfg.timeout)
            cpu1 = self.srv.cpu()
            self.next_id += len(lat)
            self._latencies.extend(lat)
            if cpu0 is None or cpu1 is None:
                self._cpu_known = False
            else:
                self._seq_cpu += cpu1.total - cpu0.total

    def pipelined_slice(self, count: int, seconds: float) -> None:
        """``count`` more calls with ``depth`` in flight (at most ``seconds``)."""
        if not self.live:
            return
        assert self.srv is not None
        with self._phase("pipelined"):
            self.pinning.throughput(self.srv.pid)
            cpu0 = self.srv.cpu()
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            result = pipelined(self.srv, self.era, self.next_id, count, seconds, self.cfg.depth, self.cfg.timeout)
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu1 = self.srv.cpu()
            self.next_id += count
            self._pipe_calls += result.calls
            self._pipe_seconds += result.seconds
            self._client_cpu += (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            if cpu0 is None or cpu1 is None:
                self._cpu_known = False
            else:
                self._pipe_user += cpu1.user - cpu0.user
                self._pipe_sys += cpu1.system - cpu0.system

    def close(self) -> None:
        """End the process (close stdin, then signals); notes how it ended."""
        if self.srv is None:
            return
        srv, self.srv = self.srv, None
        code, ended_by = srv.close()
        self.row.exit = f"exit code {code} after {ended_by}"
        if self.row.ok and (code != 0 or ended_by != "stdin EOF"):
            log(f"  {self.row.name}: note: {self.row.exit}")
        srv.dispose()

    def startup_sample(self) -> None:
        """One fresh process from spawn to first echo answer."""
        if not self.ever_answered or self.row.status.startswith("start-up failed"):
            return
        try:
            self.row.startup_samples_s.append(startup_once(self.spec, self.era, self.cfg.startup_timeout))
        except (ServerFailure, OSError) as exc:
            if self.row.ok:
                self.row.status = "start-up failed"
            self.row.detail = (self.row.detail + "; " if self.row.detail else "") + f"start-up: {exc}"

    def finish(self) -> Row:
        """Fold the slices into the row's statistics."""
        row = self.row
        lat = self._latencies
        if lat:
            row.latencies_us = [round(x, 2) for x in lat]
            row.sequential_calls = len(lat)
            ordered = sorted(lat)
            row.p50_us, row.p90_us, row.p99_us = (percentile(ordered, q) for q in (50, 90, 99))
            row.mean_us = statistics.fmean(lat)
            if self._cpu_known:
                row.sequential_cpu_us_per_call = self._seq_cpu / len(lat) * 1e6
        if self.failed_phase == "pipelined":
            self._pipe_calls = 0  # a pipelined phase that failed half-way is not a throughput
        if self._pipe_calls:
            n = self._pipe_calls
            row.pipelined_calls, row.pipelined_seconds = n, self._pipe_seconds
            row.calls_per_s = n / self._pipe_seconds
            row.client_cpu_us_per_call = self._client_cpu / n * 1e6
            if self._cpu_known:
                row.cpu_user_us_per_call = self._pipe_user / n * 1e6
                row.cpu_sys_us_per_call = self._pipe_sys / n * 1e6
                row.cpu_us_per_call = row.cpu_user_us_per_call + row.cpu_sys_us_per_call
        if row.startup_samples_s:
            row.startup_s = statistics.median(row.startup_samples_s)
        return row


def run_all(runners: Sequence[Runner], cfg: Settings, pinning: Pinning) -> list[Row]:
    """Every phase over every row, round-robin in ``cfg.rounds`` slices (order rotated per round)."""
    try:
        for r in runners:
            if r.row.ok:
                log(f"starting {r.row.name} ...")
            r.open()
        rounds = cfg.rounds
        seq_count = -(-cfg.calls // rounds)
        pipe_count = -(-cfg.pipelined_calls // rounds)
        for phase in ("sequential", "pipelined"):
            log(f"{phase}: {rounds} rounds")
            for i in range(rounds):
                for r in _rotated(runners, i):
                    if phase == "sequential":
                        r.sequential_slice(seq_count, cfg.calls_seconds / rounds)
                    else:
                        r.pipelined_slice(pipe_count, cfg.pipelined_seconds / rounds)
        for r in runners:
            r.close()
        pinning.release()
        log(f"start-up: {cfg.startup_samples} fresh processes per row")
        for i in range(cfg.startup_samples):
            for r in _rotated(runners, i):
                r.startup_sample()
    finally:
        for r in runners:
            r.close()
        pinning.release()
    rows = [r.finish() for r in runners]
    for row in rows:
        if row.ok:
            log(
                f"  {row.name}: p50 {row.p50_us:.0f} µs, {row.calls_per_s or 0:,.0f} calls/s, "
                f"start-up {row.startup_s or 0:.3f} s"
            )
    return rows


def _rotated(items: Sequence[Runner], k: int) -> list[Runner]:
    k %= max(1, len(items))
    return [*items[k:], *items[:k]]


# -- reporting -----------------------------------------------------------------------------------


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def table(rows: Sequence[Row], depth: int) -> str:
    """The results as a Markdown table; ratios compare rows of the same era."""
    by = {(r.key, r.era): r for r in rows}

    def ref(key: str, era: str, attr: str) -> float | None:
        r = by.get((key, era))
        return getattr(r, attr) if r is not None else None

    head = [
        "server", "era", "p50 µs", "p90 µs", "p99 µs", f"calls/s ({depth} in flight)", "server CPU µs/call",
        "start-up s", "p50 vs floor", "calls/s vs Python SDK", "status",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * 8 + ["---"]) + "|"]
    for r in rows:
        cells = [
            r.label, r.era, _num(r.p50_us, ".0f"), _num(r.p90_us, ".0f"), _num(r.p99_us, ".0f"),
            _num(r.calls_per_s, ",.0f"), _num(r.cpu_us_per_call, ".0f"), _num(r.startup_s, ".3f"),
            _ratio(r.p50_us, ref("floor", r.era, "p50_us")),
            _ratio(r.calls_per_s, ref("pysdk", r.era, "calls_per_s")),
            r.status if r.ok or not r.detail else f"{r.status}: {r.detail[:120]}",
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def target_checks(rows: Sequence[Row]) -> list[str]:
    """anyport against its targets: p50 within 2x of the floor, throughput >= 10x the Python SDK."""
    by = {(r.key, r.era): r for r in rows}
    out = []
    for era in ERAS:
        ours = by.get(("anyport", era))
        if ours is None or not ours.ok:
            continue
        floor, sdk = by.get(("floor", era)), by.get(("pysdk", era))
        if floor is not None and floor.p50_us and ours.p50_us:
            x = ours.p50_us / floor.p50_us
            out.append(f"anyport {era}: p50 {x:.2f}x the floor (target <= 2x): {'met' if x <= 2 else 'MISSED'}")
        if sdk is not None and sdk.calls_per_s and ours.calls_per_s:
            x = ours.calls_per_s / sdk.calls_per_s
            out.append(
                f"anyport {era}: throughput {x:.2f}x the Python SDK (target >= 10x): {'met' if x >= 10 else 'MISSED'}"
            )
    return out


def _run(cmd: Sequence[str], timeout: float = 20.0) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({type(exc).__name__})"
    return done.stdout.strip() or done.stderr.strip()[-200:]


_VERSIONS_SCRIPT = """
import importlib.metadata as m, json, sys
out = {"python": sys.version.split()[0]}
for name in ("anyport", "mcp", "orjson", "pydantic", "uvloop"):
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def environment(python: str, specs: dict[str, ServerSpec]) -> dict[str, Any]:
    """The machine and the versions of everything measured."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        versions: dict[str, Any] = orjson.loads(_run([python, "-c", _VERSIONS_SCRIPT]))
    except orjson.JSONDecodeError:
        versions = {}
    if specs["ts"].unavailable is None:
        versions["node"] = _run([specs["ts"].command[0], "--version"])
        pkg = ROOT / "tests/interop/peers/ts/node_modules/@modelcontextprotocol/server/package.json"
        try:
            versions["@modelcontextprotocol/server"] = orjson.loads(pkg.read_bytes()).get("version")
        except (OSError, orjson.JSONDecodeError):
            pass
    return {
        "platform": platform.platform(),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "server_python": python,
        "client_python": sys.version.split()[0],
        "versions": versions,
    }


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
    p.add_argument("--quick", action="store_true", help="a smoke run, well under a minute")
    p.add_argument("--only", type=_csv(SERVER_KEYS), default=list(SERVER_KEYS), help="servers: anyport,pysdk,ts,floor")
    p.add_argument("--eras", type=_csv(ERAS), default=list(ERAS), help="eras: legacy,modern")
    p.add_argument("--calls", type=int, help="sequential calls per row (default 2000; quick 300)")
    p.add_argument("--pipelined-calls", type=int, help="pipelined calls per row (default 50000; quick 10000)")
    p.add_argument("--seconds", type=float, help="time budget of the pipelined phase (default 10; quick 1.5)")
    p.add_argument("--depth", type=int, help="requests in flight in the pipelined phase (default 64)")
    p.add_argument("--startup-samples", type=int, help="fresh processes for start-up (default 3; quick 1)")
    p.add_argument("--rounds", type=int, help="round-robin slices of each phase (default 5; quick 2)")
    p.add_argument("--timeout", type=float, help="seconds without an answer before a server counts as hung")
    p.add_argument(
        "--pin", choices=("auto", "none"), default="auto",
        help="auto: client+server on one CPU for latency, on two for throughput; none: the scheduler decides",
    )
    p.add_argument("--python", default=default_python(), help="interpreter for the Python servers (default: repo .venv)")
    p.add_argument("--json", type=Path, help="where to write the raw results (default bench/results/stdio-<time>.json)")
    args = p.parse_args(argv)
    for name in ("calls", "pipelined_calls", "depth", "startup_samples", "rounds"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else FULL
    overrides = {
        "calls": args.calls, "pipelined_calls": args.pipelined_calls, "pipelined_seconds": args.seconds,
        "depth": args.depth, "startup_samples": args.startup_samples, "rounds": args.rounds,
        "timeout": args.timeout,
    }
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = settings_from(args)
    specs = server_specs(args.python)
    started = dt.datetime.now()
    log(f"stdio benchmark ({'quick' if args.quick else 'full'}): {cfg}")
    load_before = [round(x, 2) for x in os.getloadavg()]
    # Table order is fixed (anyport, Python SDK, TypeScript SDK, floor), whatever --only says.
    pinning = Pinning(args.pin)
    log(f"CPU placement: {pinning.describe()}")
    runners = [
        Runner(specs[key], era, cfg, pinning)
        for key in SERVER_KEYS if key in args.only
        for era in args.eras if era in specs[key].eras
    ]
    rows = run_all(runners, cfg, pinning)

    report = table(rows, cfg.depth)
    checks = target_checks(rows)
    print(report)
    if checks:
        print()
        print("\n".join(checks))

    path = args.json or RESULTS_DIR / f"stdio-{started:%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "stdio",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now() - started).total_seconds(), 1),
        "argv": sys.argv,
        "mode": "quick" if args.quick else "full",
        "settings": dataclasses.asdict(cfg),
        "cpu_placement": pinning.describe(),
        # 1/5/15-minute load averages: other work on the machine skews every number.
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "environment": environment(args.python, specs),
        "commands": {k: s.command for k, s in specs.items()},
        "rows": [dataclasses.asdict(r) for r in rows],
        "targets": checks,
        "table": report,
    }
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    log(f"raw results: {path}")
    return 0 if all(r.ok or r.status in ("unavailable", "not supported") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
