"""The stdio fuzzer: a real ``anyport serve`` process fed generated lines (T-STDIO-*).

Threads, no event loop: one thread drains stdout into a queue (so the server never blocks on a
full pipe), one drains stderr. Only the main thread writes stdin, so a reply to a server->client
request never lands in the middle of a line being written.

After each batch a liveness probe (legacy ``ping``, L-19, or a 2026-07-28 ``tools/list``) must be
answered, every request with a readable id must have exactly one answer with that id, and the
process must still be running.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.fuzz._gen import CAPS, INFO, LEGACY, MODERN, PV, Frame, Gen, encode
from tests.fuzz._oracle import Expectation, StreamModel, Tally, compare, id_key, signature, split_frames

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "interop" / "fixture_server.py"
#: The --max-message-bytes of the fuzzed process: big enough for every hostile value the
#: generator makes (a few 64 KiB strings), small enough that oversized lines are cheap.
LIMIT = 1024 * 1024
#: Modes a process starts in: not initialized (both eras, M-12), or after a legacy handshake.
MODES: tuple[str | None, ...] = (None, *LEGACY)
PROBE_META = {PV: MODERN, CAPS: {}, INFO: {"name": "fuzz-probe", "version": "1"}}
#: Failing batches kept (reported, with their frames) per kind of failure.
EXAMPLES = 3


@dataclass
class StdioReport:
    inputs: int = 0
    batches: int = 0
    processes: int = 0
    #: Up to ``EXAMPLES`` failing batches of each kind of failure (``signature``).
    failures: list[str] = field(default_factory=list)
    failing_batches: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    #: The frames of each failing batch, for a reproducer.
    failing_frames: list[tuple[str | None, list[Frame]]] = field(default_factory=list)


class StdioServer:
    """One spawned server with its pipes drained."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "anyport", "serve", str(FIXTURE), "--max-message-bytes", str(limit)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.stderr = bytearray()
        self.tracebacks = 0
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True, name="fuzz-stdout"),
            threading.Thread(target=self._read_stderr, daemon=True, name="fuzz-stderr"),
        ]
        for t in self._threads:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.put(raw)
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            if b"Traceback" in raw:
                self.tracebacks += 1
            self.stderr += raw
            if len(self.stderr) > 256 * 1024:
                del self.stderr[: len(self.stderr) - 128 * 1024]

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, n: int = 3000) -> str:
        return bytes(self.stderr[-n:]).decode("utf-8", "replace")

    def close(self, timeout: float = 10.0) -> list[str]:
        """Close stdin; the server must exit promptly with status 0 (T-STDIO-11)."""
        problems: list[str] = []
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout)
            if code != 0:
                problems.append(f"T-STDIO-11: the server exited with status {code} on stdin EOF; stderr:\n{self.stderr_tail()}")
        except subprocess.TimeoutExpired:
            problems.append(f"T-STDIO-11: the server did not exit within {timeout} s of stdin EOF")
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join(5)
        if self.tracebacks:
            problems.append(f"the server logged {self.tracebacks} traceback(s) for client input; stderr tail:\n{self.stderr_tail()}")
        return problems


class StdioSession:
    """One fuzzed process: the model of its state, and its batches."""

    def __init__(self, gen: Gen, mode: str | None, *, limit: int = LIMIT, answer_timeout: float = 30.0) -> None:
        self.gen = gen
        self.mode = mode
        self.server = StdioServer(limit)
        self.model = StreamModel()
        self.answer_timeout = answer_timeout
        self._probes = 0
        if mode is not None:
            init = {"jsonrpc": "2.0", "id": "init", "method": "initialize",
                    "params": {"protocolVersion": mode, "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}}
            frames = [Frame(encode(init), "setup"), Frame(encode({"jsonrpc": "2.0", "method": "notifications/initialized"}), "setup")]
            problems = self.batch(frames)
            if problems or self.model.version != mode:
                raise RuntimeError(f"could not initialize {mode}: {problems}")

    def _probe(self) -> tuple[bytes, Any]:
        self._probes += 1
        pid = f"probe-{self._probes}"
        if self._probes % 2:
            return encode({"jsonrpc": "2.0", "id": pid, "method": "ping"}), pid
        msg = {"jsonrpc": "2.0", "id": pid, "method": "tools/list", "params": {"_meta": PROBE_META}}
        return encode(msg), pid

    def batch(self, frames: list[Frame]) -> list[str]:
        """Send ``frames`` (several per write, split anywhere), then a probe; check every answer."""
        gen = self.gen
        stream = b"".join(f.data + (b"\r\n" if gen.random() < 0.1 else b"\n") for f in frames)
        heads = {f.data: f.head_id for f in frames if f.head_id is not None}
        exp = Expectation()
        for line, over in split_frames(stream, self.server.limit):
            exp.merge(self.model.oversized(heads.get(line.rstrip(b"\r")), line) if over else self.model.frame(line))
        probe, pid = self._probe()
        exp.required[id_key(pid)] += 1
        exp.origin[id_key(pid)] = probe
        problems: list[str] = []
        try:
            for chunk in _cuts(gen, stream):
                self.server.write(chunk)
            self.server.write(probe + b"\n")
        except OSError as exc:
            return [f"writing to the server failed ({exc!r}): it died; stderr:\n{self.server.stderr_tail()}"]
        tally = Tally()
        problems += self._collect(exp, tally, pid)
        problems += tally.problems
        problems += compare(exp, tally)
        if not self.server.alive():
            problems.append(f"the server exited ({self.server.proc.returncode}); stderr:\n{self.server.stderr_tail()}")
        return problems

    def _collect(self, exp: Expectation, tally: Tally, pid: str) -> list[str]:
        deadline = time.monotonic() + self.answer_timeout
        answered = 0
        while True:
            missing = [k for k, n in exp.required.items() if tally.counts.get(k, 0) < n]
            if not missing:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                shown = ", ".join(f"{k[1]!r} from {exp.origin.get(k, b'?')[:160]!r}" for k in missing[:5])
                return [f"no answer within {self.answer_timeout:g} s for {len(missing)} request(s) (liveness probe {pid!r} "
                        f"{'answered' if tally.counts.get(id_key(pid)) else 'NOT answered'}): {shown}"]
            try:
                raw = self.server.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if raw is None:
                return [f"the server closed stdout (exit {self.server.proc.poll()}); stderr:\n{self.server.stderr_tail()}"]
            tally.take(raw.rstrip(b"\n"))
            # Answer server->client requests (legacy elicitation / sampling / roots) like a client that has none.
            while answered < len(tally.server_requests):
                rid = tally.server_requests[answered]
                answered += 1
                self.server.write(encode({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "fuzz client: not supported"}}) + b"\n")
        # What is already written after the last awaited answer belongs to this batch too.
        while True:
            try:
                raw = self.server.lines.get_nowait()
            except queue.Empty:
                break
            if raw is None:
                break
            tally.take(raw.rstrip(b"\n"))
        return []

    def close(self) -> list[str]:
        return self.server.close()


def _cuts(gen: Gen, stream: bytes) -> Iterable[bytes]:
    """The stream in 1..8 writes cut at random places (messages split across and joined in writes)."""
    n = gen.randrange(1, 9)
    points = sorted(gen.randrange(len(stream) + 1) for _ in range(n - 1))
    start = 0
    for p in [*points, len(stream)]:
        if p > start:
            yield stream[start:p]
            start = p


def fuzz_stdio(
    inputs: int, *, seed: int = 0, batch_size: int = 100, per_process: int = 20_000, oversized_rate: float = 0.003,
    modes: tuple[str | None, ...] = MODES, stop_after: int = 5, progress: Any = None, answer_timeout: float = 30.0,
) -> StdioReport:
    """Feed ``inputs`` generated frames to a rotation of server processes (one per mode, then again).

    Stops early once ``stop_after`` different kinds of failure were seen."""
    report = StdioReport()
    gen = Gen(seed, limit=LIMIT)
    per_process = max(batch_size, min(per_process, -(-inputs // len(modes))))
    m = 0
    while report.inputs < inputs and len(report.kinds) < stop_after:
        mode = modes[m % len(modes)]
        m += 1
        session = StdioSession(gen, mode, answer_timeout=answer_timeout)
        report.processes += 1
        sent = 0
        try:
            while sent < per_process and report.inputs < inputs and len(report.kinds) < stop_after:
                n = min(batch_size, inputs - report.inputs)
                frames = [gen.frame(oversized_rate=oversized_rate) for _ in range(n)]
                problems = session.batch(frames)
                sent += n
                report.inputs += n
                report.batches += 1
                if problems:
                    report.failing_batches += 1
                    kind = signature(problems[0])
                    report.kinds[kind] += 1
                    if report.kinds[kind] <= EXAMPLES:
                        report.failures.append(f"[mode {mode or 'uninitialized'}, batch {report.batches}] " + "\n  ".join(problems[:8]))
                        report.failing_frames.append((mode, frames))
                    if not session.server.alive():
                        break
                if progress is not None:
                    progress(report)
        finally:
            closing = session.close()
            if closing:
                report.kinds[signature(closing[0])] += 1
                report.failures.append(f"[mode {mode or 'uninitialized'}, on close] " + "\n  ".join(closing))
    return report


def isolate(mode: str | None, frames: list[Frame], *, seed: int = 0, limit: int = LIMIT) -> tuple[Frame, list[str]] | None:
    """Replay a failing batch one frame per batch on a fresh process: the first frame whose batch fails."""
    session = StdioSession(Gen(seed, limit=limit), mode, limit=limit, answer_timeout=15.0)
    try:
        for frame in frames:
            problems = session.batch([frame])
            if problems:
                return frame, problems
            if not session.server.alive():
                return frame, ["the server died"]
        return None
    finally:
        session.close()


def describe(frame: Frame, limit: int = 300) -> str:
    data = frame.data
    shown = data if len(data) <= limit else data[:limit] + b"...(%d bytes)" % len(data)
    return f"{frame.kind}: {shown!r}"


def probe_once(lines: list[bytes], *, mode: str | None = None, limit: int = LIMIT, wait_for: Iterable[Any] = ()) -> list[Any]:
    """Send ``lines`` to a fresh process (after a handshake in ``mode``), then a ping; return every message
    it wrote up to the ping's answer and the answers to the ids in ``wait_for``."""
    server = StdioServer(limit)
    waiting = set(wait_for)
    try:
        if mode is not None:
            server.write(encode({"jsonrpc": "2.0", "id": "init", "method": "initialize",
                                 "params": {"protocolVersion": mode, "capabilities": {}}}) + b"\n")
        for line in lines:
            server.write(line)
        server.write(b'{"jsonrpc":"2.0","id":"end","method":"ping"}\n')
        out: list[Any] = []
        ended = False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (ended and not waiting):
            try:
                raw = server.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if raw is None:
                break
            msg = orjson.loads(raw)
            rid = msg.get("id") if isinstance(msg, dict) else None
            if rid == "end":
                ended = True
            elif rid != "init":
                out.append(msg)
                waiting.discard(rid)
        return out
    finally:
        server.close()
