"""The HTTP load generator: a separate process, driven one JSON job per line.

``LoadClient`` (the parent side, used by ``bench/http.py`` and ``anyport bench URL``) starts
``python -m anyport.bench._http_load`` and writes one JSON job per line to its stdin; the process
answers one JSON result per line on stdout, so one long-lived process serves every slice of a
run (no interpreter start-up per slice, and the harness can pin it to a CPU once). Nothing here
uses an MCP SDK or an HTTP library: a minimal HTTP/1.1 client on ``asyncio.Protocol``
(keep-alive connections, Content-Length and chunked bodies, SSE events parsed from the body or,
for the 2024-11-05 transport, from a long-lived GET stream; TLS for ``https://``) writes
requests built from byte templates and parses answers with orjson. The client-side cost is
therefore the same, and small, for every server.

Jobs:

- ``run``: ``concurrency`` workers, each with its own keep-alive connection (and, for stateful
  kinds, its own session), call one tool back to back: a warm-up, then the measured phase,
  bounded by a count and by seconds. With ``server_pid`` the server's CPU (``/proc/PID/stat``,
  the process and its children) is read right before and after the measured phase. Kinds:
  ``stateless`` (2025-11-25, no handshake), ``stateful`` (initialize + initialized, then
  ``Mcp-Session-Id``; DELETE at the end), ``modern`` (2026-07-28: ``_meta`` envelope plus
  ``MCP-Protocol-Version`` / ``Mcp-Method`` / ``Mcp-Name`` headers), ``sse`` (the 2024-11-05
  HTTP+SSE transport: GET /sse, POST to the endpoint it names, answers on the stream).
- ``sessions``: open ``count`` legacy sessions (initialize + initialized) and DELETE them all,
  reading the server's VmRSS (``/proc/PID/status``) before, in between, and after.
- ``probe``: what an unknown server speaks: a 2026-07-28 ``tools/list``, then a 2025-11-25
  ``initialize`` (a session id in the answer means stateful) and ``tools/list``.

Every wait is bounded: no completed request for ``timeout`` seconds, or requests still running
``timeout`` seconds after the time budget, ends the job as "hung".

This module is the process's entry point (``main``) and the parent side (``LoadClient``,
``Cell``, the job builders); the process itself lives in ``_http_conn`` (the HTTP/1.1
connection and response parsing), ``_http_worker`` (one simulated client per kind) and
``_http_jobs`` (the jobs, their watchdog, and the stdin loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from anyport.bench._http_jobs import serve_jobs
from anyport.bench._mcp import ToolCall
from anyport.bench._system import file_tail, percentile

__all__ = ["Cell", "LoadClient", "parse_url"]


def main() -> None:
    try:
        import uvloop  # the client's own loop: the same for every server, and cheaper per request
    except ImportError:
        asyncio.run(serve_jobs())
    else:
        uvloop.run(serve_jobs())


# -- the parent side -----------------------------------------------------------------------------


def parse_url(url: str) -> dict[str, Any]:
    """``http[s]://host[:port]/path[?query]`` as job fields: host, port, path, tls."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http:// or https:// URL: {url!r}")
    tls = parts.scheme == "https"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return {"host": parts.hostname, "port": parts.port or (443 if tls else 80), "path": path, "tls": tls}


class LoadClient:
    """The load-generator process: one JSON job in, one JSON result out (``run``)."""

    def __init__(self, python: str = sys.executable, env: dict[str, str] | None = None) -> None:
        self.python = python
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()
        self._buf = b""

    @property
    def command(self) -> list[str]:
        return [self.python, "-m", "anyport.bench._http_load"]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, close_fds=True,
            bufsize=0, env=self.env,
        )
        self._buf = b""

    @property
    def pid(self) -> int:
        if self.proc is None:
            self.start()
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
        result: dict[str, Any] = orjson.loads(line)
        return result

    def _restart(self, why: str) -> dict[str, Any]:
        tail = self.stderr_tail()
        self.stop()
        return {"ok": False, "kind": "hung", "error": f"{why}; client stderr: {tail}"}

    def stderr_tail(self, limit: int = 600) -> str:
        return file_tail(self._stderr, limit).strip()

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

    def dispose(self) -> None:
        self.stop()
        self._stderr.close()


@dataclass(slots=True)
class Cell:
    """One server in one mode at one concurrency, accumulated over its slices (``run`` results)."""

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

    @property
    def reply(self) -> str:
        return "/".join(sorted(self.replies)) or "—"

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

    def fail(self, result: dict[str, Any]) -> None:
        self.status = f"{result.get('kind', 'failed')} during {result.get('phase', '?')}"
        self.detail = str(result.get("error", ""))

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


def run_job_fields(
    *, kind: str, target: dict[str, Any], concurrency: int, warmup_count: int, warmup_seconds: float, count: int,
    seconds: float, timeout: float, server_pid: int | None, call: ToolCall | None = None,
    protocol_version: str | None = None,
) -> dict[str, Any]:
    """A ``run`` job for ``LoadClient.run``; ``target`` holds host, port, path (and tls, insecure)."""
    job: dict[str, Any] = {
        "job": "run", "kind": kind, **target, "concurrency": concurrency, "warmup_count": warmup_count,
        "warmup_seconds": warmup_seconds, "count": count, "seconds": seconds, "timeout": timeout,
        "server_pid": server_pid,
    }
    if protocol_version is not None:
        job["protocol_version"] = protocol_version
    if call is not None:
        job.update(tool=call.name, arguments=dict(call.arguments), expect_text=call.expect_text)
    return job


def run_limit(job: dict[str, Any]) -> float:
    """How long the parent waits for a ``run`` job's result before giving up on the client."""
    return 4 * float(job["timeout"]) + float(job["seconds"]) + float(job["warmup_seconds"]) + 10


def concurrencies(text: str) -> Sequence[int]:
    """``"1,16,64"`` -> (1, 16, 64); raises ValueError on anything but positive integers."""
    values = tuple(int(x) for x in text.split(",") if x.strip())
    if not values or min(values) < 1:
        raise ValueError(f"concurrency levels are positive integers: {text!r}")
    return values


if __name__ == "__main__":
    main()
