"""A soak: many sessions opened, used and closed; the children and the bridge's memory come back to
where they were (supergateway #108/#141: per-session children never reaped). ``bench/bridge.py --soak``
runs the same with 10,000 sessions."""

from __future__ import annotations

import os
import resource
import threading

import httpx

from tests.bridge._helpers import alive, call, initialize, rogue, serving, text_of, wait_until

SESSIONS = int(os.environ.get("ANYPORT_BRIDGE_SOAK", "500"))
WORKERS = 8


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _sessions(base: str, count: int, pids: list[int], errors: list[str]) -> None:
    with httpx.Client(base_url=base, timeout=30) as c:
        for _ in range(count):
            try:
                h = initialize(c)
                pids.append(int(text_of(call(c, h, 1, "pid"))))
                assert text_of(call(c, h, 2, "inc")) == "1"  # a fresh child: no state from the sessions before
                assert c.delete("/mcp", headers=h).status_code in (200, 202, 204)
            except Exception as exc:  # recorded, the soak goes on
                errors.append(repr(exc))


def _round(base: str, total: int) -> tuple[list[int], list[str]]:
    pids: list[int] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_sessions, args=(base, total // WORKERS, pids, errors)) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return pids, errors


def test_many_sessions_leave_no_child_and_no_memory_behind() -> None:
    """Every session's child is stopped with its session (DELETE), the pool is back to its spares, and
    the bridge's RSS grows by no more than a few MiB after warming up."""
    with serving(rogue(), spares=2, max_children=64) as (base, bridge):
        _round(base, 40)  # warm up: allocator arenas, httpx pools, code paths
        assert wait_until(lambda: len(bridge.pool.children) == 2)
        before = _rss_mib()
        pids, errors = _round(base, SESSIONS)
        assert not errors, errors[:3]
        assert len(set(pids)) == len(pids) == SESSIONS // WORKERS * WORKERS  # one child per session
        assert wait_until(lambda: len(bridge.pool.children) == 2 and not bridge.slots, timeout=20)
        assert wait_until(lambda: not any(alive(p) for p in pids), timeout=10)
        grown = _rss_mib() - before
    assert grown < 24, f"RSS grew by {grown:.1f} MiB over {SESSIONS} sessions"
