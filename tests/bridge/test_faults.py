"""Children that crash, hang, flood stdout, write garbage or exit at start; the bridge killed with -9."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from anyport.bridge import Bridge, BridgeOptions, ChildStartError
from tests.bridge._helpers import ROGUE, alive, call, initialize, rogue, serving, text_of, wait_until


def _error(messages: list[dict]) -> dict:
    final = messages[-1]
    assert "error" in final, final
    return final["error"]


def test_child_crashing_mid_call_gives_a_clean_error_and_a_new_child() -> None:
    """T-STDIO-12: the call in flight gets an error naming the exit status and the stderr tail (never a
    hang); the session's next request runs on a restarted child."""
    with serving(rogue()) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        old = int(text_of(call(c, h, 1, "pid")))
        assert text_of(call(c, h, 2, "inc")) == "1"
        started = time.monotonic()
        error = _error(call(c, h, 3, "crash"))
        assert time.monotonic() - started < 5
        assert error["code"] == -32603 and "exit status 3" in error["message"] and "crashing on purpose" in error["message"]
        assert wait_until(lambda: not alive(old))
        new = int(text_of(call(c, h, 4, "pid")))
        assert new != old and text_of(call(c, h, 5, "inc")) == "1"


def test_hanging_call_times_out_and_the_session_goes_on() -> None:
    """L-16: a request the child never answers ends with an error after the call timeout; the child is
    told (notifications/cancelled) and still serves the session."""
    with serving(rogue(), call_timeout=1.0) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        started = time.monotonic()
        error = _error(call(c, h, 1, "hang"))
        assert 0.9 < time.monotonic() - started < 5
        assert "did not answer tools/call within 1 s" in error["message"]
        assert text_of(call(c, h, 2, "inc")) == "1"


def test_child_flooding_stdout_is_stopped() -> None:
    """T-STDIO-02: a line over the limit (64 MiB without a newline here, limit 1 MiB) ends that child
    with a clear error instead of growing the bridge's memory."""
    with serving(rogue(), max_line_bytes=1 << 20, grace=0.5) as (base, _bridge), httpx.Client(base_url=base, timeout=30) as c:
        h = initialize(c)
        pid = int(text_of(call(c, h, 1, "pid")))
        error = _error(call(c, h, 2, "flood"))
        assert "over the size limit" in error["message"]
        assert wait_until(lambda: not alive(pid))
        assert text_of(call(c, h, 3, "inc")) == "1"


def test_garbage_on_stdout_is_dropped() -> None:
    """T-STDIO-03 broken by a child: lines that are no JSON-RPC message are logged and dropped; the
    answer after them still arrives, also for a child that prints a banner before serving."""
    with serving(rogue("garbage-at-start")) as (base, bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        assert text_of(call(c, h, 1, "garbage")) == "ok"
        assert text_of(call(c, h, 2, "inc")) == "1"
        ((slot),) = bridge.slots.values()
        assert slot.child is not None and slot.child.garbage >= 4


def test_a_stubborn_child_and_its_grandchild_are_killed_after_the_grace() -> None:
    """T-STDIO-09/10, supergateway PR #124/#151: stdin closed, SIGTERM (ignored here), then SIGKILL to
    the whole process group after the grace period: the grandchild goes too."""
    with serving(rogue("stubborn"), grace=0.5, spares=0) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        pid, grandchild = map(int, text_of(call(c, h, 1, "family")).split(","))
        assert alive(pid) and alive(grandchild)
        started = time.monotonic()
        assert c.delete("/mcp", headers=h).status_code in (200, 202, 204)
        assert wait_until(lambda: not alive(pid) and not alive(grandchild), timeout=10)
        assert 0.9 <= time.monotonic() - started < 6  # stdin grace + SIGTERM grace, then SIGKILL


async def test_child_exiting_at_start_is_a_clear_start_error() -> None:
    """A command that exits at once: the bridge does not start, and says why (exit status, stderr)."""
    bridge = Bridge(BridgeOptions(command=tuple(rogue("exit-at-start"))))
    with pytest.raises(ChildStartError, match=r"exit status 2.*missing configuration"):
        await bridge.start()
    await bridge.aclose()
    missing = Bridge(BridgeOptions(command=("/nonexistent/server",)))
    with pytest.raises(ChildStartError, match=r"exit status 127.*cannot run"):
        await missing.start()
    await missing.aclose()


def test_failed_starts_back_off_and_readyz_tells(tmp_path: Path) -> None:
    """Restarts with backoff: while children cannot start, requests get a clean error and /readyz 503
    with the reason; once they can again, both recover."""
    flag = tmp_path / "broken"
    with serving(rogue(f"exit-if:{flag}"), spares=0, backoff_initial=0.3, backoff_max=0.6) as (base, _bridge), \
            httpx.Client(base_url=base, timeout=20) as c:
        assert c.get("/readyz").status_code == 200
        flag.touch()
        h = initialize(c)
        error = _error(call(c, h, 1, "inc"))
        assert "did not start" in error["message"] and "missing configuration" in error["message"]
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "failed to start" in ready.json()["reason"]
        assert "next attempt in" in _error(call(c, h, 2, "inc"))["message"]
        flag.unlink()
        assert wait_until(lambda: "result" in call(c, h, 3, "inc")[-1], timeout=5, step=0.3)
        assert c.get("/readyz").status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kill_9_of_the_bridge_leaves_no_child() -> None:
    """supergateway PR #124: no orphan survives the bridge, even killed with SIGKILL mid-call (the
    children's parent-death signal)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "anyport.cli._bridge", "bridge", "--port", str(port), "--spares", "2", "--", *rogue()]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _ready(base), timeout=20), proc.stderr.read().decode() if proc.poll() is not None else "no start"
        with httpx.Client(base_url=base, timeout=20) as c:
            pids = []
            for i in range(2):
                h = initialize(c)
                pids.append(int(text_of(call(c, h, i, "pid"))))
            h = initialize(c)
            hung = asyncio.run(_start_hanging_call(base, h))
        children = _children_of(proc.pid)
        assert set(pids) <= children and len(children) >= 4  # two sessions, the hanging one, spares
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert wait_until(lambda: not any(alive(p) for p in children), timeout=10), [p for p in children if alive(p)]
        assert hung
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


def test_kill_9_of_the_bridge_leaves_no_grandchild_either() -> None:
    """Behind a wrapper (``sh -c``, as ``npx`` does) a server that ignores SIGTERM and the end of stdin,
    with a child of its own: the group's watchdog kills them all when the bridge dies."""
    port = _free_port()
    server = " ".join([sys.executable, str(ROGUE), "stubborn"])
    cmd = [sys.executable, "-m", "anyport.cli._bridge", "bridge", "--port", str(port), "--spares", "0", "--", "sh", "-c", server]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _ready(base), timeout=20)
        with httpx.Client(base_url=base, timeout=20) as c:
            family = [int(p) for p in text_of(call(c, initialize(c), 1, "family")).split(",")]
        group = _group_of(family[0])
        assert set(family) <= group and len(group) >= 4  # sh, the server, its sleep, the watchdog
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert wait_until(lambda: not any(alive(p) for p in group), timeout=10), [p for p in group if alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _group_of(pid: int) -> set[int]:
    """Every process in the process group of ``pid``."""
    pgid = os.getpgid(pid)
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ProcessLookupError):
                if os.getpgid(int(entry)) == pgid:
                    out.add(int(entry))
    return out


async def _start_hanging_call(base: str, headers: dict[str, str]) -> bool:
    """Start a call that never ends and leave it in flight (the task is abandoned with the loop)."""
    async with httpx.AsyncClient(base_url=base, timeout=5) as c:
        body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "hang", "arguments": {}}}
        task = asyncio.create_task(c.post("/mcp", headers=headers, json=body))
        await asyncio.sleep(0.5)
        started = not task.done()
        task.cancel()
        return started


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _children_of(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().split(")")[-1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(entry))
    return out
