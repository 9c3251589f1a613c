"""The jobs of the load-generator process (``run``, ``sessions``, ``probe``) and the loop that
reads them from stdin (``serve_jobs``).

Workers of one phase share a ``Progress``; ``watched`` runs them under a watchdog, so a phase
with no completed request for ``timeout`` seconds, or requests still running ``timeout`` seconds
after its time budget, ends the job as "hung".
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys
import time
from collections.abc import Coroutine
from typing import Any

import orjson

from anyport.bench._http_worker import Worker
from anyport.bench._mcp import ServerFailure, ServerHung
from anyport.bench._system import rss_kib, tree_cpu

__all__ = ["Progress", "drive", "probe_job", "run_job", "serve_jobs", "sessions_job", "watched"]


class Progress:
    """Shared by the workers of one phase: what is left, and when the last answer came."""

    def __init__(self, count: int, seconds: float) -> None:
        self.left = count
        self.stop_at = time.perf_counter() + seconds
        self.done = 0
        self.last = time.perf_counter()


async def watched(coros: list[Coroutine[Any, Any, Any]], progress: Progress | None, timeout: float, what: str) -> list[Any]:
    """Run ``coros`` concurrently; "hung" when nothing progresses for ``timeout`` s.

    With ``progress`` the watchdog also ends the phase when requests are still running
    ``timeout`` s after its time budget; without it the whole group gets ``timeout`` s.
    """
    tasks = [asyncio.ensure_future(c) for c in coros]
    start = time.perf_counter()
    try:
        while True:
            done, pending = await asyncio.wait(tasks, timeout=0.2, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                exc = task.exception()
                if exc is not None:
                    raise exc
            if not pending:
                return [t.result() for t in tasks]
            now = time.perf_counter()
            if progress is None:
                if now - start > timeout:
                    raise ServerHung(f"{what}: not finished within {timeout:.0f} s")
            elif now - progress.last > timeout:
                raise ServerHung(f"{what}: no answer for {timeout:.0f} s ({len(pending)} requests in flight)")
            elif now > progress.stop_at + timeout:
                raise ServerHung(f"{what}: {len(pending)} requests still running {timeout:.0f} s after the time budget")
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def drive(worker: Worker, progress: Progress, latencies: list[float] | None) -> None:
    clock = time.perf_counter_ns
    while progress.left > 0 and time.perf_counter() < progress.stop_at:
        progress.left -= 1
        t0 = clock()
        await worker.echo()
        t1 = clock()
        progress.done += 1
        progress.last = time.perf_counter()
        if latencies is not None:
            latencies.append((t1 - t0) / 1000.0)


def _cpu(pid: int | None) -> list[float] | None:
    c = tree_cpu(pid) if pid else None
    return None if c is None else [c.user, c.system]


def _failure(out: dict[str, Any], exc: BaseException) -> None:
    if isinstance(exc, ServerFailure):
        out.update(ok=False, kind=exc.kind, error=str(exc))
    else:
        out.update(ok=False, kind="wrong answer", error=f"{type(exc).__name__}: {exc}")


_EXPECTED = (ServerFailure, OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError)


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    timeout = float(job["timeout"])
    concurrency = int(job["concurrency"])
    workers = [Worker(job, i) for i in range(concurrency)]
    out: dict[str, Any] = {"ok": True, "phase": "setup"}
    latencies: list[float] = []
    try:
        await watched([w.setup() for w in workers], None, timeout, "setup")
        out["phase"] = "warm-up"
        warm = Progress(int(job["warmup_count"]), float(job["warmup_seconds"]))
        await watched([drive(w, warm, None) for w in workers], warm, timeout, "warm-up")
        out["phase"] = "measure"
        pid = job.get("server_pid")
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = _cpu(pid)
        progress = Progress(int(job["count"]), float(job["seconds"]))
        t0 = time.perf_counter()
        await watched([drive(w, progress, latencies) for w in workers], progress, timeout, "measure")
        t1 = time.perf_counter()
        cpu1 = _cpu(pid)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        out.update(
            seconds=t1 - t0, done=progress.done, latencies_us=[round(x, 1) for x in latencies],
            server_cpu=None if cpu0 is None or cpu1 is None else [cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]],
            client_cpu=(ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        )
        out["phase"] = "teardown"
        statuses = await watched([w.teardown() for w in workers], None, timeout, "teardown")
        out["delete_statuses"] = _merge(statuses)
        out["phase"] = "done"
    except _EXPECTED as exc:
        _failure(out, exc)
    finally:
        for w in workers:
            w.close()
    replies: dict[str, int] = {}
    for w in workers:
        for k, v in w.reply_kinds.items():
            replies[k] = replies.get(k, 0) + v
    out["replies"] = replies
    if not out["ok"] and latencies:
        out["done_before_failure"] = len(latencies)
    return out


def _merge(dicts: list[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            merged[k] = merged.get(k, 0) + v
    return merged


async def sessions_job(job: dict[str, Any]) -> dict[str, Any]:
    """Open ``count`` idle legacy sessions, DELETE them all; the server's RSS before, during, after."""
    timeout = float(job["timeout"])
    pid = int(job["server_pid"])
    count = int(job["count"])
    settle = float(job.get("settle_seconds", 1.0))
    workers = [Worker({**job, "kind": "stateless"}, i) for i in range(int(job["concurrency"]))]
    out: dict[str, Any] = {"ok": True, "phase": "connect"}
    sids: list[str] = []

    async def opener(w: Worker, progress: Progress, into: list[str]) -> None:
        while progress.left > 0 and time.perf_counter() < progress.stop_at:
            progress.left -= 1
            into.append(await w.open_session())
            progress.done += 1
            progress.last = time.perf_counter()

    async def closer(w: Worker, todo: list[str], progress: Progress, statuses: dict[str, int]) -> None:
        while todo and time.perf_counter() < progress.stop_at:
            status = str(await w.delete_session(todo.pop()))
            statuses[status] = statuses.get(status, 0) + 1
            progress.last = time.perf_counter()

    try:
        await watched([w.setup() for w in workers], None, timeout, "connect")
        # Warm-up: open and delete a few sessions so one-time allocations are not counted per session.
        out["phase"] = "warm-up"
        warm: list[str] = []
        progress = Progress(int(job.get("warmup", 50)), timeout)
        await watched([opener(w, progress, warm) for w in workers], progress, timeout, "warm-up open")
        progress = Progress(len(warm), timeout)
        await watched([closer(w, warm, progress, {}) for w in workers], progress, timeout, "warm-up delete")
        await asyncio.sleep(settle)
        out["rss_before_kib"] = rss_kib(pid)
        out["phase"] = "open"
        t0 = time.perf_counter()
        progress = Progress(count, float(job["seconds"]))
        await watched([opener(w, progress, sids) for w in workers], progress, timeout, "open sessions")
        out["open_seconds"] = time.perf_counter() - t0
        out["opened"] = len(sids)
        await asyncio.sleep(settle)
        out["rss_open_kib"] = rss_kib(pid)
        out["phase"] = "delete"
        statuses: dict[str, int] = {}
        progress = Progress(len(sids), float(job["seconds"]))
        await watched([closer(w, sids, progress, statuses) for w in workers], progress, timeout, "delete sessions")
        out["delete_statuses"] = statuses
        out["not_deleted"] = len(sids)
        for w in workers:  # departing clients hang up: per-connection state is not session memory
            w.close()
        await asyncio.sleep(settle)
        out["rss_after_kib"] = rss_kib(pid)
        await watched([w.setup() for w in workers], None, timeout, "reconnect")
        # Open as many again: memory the server kept but reuses shows here as no growth; a leak grows.
        out["phase"] = "reopen"
        again: list[str] = []
        progress = Progress(count, float(job["seconds"]))
        await watched([opener(w, progress, again) for w in workers], progress, timeout, "reopen sessions")
        await asyncio.sleep(settle)
        out["rss_reopen_kib"] = rss_kib(pid)
        progress = Progress(len(again), float(job["seconds"]))
        await watched([closer(w, again, progress, {}) for w in workers], progress, timeout, "delete reopened sessions")
        out["phase"] = "done"
    except _EXPECTED as exc:
        _failure(out, exc)
    finally:
        for w in workers:
            w.close()
    return out


async def probe_job(job: dict[str, Any]) -> dict[str, Any]:
    """What the server at ``host:port/path`` speaks, and its tools; every step bounded by ``timeout``.

    ``modern``: a 2026-07-28 ``tools/list`` (no handshake). ``legacy``: ``initialize``
    (2025-11-25) + ``notifications/initialized`` + ``tools/list``; a ``Mcp-Session-Id`` in the
    answer means the server keeps sessions (``stateful``), and that session is DELETE-d again.
    Each step gets a fresh connection (a server may close one after an error). ``ok`` is false
    only when no step could even connect.
    """
    timeout = float(job["timeout"])
    out: dict[str, Any] = {"ok": True}

    async def modern(w: Worker) -> dict[str, Any]:
        w.conn = await w._connect()
        tools, reply = await w.list_tools(modern=True)
        return {"ok": True, "tools": tools, "reply": reply}

    async def legacy(w: Worker) -> dict[str, Any]:
        w.conn = await w._connect()
        sid = await w.initialize()
        tools, reply = await w.list_tools(modern=False)
        if sid is not None:
            with contextlib.suppress(*_EXPECTED):
                await w.delete_session(sid)
        return {"ok": True, "stateful": sid is not None, "protocol_version": w.version, "tools": tools, "reply": reply}

    connect_errors = 0
    for name, step in (("modern", modern), ("legacy", legacy)):
        w = Worker({**job, "kind": "stateless"}, 0)
        try:
            out[name] = (await watched([step(w)], None, timeout, f"{name} probe"))[0]
        except _EXPECTED as exc:
            failed: dict[str, Any] = {}
            _failure(failed, exc)
            out[name] = failed
            connect_errors += "connect to" in str(exc)
        finally:
            w.close()
    if connect_errors == 2:
        out.update(ok=False, kind="died", error=out["legacy"]["error"])
    return out


async def serve_jobs() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    jobs = {"run": run_job, "sessions": sessions_job, "probe": probe_job}
    while True:
        line = await reader.readline()
        if not line:
            return
        job = orjson.loads(line)
        handler = jobs.get(job.get("job"))
        if handler is None:
            result: dict[str, Any] = {"ok": False, "kind": "failed", "error": f"unknown job {job.get('job')!r}"}
        else:
            result = await handler(job)
        sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
        sys.stdout.buffer.flush()
