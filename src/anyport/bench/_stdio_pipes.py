"""One server process on stdio pipes, driven with raw JSON lines (``StdioServer``).

Both our pipe ends are non-blocking; one ``select.poll`` object watches stdout for answers and
stdin for room to write, so neither a stalled reader nor a stalled writer can block the client.
Also here: ``parse_line`` (one line of the server's stdout) and ``list_tools``.
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
from typing import Any

import orjson

from anyport.bench._mcp import (
    CLIENT_INFO,
    LEGACY_VERSION,
    LEGACY_VERSIONS,
    MODERN_META,
    EraUnsupported,
    ServerDied,
    ServerFailure,
    ServerHung,
    WrongAnswer,
    short,
)
from anyport.bench._system import CpuTimes, file_tail, tree_cpu

__all__ = ["StdioServer", "list_tools", "parse_line"]

_READ_CHUNK = 256 * 1024


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
