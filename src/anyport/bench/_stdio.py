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
"""

from __future__ import annotations

import collections
import contextlib
import os
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from anyport.bench._system import CpuTimes, Pinning, file_tail, percentile, tree_cpu

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

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
#: The handshake revisions, newest first: what ``initialize`` offers, and what it accepts back.
LEGACY_VERSIONS = (LEGACY_VERSION, "2025-06-18", "2025-03-26", "2024-11-05")
ERAS = ("legacy", "modern")
CLIENT_INFO = {"name": "anyport-bench", "version": "1.0.0"}
#: The per-request envelope of a 2026-07-28 request (there is no initialize on that revision).
MODERN_META: dict[str, Any] = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
}
#: What every benchmark echo call sends, and expects back.
ECHO_TEXT = "hello, benchmark"

_READ_CHUNK = 256 * 1024


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ServerFailure(Exception):
    """The server under test stopped behaving; ``kind`` is a short label for the results table."""

    kind = "failed"


class ServerDied(ServerFailure):
    kind = "died"


class ServerHung(ServerFailure):
    kind = "hung"


class WrongAnswer(ServerFailure):
    kind = "wrong answer"


class EraUnsupported(ServerFailure):
    kind = "not supported"


def short(value: Any, limit: int = 300) -> str:
    """``value`` as (at most ``limit`` characters of) JSON, for error messages."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        text = orjson.dumps(value, default=repr).decode(errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The ``tools/call`` a benchmark repeats, and how its answer is checked.

    Every answer must be a result with ``isError`` unset or false; with ``expect_text`` its first
    content block must also be a text block carrying exactly that text.
    """

    name: str = "echo"
    arguments: Mapping[str, Any] = field(default_factory=lambda: {"text": ECHO_TEXT})
    expect_text: str | None = ECHO_TEXT

    def params(self, era: str) -> dict[str, Any]:
        params: dict[str, Any] = {"name": self.name, "arguments": dict(self.arguments)}
        if era == "modern":
            params["_meta"] = MODERN_META
        return params

    def line(self, request_id: int, era: str) -> bytes:
        """One newline-terminated request for ``era`` ("legacy" or "modern")."""
        msg = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": self.params(era)}
        return orjson.dumps(msg, option=orjson.OPT_APPEND_NEWLINE)

    def check(self, msg: Any) -> None:
        """Raise ``WrongAnswer`` unless ``msg`` is a successful result (with the expected text)."""
        result = msg.get("result") if isinstance(msg, dict) else None
        if not isinstance(result, dict):
            if isinstance(msg, dict) and "error" in msg:
                raise WrongAnswer(f"tools/call {self.name} answered with an error: {short(msg['error'])}")
            raise WrongAnswer(f"expected a tools/call result, got {short(msg)}")
        if result.get("isError"):
            raise WrongAnswer(f"tools/call {self.name} returned isError: {short(result)}")
        if self.expect_text is None:
            return
        try:
            text = result["content"][0]["text"]
        except (KeyError, IndexError, TypeError):
            raise WrongAnswer(f"result without a text block: {short(msg)}") from None
        if text != self.expect_text:
            raise WrongAnswer(f"result has the wrong text: {short(msg)}")


ECHO = ToolCall()


def parse_line(line: bytes) -> Any:
    """Decode one line from the server; anything but a JSON object raises ``WrongAnswer``."""
    try:
        msg = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise WrongAnswer(f"not JSON on stdout: {line[:200]!r}") from None
    if not isinstance(msg, dict):
        raise WrongAnswer(f"not a JSON-RPC object on stdout: {line[:200]!r}")
    return msg


class StdioServer:
    """One server process on stdio pipes, driven with raw JSON lines.

    ``pump`` is the single I/O primitive: it writes what it can of an outgoing buffer and returns
    the complete lines that arrived, waiting at most ``timeout`` seconds for something to happen.
    The child's stderr goes to a temporary file (never a pipe that could fill up and block it);
    its tail is attached to failure reports.
    """

    def __init__(self, command: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()
        self._buf = bytearray()
        self._poll = select.poll()
        self._in_fd = -1
        self._out_fd = -1
        self._want_write = False
        #: Lines read while sending, not yet consumed by ``receive``.
        self._backlog: collections.deque[bytes] = collections.deque()

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the process (raises OSError when the command cannot be started)."""
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=self.cwd, env=self.env, bufsize=0, close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in_fd = self.proc.stdin.fileno()
        self._out_fd = self.proc.stdout.fileno()
        os.set_blocking(self._in_fd, False)
        os.set_blocking(self._out_fd, False)
        self._poll.register(self._out_fd, select.POLLIN)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> CpuTimes | None:
        """CPU time of the server process and its live descendants so far."""
        return tree_cpu(self.pid) if self.proc is not None else None

    def close(self, grace: float = 2.0) -> tuple[int | None, str]:
        """close stdin -> wait -> SIGTERM -> wait -> SIGKILL.

        Returns the exit code (None if unknown) and what ended the process: ``"stdin EOF"`` when
        it exited by itself once its stdin closed, else the signal that was needed.
        """
        proc = self.proc
        if proc is None:
            return None, "never started"
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        ended_by = "exiting by itself" if proc.poll() is not None else "stdin EOF"
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is not None:
                break
            if sig is not None:
                ended_by = sig.name
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        with contextlib.suppress(OSError):
            assert proc.stdout is not None
            proc.stdout.close()
        return proc.returncode, ended_by

    def stderr_tail(self, limit: int = 2000) -> str:
        """The last ``limit`` bytes the process wrote to stderr."""
        return file_tail(self._stderr, limit)

    def dispose(self) -> None:
        self.close()
        self._stderr.close()

    # -- I/O ---------------------------------------------------------------------------------------

    def failure(self, cls: type[ServerFailure], what: str) -> ServerFailure:
        """A failure report: ``what`` plus the exit code (if it exited) and the tail of its stderr."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is None and cls is ServerDied:
            # It closed a pipe: it is probably exiting, give it a moment to report its exit code.
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(1.0)
        if code is not None and cls is ServerHung:
            cls, what = ServerDied, "exited"
        detail = f"{what} (exit code {code})" if code is not None else what
        tail = self.stderr_tail().strip()
        return cls(f"{detail}; stderr tail: {tail[-600:]}" if tail else detail)

    def pump(self, out: bytearray, timeout: float) -> list[bytes]:
        """Write what fits of ``out`` (the written prefix is removed), return the lines that arrived.

        Waits up to ``timeout`` seconds for the first readable data; returns an empty list when
        nothing arrived in time. Raises ``ServerDied`` on end-of-file or a broken pipe.
        """
        if out:
            self._write(out)
        want_write = bool(out)
        if want_write != self._want_write:
            if want_write:
                self._poll.register(self._in_fd, select.POLLOUT)
            else:
                self._poll.unregister(self._in_fd)
            self._want_write = want_write
        ms = max(0, int(timeout * 1000 + 0.999))
        lines: list[bytes] = []
        for fd, _events in self._poll.poll(ms):
            if fd == self._in_fd:
                self._write(out)
                continue
            try:
                chunk = os.read(self._out_fd, _READ_CHUNK)
            except BlockingIOError:
                continue
            if not chunk:
                raise self.failure(ServerDied, "its stdout reached end-of-file")
            lines.extend(self._split(chunk))
        return lines

    def _write(self, out: bytearray) -> None:
        try:
            n = os.write(self._in_fd, out)
        except BlockingIOError:
            return
        except (BrokenPipeError, ConnectionResetError):
            raise self.failure(ServerDied, "its stdin pipe broke") from None
        del out[:n]

    def _split(self, chunk: bytes) -> list[bytes]:
        buf = self._buf
        if buf:
            buf += chunk
            data = bytes(buf)
            buf.clear()
        else:
            data = chunk
        parts = data.split(b"\n")
        tail = parts.pop()
        if tail:
            buf += tail
        return [p for p in parts if p.strip()]

    def send(self, data: bytes, timeout: float) -> None:
        """Write all of ``data``; lines that arrive meanwhile are kept for the next ``receive``."""
        out = bytearray(data)
        deadline = time.monotonic() + timeout
        self._backlog.extend(self.pump(out, 0))
        while out:
            self._backlog.extend(self.pump(out, 0.05))
            if out and time.monotonic() > deadline:
                raise self.failure(ServerHung, f"did not read its stdin for {timeout:.0f} s")

    def receive(self, request_id: int, timeout: float) -> Any:
        """The answer to ``request_id``: waits up to ``timeout`` s in total, skipping notifications."""
        deadline = time.monotonic() + timeout
        while True:
            while self._backlog:
                msg = parse_line(self._backlog.popleft())
                if "method" in msg:
                    continue  # a notification or request from the server: not our answer
                if msg.get("id") == request_id:
                    return msg
                raise WrongAnswer(f"answer to an id we did not expect: {short(msg)}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise self.failure(ServerHung, f"no answer to request {request_id} within {timeout:.0f} s")
            self._backlog.extend(self.pump(bytearray(), left))

    def roundtrip(self, data: bytes, request_id: int, timeout: float) -> Any:
        """The lean path for latency: write one small request and wait for its answer."""
        try:
            n = os.write(self._in_fd, data)
        except BlockingIOError:
            n = 0
        except (BrokenPipeError, ConnectionResetError):
            raise self.failure(ServerDied, "its stdin pipe broke") from None
        if n < len(data):
            self.send(data[n:], timeout)
        return self.receive(request_id, timeout)

    def request(self, message: dict[str, Any], timeout: float) -> Any:
        """Send one request and return its whole answer (a result or a JSON-RPC error)."""
        self.send(orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE), timeout)
        return self.receive(message["id"], timeout)

    def call(self, message: dict[str, Any], timeout: float) -> Any:
        """Send one request and wait for its result (raises ``WrongAnswer`` on a JSON-RPC error)."""
        msg = self.request(message, timeout)
        if "error" in msg:
            raise WrongAnswer(f"{message['method']} failed: {short(msg['error'])}")
        return msg.get("result")

    def notify(self, method: str, timeout: float) -> None:
        self.send(orjson.dumps({"jsonrpc": "2.0", "method": method}, option=orjson.OPT_APPEND_NEWLINE), timeout)

    def handshake(self, timeout: float) -> dict[str, Any]:
        """The legacy handshake: initialize (offering 2025-11-25; an older revision in the answer is
        accepted, tools/call is the same on all of them) then notifications/initialized."""
        result = self.call(
            {
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO},
            },
            timeout,
        )
        if not isinstance(result, dict) or result.get("protocolVersion") not in LEGACY_VERSIONS:
            raise WrongAnswer(f"initialize agreed on no revision we speak ({', '.join(LEGACY_VERSIONS)}): {short(result)}")
        self.notify("notifications/initialized", timeout)
        return result


def list_tools(srv: StdioServer, era: str, first_id: int, timeout: float, max_pages: int = 50) -> list[dict[str, Any]]:
    """Every tool the server lists (following ``nextCursor``, at most ``max_pages`` pages).

    On the modern era a JSON-RPC error answer raises ``EraUnsupported``.
    """
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for page in range(max_pages):
        params: dict[str, Any] = {} if cursor is None else {"cursor": cursor}
        if era == "modern":
            params["_meta"] = MODERN_META
        msg = srv.request({"jsonrpc": "2.0", "id": first_id + page, "method": "tools/list", "params": params}, timeout)
        if "error" in msg:
            cls = EraUnsupported if era == "modern" else WrongAnswer
            raise cls(f"tools/list failed: {short(msg['error'])}")
        result = msg.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            raise WrongAnswer(f"tools/list answered without a tools list: {short(msg)}")
        tools.extend(t for t in result["tools"] if isinstance(t, dict))
        cursor = result.get("nextCursor")
        if not cursor:
            break
    return tools


# -- the phases ----------------------------------------------------------------------------------


def handshake(srv: StdioServer, era: str, timeout: float) -> None:
    """The legacy era's initialize + initialized; the modern era has nothing to do."""
    if era == "legacy":
        srv.handshake(timeout)


def first_call(srv: StdioServer, era: str, request_id: int, timeout: float, call: ToolCall) -> None:
    """One call; a JSON-RPC error on the modern era means the server does not speak it."""
    msg = srv.roundtrip(call.line(request_id, era), request_id, timeout)
    if era == "modern" and isinstance(msg, dict) and "error" in msg:
        raise EraUnsupported(orjson.dumps(msg["error"]).decode()[:300])
    call.check(msg)


def sequential(
    srv: StdioServer, era: str, first_id: int, count: int, seconds: float, timeout: float, call: ToolCall
) -> list[float]:
    """Up to ``count`` calls one at a time (stopping after ``seconds``); latencies in µs."""
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds
    clock = time.perf_counter_ns
    for request_id in range(first_id, first_id + count):
        data = call.line(request_id, era)
        t0 = clock()
        msg = srv.roundtrip(data, request_id, timeout)
        t1 = clock()
        call.check(msg)
        latencies.append((t1 - t0) / 1000.0)
        if time.monotonic() > stop_at:
            break
    return latencies


@dataclass(slots=True)
class Pipelined:
    calls: int
    seconds: float


def pipelined(
    srv: StdioServer, era: str, first_id: int, count: int, seconds: float, depth: int, timeout: float, call: ToolCall
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
                out += call.line(next_id, era)
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
            call.check(msg)
            done += 1
    return Pipelined(done, clock() - t0)


# -- rows ----------------------------------------------------------------------------------------


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
