"""The stdio load generator: a raw JSON-lines client for one server process, and the phases.

Nothing here uses an MCP SDK (not even anyport's client): requests are JSON-RPC lines encoded
with orjson and answers are read newline-framed from the child's stdout, so the client-side cost
is the same for every server under test. Both our pipe ends are non-blocking; one
``select.poll`` object watches stdout for answers and stdin for room to write, so neither a
stalled reader nor a stalled writer can block the client.

Every wait is bounded: no answer within the timeout raises ``ServerHung``, end-of-file on the
child's stdout or a broken stdin pipe ``ServerDied`` (with its exit code and stderr tail), and an
answer that is not the expected result ``WrongAnswer``.

A ``Runner`` is one row (one server process on one era); ``run_all`` measures rows round-robin:
sequential latency, pipelined throughput with server CPU per call, then start-up of fresh
processes. ``bench/stdio.py`` and ``anyport bench -- COMMAND`` both drive it.

This module holds the rows (``StdioSettings``, ``ServerSpec``, ``Row``, ``Runner``) and
``run_all``; the pieces live in ``_mcp`` (revisions, ``ToolCall``, failure kinds),
``_stdio_pipes`` (``StdioServer``, the pipe client) and ``_stdio_phases`` (the phases on one
process). Their names stay importable from here.
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from anyport.bench._mcp import (
    CLIENT_INFO,
    ECHO,
    ECHO_TEXT,
    ERAS,
    LEGACY_VERSION,
    MODERN_META,
    MODERN_VERSION,
    EraUnsupported,
    ServerDied,
    ServerFailure,
    ServerHung,
    ToolCall,
    WrongAnswer,
    short,
)
from anyport.bench._stdio_phases import first_call, handshake, pipelined, sequential
from anyport.bench._stdio_pipes import StdioServer, list_tools, parse_line
from anyport.bench._system import Pinning, percentile

__all__ = [
    "CLIENT_INFO",
    "ECHO",
    "ECHO_TEXT",
    "ERAS",
    "LEGACY_VERSION",
    "MODERN_META",
    "MODERN_VERSION",
    "EraUnsupported",
    "Row",
    "Runner",
    "ServerDied",
    "ServerFailure",
    "ServerHung",
    "ServerSpec",
    "StdioServer",
    "StdioSettings",
    "ToolCall",
    "WrongAnswer",
    "list_tools",
    "parse_line",
    "run_all",
    "short",
]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class StdioSettings:
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


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """A server under test: how to start it, which eras it speaks, or why it cannot run here."""

    key: str
    label: str
    command: list[str]
    eras: tuple[str, ...] = ERAS
    unavailable: str | None = None
    cwd: str | None = None


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


def startup_once(spec: ServerSpec, era: str, timeout: float, call: ToolCall) -> float:
    """Seconds from spawning a fresh process to the first answered call (handshake included)."""
    srv = StdioServer(spec.command, cwd=spec.cwd)
    try:
        t0 = time.perf_counter()
        srv.start()
        handshake(srv, era, timeout)
        first_call(srv, era, 1, timeout, call)
        return time.perf_counter() - t0
    finally:
        srv.dispose()


class Runner:
    """One row: a long-lived server process, measured a slice at a time.

    The phases run round-robin over all rows (``StdioSettings.rounds`` slices each), so load from
    anything else on the machine is spread over every server instead of landing on whichever
    one happened to be running. A failure ends the row: it is recorded, the process is closed,
    and the remaining slices are skipped. Latency slices run with client and server on one CPU,
    pipelined slices on two (``Pinning``).
    """

    def __init__(
        self, spec: ServerSpec, era: str, cfg: StdioSettings, pinning: Pinning, *,
        call: ToolCall = ECHO, log: Callable[[str], None] = _log,
    ) -> None:
        self.spec = spec
        self.era = era
        self.cfg = cfg
        self.pinning = pinning
        self.call = call
        self.log = log
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
            self.log(f"  {self.row.name}: {self.row.status}: {self.row.detail}")
            self.close()

    def open(self) -> None:
        """Spawn, handshake, first call, warm-up."""
        if not self.row.ok:
            return
        srv = self.srv = StdioServer(self.spec.command, cwd=self.spec.cwd)
        self.pinning.release()
        with self._phase("start"):
            srv.start()
        if self.live:
            with self._phase("handshake" if self.era == "legacy" else "first call"):
                handshake(srv, self.era, self.cfg.startup_timeout)
                first_call(srv, self.era, self.next_id, self.cfg.startup_timeout, self.call)
                self.next_id += 1
        if self.live:
            with self._phase("warm-up"):
                cfg = self.cfg
                self.pinning.same_cpu(0, srv.pid)
                done = sequential(srv, self.era, self.next_id, cfg.warmup, cfg.calls_seconds, cfg.timeout, self.call)
                self.next_id += len(done)
                self.pinning.two_cpus(0, srv.pid)
                pipelined(
                    srv, self.era, self.next_id, cfg.warmup_pipelined, cfg.pipelined_seconds / cfg.rounds, cfg.depth,
                    cfg.timeout, self.call,
                )
                self.next_id += cfg.warmup_pipelined

    def sequential_slice(self, count: int, seconds: float) -> None:
        """``count`` more one-at-a-time calls (at most ``seconds``)."""
        if not self.live:
            return
        assert self.srv is not None
        with self._phase("sequential"):
            self.pinning.same_cpu(0, self.srv.pid)
            cpu0 = self.srv.cpu()
            lat = sequential(self.srv, self.era, self.next_id, count, seconds, self.cfg.timeout, self.call)
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
            self.pinning.two_cpus(0, self.srv.pid)
            cpu0 = self.srv.cpu()
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            result = pipelined(self.srv, self.era, self.next_id, count, seconds, self.cfg.depth, self.cfg.timeout, self.call)
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
            self.log(f"  {self.row.name}: note: {self.row.exit}")
        srv.dispose()

    def startup_sample(self) -> None:
        """One fresh process from spawn to first answer."""
        if not self.ever_answered or self.row.status.startswith("start-up failed"):
            return
        try:
            self.row.startup_samples_s.append(startup_once(self.spec, self.era, self.cfg.startup_timeout, self.call))
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


def rotated(items: Sequence[Any], k: int) -> list[Any]:
    """``items`` rotated left by ``k`` (the round-robin order of round ``k``)."""
    k %= max(1, len(items))
    return [*items[k:], *items[:k]]


def run_all(runners: Sequence[Runner], cfg: StdioSettings, pinning: Pinning, log: Callable[[str], None] = _log) -> list[Row]:
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
            log(f"{phase}: {rounds} round{'s' if rounds > 1 else ''}")
            for i in range(rounds):
                for r in rotated(runners, i):
                    if phase == "sequential":
                        r.sequential_slice(seq_count, cfg.calls_seconds / rounds)
                    else:
                        r.pipelined_slice(pipe_count, cfg.pipelined_seconds / rounds)
        for r in runners:
            r.close()
        pinning.release()
        if cfg.startup_samples:
            log(f"start-up: {cfg.startup_samples} fresh process{'es' if cfg.startup_samples > 1 else ''} per row")
        for i in range(cfg.startup_samples):
            for r in rotated(runners, i):
                r.startup_sample()
    finally:
        for r in runners:
            r.close()
        pinning.release()
    rows = [r.finish() for r in runners]
    for row in rows:
        if row.ok:
            log(
                f"  {row.name}: p50 {row.p50_us or 0:.0f} µs, {row.calls_per_s or 0:,.0f} calls/s, "
                f"start-up {row.startup_s or 0:.3f} s"
            )
    return rows
