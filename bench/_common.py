"""Shared pieces of the stdio benchmark: a raw JSON-lines client for one server process.

Nothing here uses an MCP SDK. The client writes JSON-RPC lines encoded with orjson and reads
newline-framed answers from the child's stdout, so the client-side cost is identical for every
server under test. Every wait is bounded: a read that sees no answer within its timeout raises
``ServerHung``, end-of-file on the child's stdout raises ``ServerDied``, and an answer that is
not the expected echo result raises ``WrongAnswer``.

Both our pipe ends are non-blocking; one ``select.poll`` object watches stdout for answers and
stdin for room to write, so neither a stalled reader nor a stalled writer can block the client.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "ECHO_TEXT",
    "LEGACY_VERSION",
    "MODERN_META",
    "MODERN_VERSION",
    "ServerDied",
    "ServerFailure",
    "ServerHung",
    "StdioServer",
    "WrongAnswer",
    "check_echo",
    "echo_request",
    "parse_line",
    "percentile",
    "set_affinity",
]

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
CLIENT_INFO = {"name": "anyport-bench", "version": "1.0.0"}
#: The per-request envelope of a 2026-07-28 request (there is no initialize on that revision).
MODERN_META: dict[str, Any] = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
}
#: What every benchmark call echoes.
ECHO_TEXT = "hello, benchmark"

_READ_CHUNK = 256 * 1024
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ServerFailure(Exception):
    """The server under test stopped behaving; ``kind`` is a short label for the results table."""

    kind = "failed"


class ServerDied(ServerFailure):
    kind = "died"


class ServerHung(ServerFailure):
    kind = "hung"


class WrongAnswer(ServerFailure):
    kind = "wrong answer"


def echo_request(request_id: int, era: str) -> bytes:
    """One newline-terminated ``tools/call echo`` request for ``era`` ("legacy" or "modern")."""
    params: dict[str, Any] = {"name": "echo", "arguments": {"text": ECHO_TEXT}}
    if era == "modern":
        params["_meta"] = MODERN_META
    msg = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
    return orjson.dumps(msg, option=orjson.OPT_APPEND_NEWLINE)


def check_echo(msg: Any) -> None:
    """Raise ``WrongAnswer`` unless ``msg`` is a successful echo result carrying ``ECHO_TEXT``."""
    result = msg.get("result") if isinstance(msg, dict) else None
    if not isinstance(result, dict):
        raise WrongAnswer(f"expected an echo result, got {_short(msg)}")
    try:
        text = result["content"][0]["text"]
    except (KeyError, IndexError, TypeError):
        raise WrongAnswer(f"echo result without a text block: {_short(msg)}") from None
    if text != ECHO_TEXT or result.get("isError"):
        raise WrongAnswer(f"echo result has the wrong text or isError set: {_short(msg)}")


def _short(value: Any, limit: int = 300) -> str:
    text = orjson.dumps(value, default=repr).decode(errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(slots=True)
class CpuTimes:
    """User and system CPU seconds of a process (all its threads), from /proc/PID/stat."""

    user: float
    system: float

    @property
    def total(self) -> float:
        return self.user + self.system


def process_cpu(pid: int) -> CpuTimes | None:
    """CPU time used so far by ``pid``; None where /proc is not available or the process is gone.

    Fields 14 and 15 of /proc/PID/stat (utime, stime) in clock ticks; the command name (field 2)
    may hold spaces and parentheses, so the fields are counted from the last ``)``.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state), so utime (field 14) is fields[11] and stime (field 15) fields[12].
    return CpuTimes(int(fields[11]) / _CLK_TCK, int(fields[12]) / _CLK_TCK)


def set_affinity(pid: int, cpus: set[int]) -> bool:
    """Move every thread of process ``pid`` (0: this process's calling thread only) onto ``cpus``.

    ``sched_setaffinity`` acts on one thread, so a multi-threaded server (node, anyio's worker
    threads) is moved thread by thread through /proc/PID/task. Returns False where unsupported.
    """
    if not hasattr(os, "sched_setaffinity"):
        return False
    if pid == 0:
        os.sched_setaffinity(0, cpus)
        return True
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return False
    for tid in tids:
        with contextlib.suppress(OSError):  # a thread that just exited
            os.sched_setaffinity(tid, cpus)
    return True


class StdioServer:
    """One server process on stdio pipes, driven with raw JSON lines.

    ``pump`` is the single I/O primitive: it writes what it can of an outgoing buffer and returns
    the complete lines that arrived, waiting at most ``timeout`` seconds for something to happen.
    The child's stderr goes to a temporary file (never a pipe that could fill up and block it);
    its tail is attached to failure reports.
    """

    def __init__(self, command: Sequence[str], *, cwd: str, env: Mapping[str, str] | None = None) -> None:
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
        return process_cpu(self.pid) if self.proc is not None else None

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
        try:
            self._stderr.flush()
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

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
                raise WrongAnswer(f"answer to an id we did not expect: {_short(msg)}")
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

    def call(self, message: dict[str, Any], timeout: float) -> Any:
        """Send one request and wait for its answer (raises on a JSON-RPC error answer)."""
        self.send(orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE), timeout)
        msg = self.receive(message["id"], timeout)
        if "error" in msg:
            raise WrongAnswer(f"{message['method']} failed: {_short(msg['error'])}")
        return msg["result"]

    def notify(self, method: str, timeout: float) -> None:
        self.send(orjson.dumps({"jsonrpc": "2.0", "method": method}, option=orjson.OPT_APPEND_NEWLINE), timeout)

    def handshake(self, timeout: float) -> dict[str, Any]:
        """The legacy handshake: initialize (2025-11-25) then notifications/initialized."""
        result = self.call(
            {
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO},
            },
            timeout,
        )
        if not isinstance(result, dict) or result.get("protocolVersion") != LEGACY_VERSION:
            raise WrongAnswer(f"initialize did not agree on {LEGACY_VERSION}: {_short(result)}")
        self.notify("notifications/initialized", timeout)
        return result


def parse_line(line: bytes) -> Any:
    """Decode one line from the server; anything but a JSON object raises ``WrongAnswer``."""
    try:
        msg = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise WrongAnswer(f"not JSON on stdout: {line[:200]!r}") from None
    if not isinstance(msg, dict):
        raise WrongAnswer(f"not a JSON-RPC object on stdout: {line[:200]!r}")
    return msg
