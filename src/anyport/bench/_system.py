"""What the benchmarks read from the machine: CPU time, memory, CPU placement, ports, percentiles.

Linux first: CPU and memory come from ``/proc`` (every function returns None where it is not
there). Nothing here starts or measures a server by itself.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "CpuTimes",
    "Pinning",
    "free_port",
    "listening_pid",
    "machine",
    "percentile",
    "process_cpu",
    "rss_kib",
    "set_affinity",
    "tree_cpu",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


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


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat from field 3 (state) on; None when unreadable.

    The command name (field 2) may hold spaces and parentheses, so the fields are counted from
    the last ``)``.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rindex(b")") + 2 :].split()


def process_cpu(pid: int) -> CpuTimes | None:
    """CPU time used so far by ``pid``; None where /proc is not available or the process is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # fields[0] is field 3 (state): utime (field 14) is fields[11], stime (field 15) fields[12].
    return CpuTimes(int(fields[11]) / _CLK_TCK, int(fields[12]) / _CLK_TCK)


def _children(pid: int) -> list[int]:
    """The live children of ``pid`` (all its threads' children), from /proc/PID/task/*/children."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        with contextlib.suppress(OSError, ValueError):
            out.extend(int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
    return out


def tree_cpu(pid: int) -> CpuTimes | None:
    """CPU time of ``pid`` plus its live descendants (a server started through a wrapper such as a
    shell, ``uv run`` or ``npx`` does its work in a child). None when ``pid`` itself is unreadable."""
    own = process_cpu(pid)
    if own is None:
        return None
    seen = {pid}
    todo = _children(pid)
    while todo:
        child = todo.pop()
        if child in seen:
            continue
        seen.add(child)
        cpu = process_cpu(child)
        if cpu is not None:
            own.user += cpu.user
            own.system += cpu.system
            todo.extend(_children(child))
    return own


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB (/proc/PID/status), None where unavailable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


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


class Pinning:
    """CPU placement of a load client and a server (``--pin auto|none``).

    ``auto`` with at least two CPUs: ``same_cpu`` puts both on one CPU (for latency: each
    hand-off is a plain context switch; on a VM a wake-up across CPUs can cost more than the
    server's whole request and varies with whether the other vCPU was halted), ``two_cpus`` puts
    them on two different CPUs (for throughput, both sides run in parallel). ``none``, or a single
    CPU, leaves all placement to the scheduler. A client pid of 0 is this process.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.original: set[int] | None = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        cpus = sorted(self.original or ())
        self.enabled = mode == "auto" and len(cpus) >= 2
        self.a, self.b = (cpus[0], cpus[1]) if self.enabled else (-1, -1)

    def same_cpu(self, client_pid: int, server_pid: int) -> None:
        if self.enabled:
            set_affinity(client_pid, {self.a})
            set_affinity(server_pid, {self.a})

    def two_cpus(self, client_pid: int, server_pid: int) -> None:
        if self.enabled:
            set_affinity(client_pid, {self.a})
            set_affinity(server_pid, {self.b})

    def release(self) -> None:
        """This process back on the CPUs it started with (spawned processes inherit its mask)."""
        if self.enabled and self.original is not None:
            set_affinity(0, self.original)


def file_tail(f: BinaryIO, limit: int) -> str:
    """The last ``limit`` bytes written to ``f`` (a child's stderr file), as text; "" if unreadable."""
    try:
        f.flush()
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - limit))
        return f.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (for a server about to be started on it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def listening_pid(port: int) -> int | None:
    """The process listening on local TCP ``port``, from /proc/net/tcp{,6} and /proc/*/fd.

    Best effort: None when there is no /proc, no listener, or its process is not readable by us
    (another user's, without root).
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/fd/{fd}") in wanted:
                    return int(entry)
    return None


def machine() -> dict[str, object]:
    """Platform, CPU model and count, and the load averages: context for every result file."""
    model = ""
    with contextlib.suppress(OSError):
        model = next(
            (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
            "",
        )
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(), "cpu_model": model, "cpus": os.cpu_count(), "load_average": load}
