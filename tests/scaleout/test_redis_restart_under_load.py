"""Redis restarting under load (issue 12): two `anyport serve --http --redis` replicas serve eight
concurrent legacy sessions, each one's requests sent round robin over both replicas, while
redis-server is stopped for about a second and started again on the same port (it keeps nothing on
disk: the sessions it held are gone).

Every request is bounded (5 s) and must end in one of the clean ways: 200 with the JSON-RPC answer
(a result, or a JSON-RPC error), 404 for a session the shared state no longer knows (the client then
opens a new one), or 503 with Retry-After and a JSON-RPC error body. Never a 500, a hang, a cut
connection, nor an SSE stream that ends without the answer. Once Redis is back, every client
completes calls again within 5 s, answered by the same replica processes, whose resident memory has
not grown by more than 30 %.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.redis_servers import RedisServer, redis_server
from tests.scaleout.test_redis_replicas import RoundRobin, replicas

CLIENTS = 8
LOAD_SECONDS = 10.0  # no request starts later than this after the load began
REQUEST_TIMEOUT = 5.0
STOP_AFTER = 2.0  # seconds of load before redis-server is stopped
DOWN_FOR = 1.0
RECOVERY = 5.0
RSS_GROWTH = 1.30
VERSION = "2025-11-25"
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json", "mcp-protocol-version": VERSION}
CLEAN = ("ok", "rpc_error", "not_found", "unavailable")


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


@dataclass
class Outcome:
    kind: str  # one of CLEAN, or "bad" (anything else; ``detail`` says what)
    method: str
    status: int | None
    started: float
    ended: float
    detail: str = ""
    text: str | None = None  # a tool result's text: the pid of the replica that ran it


def _error_of(body: bytes) -> dict[str, Any] | None:
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return None
    return error if isinstance(error, dict) and isinstance(error.get("code"), int) and error.get("message") else None


async def _sse_answer(r: httpx.Response, rid: int) -> tuple[dict[str, Any] | None, list[float]]:
    """Read an SSE stream up to the JSON-RPC response to ``rid``; also the progress seen before it."""
    progress: list[float] = []
    data: list[str] = []
    async for line in r.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line == "" and data:
            text, data = "\n".join(data), []
            if not text:  # the priming event of a resumable stream: an id, no data
                continue
            message = json.loads(text)
            if message.get("method") == "notifications/progress":
                progress.append(message["params"]["progress"])
            elif message.get("id") == rid and ("result" in message or "error" in message):
                return message, progress
    return None, progress


@dataclass
class LoadClient:
    """Legacy sessions, one at a time, over its own round-robin transport; records every outcome."""

    index: int
    http: httpx.AsyncClient
    session_id: str | None = None
    next_id: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    async def _post(self, method: str, params: dict[str, Any] | None = None) -> Outcome:
        headers = dict(HEADERS)
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        rid: int | None = None
        if not method.startswith("notifications/"):
            self.next_id += 1
            rid = message["id"] = self.next_id
        if params is not None:
            message["params"] = params
        name = f"{method} {params['name']}" if method == "tools/call" and params else method
        outcome = Outcome("bad", name, None, time.monotonic(), 0.0)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                async with self.http.stream("POST", "/mcp", headers=headers, json=message) as r:
                    outcome.status = r.status_code
                    await self._classify(outcome, r, rid)
        except TimeoutError:
            outcome.detail = f"hang: no answer within {REQUEST_TIMEOUT} s"
        except httpx.HTTPError as exc:
            outcome.detail = f"transport: {type(exc).__name__}: {exc}"
        outcome.ended = time.monotonic()
        self.outcomes.append(outcome)
        return outcome

    async def _classify(self, outcome: Outcome, r: httpx.Response, rid: int | None) -> None:
        status = r.status_code
        if rid is None and status == 202:  # a notification, accepted
            outcome.kind = "ok"
            return
        if status != 200 or rid is None:
            body = await r.aread()
            error = _error_of(body)
            if status == 503 and error is not None and "retry-after" in r.headers:
                outcome.kind, outcome.detail = "unavailable", f"{error['code']}: {error['message']}"
            elif status == 404 and error is not None:
                outcome.kind, outcome.detail = "not_found", f"{error['code']}: {error['message']}"
            else:
                outcome.detail = f"HTTP {status} (retry-after: {r.headers.get('retry-after')}): {body[:300]!r}"
            return
        if outcome.method == "initialize":
            self.session_id = r.headers.get("mcp-session-id")
        kind = r.headers.get("content-type", "")
        answer: dict[str, Any] | None = None
        progress: list[float] = []
        try:
            if kind.startswith("application/json"):
                answer = json.loads(await r.aread())
            elif kind.startswith("text/event-stream"):
                answer, progress = await _sse_answer(r, rid)
            else:
                outcome.detail = f"200 with content-type {kind!r}"
                return
        except ValueError as exc:
            outcome.detail = f"200 {kind} with a malformed message: {exc}"
            return
        if not isinstance(answer, dict) or answer.get("id") != rid:
            outcome.detail = f"200 {kind} ended without the answer to id {rid} (progress seen: {progress})"
        elif "error" in answer:
            outcome.kind, outcome.detail = "rpc_error", f"{answer['error'].get('code')}: {answer['error'].get('message')}"
        elif outcome.method == "initialize" and not self.session_id:
            outcome.detail = "initialize answered without mcp-session-id"
        elif answer["result"].get("isError"):
            outcome.detail = f"tool error: {answer['result']}"
        elif outcome.method == "tools/call count" and (progress != [1, 2, 3] or not kind.startswith("text/event-stream")):
            outcome.detail = f"count answered with {kind}, progress {progress}"
        else:
            outcome.kind = "ok"
            content = answer["result"].get("content") or [{}]
            outcome.text = content[0].get("text")

    async def _open(self) -> bool:
        self.session_id = None
        init = await self._post("initialize", {
            "protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": f"load-{self.index}", "version": "1"},
        })
        if init.kind == "ok" and (await self._post("notifications/initialized")).kind == "ok":
            return True
        self.session_id = None
        return False

    async def run(self, until: float) -> None:
        while time.monotonic() < until:
            if self.session_id is None and not await self._open():
                await self._pause()
                continue
            for name, arguments in (("whoami", {}), ("count", {"n": 3})):
                if time.monotonic() >= until:
                    return
                params = {"name": name, "arguments": arguments, "_meta": {"progressToken": f"{self.index}-{self.next_id + 1}"}}
                outcome = await self._post("tools/call", params)
                if outcome.kind == "not_found":  # the session is gone (Redis lost it): open a new one
                    self.session_id = None
                    break
                if outcome.kind != "ok":
                    await self._pause()
                    break

    async def _pause(self) -> None:
        # A 503 says Retry-After: 1; after anything else a client may retry sooner.
        await asyncio.sleep(1.0 if self.outcomes[-1].kind == "unavailable" else 0.1)


async def _whoami(port: int) -> int:
    """The pid of the process serving ``port`` (``whoami`` in a session of its own, on that port only)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=REQUEST_TIMEOUT) as http:
        client = LoadClient(-1, http)
        assert await client._open(), client.outcomes
        outcome = await client._post("tools/call", {"name": "whoami", "arguments": {}})
    assert outcome.kind == "ok" and outcome.text is not None, outcome
    return int(outcome.text)


async def test_redis_restart_under_load(redis: RedisServer) -> None:
    with replicas(redis, "restart", n=2) as ports:
        pids = [await _whoami(p) for p in ports]
        assert len(set(pids)) == 2, pids

        clients = []
        for i in range(CLIENTS):
            balancer = RoundRobin(ports)
            balancer.sent = i  # spread the clients' first requests over both replicas
            clients.append(LoadClient(i, httpx.AsyncClient(transport=balancer, base_url="http://127.0.0.1", timeout=REQUEST_TIMEOUT)))
        started = time.monotonic()
        try:
            async with asyncio.timeout(LOAD_SECONDS + REQUEST_TIMEOUT + 5):
                load = asyncio.gather(*(c.run(started + LOAD_SECONDS) for c in clients))
                await asyncio.sleep(STOP_AFTER)
                rss_before = [_rss_kib(pid) for pid in pids]
                stopped = time.monotonic()
                await asyncio.to_thread(redis.stop)
                await asyncio.sleep(DOWN_FOR)
                await asyncio.to_thread(redis.start)
                back = time.monotonic()
                await load
        finally:
            for c in clients:
                await c.http.aclose()
        ended = time.monotonic()
        rss_after = [_rss_kib(pid) for pid in pids]  # the same processes, still running

    outcomes = [o for c in clients for o in c.outcomes]
    counts = Counter(o.kind for o in outcomes)
    statuses = Counter(o.status for o in outcomes)
    by_method = Counter(f"{o.method}:{o.kind}" for o in outcomes)
    last_failure = max((o.started - started for o in outcomes if o.kind != "ok"), default=0.0)
    summary = (
        f"{len(outcomes)} requests: {dict(counts)}; HTTP statuses {dict(statuses)}; by method {dict(sorted(by_method.items()))}; "
        f"Redis down {stopped - started:.1f}..{back - started:.1f} s, last failed request sent at {last_failure:.1f} s, "
        f"load {ended - started:.1f} s; "
        f"VmRSS KiB {rss_before} -> {rss_after}"
    )
    problems: list[str] = []
    hangs = [o for o in outcomes if o.ended - o.started > REQUEST_TIMEOUT + 0.5 or o.detail.startswith("hang")]
    if hangs:
        problems.append(f"{len(hangs)} requests hung: {[(o.method, round(o.started - started, 2)) for o in hangs[:10]]}")
    if statuses[500]:
        problems.append(f"{statuses[500]} answers were HTTP 500")
    unclean = Counter(f"{o.method}: {o.detail[:120]}" for o in outcomes if o.kind not in CLEAN)
    if unclean:
        times = sorted(round(o.started - started, 2) for o in outcomes if o.kind not in CLEAN)
        problems.append(f"{sum(unclean.values())} unclean answers, to requests sent at {times} s: {dict(unclean)}")
    if not counts["ok"] or not counts["unavailable"] + counts["not_found"] + counts["rpc_error"]:
        problems.append("the restart was not noticed at all")
    for c in clients:  # every client works again soon after Redis is back, on the same processes
        recovered = [o for o in c.outcomes if o.kind == "ok" and o.method.startswith("tools/call") and o.started >= back]
        if not recovered or recovered[0].ended - back > RECOVERY:
            when = f"{recovered[0].ended - back:.1f} s" if recovered else "never"
            problems.append(f"client {c.index} completed a call again {when} after Redis came back")
        elif not {int(o.text) for o in recovered if o.text} <= set(pids):
            problems.append(f"client {c.index} was answered by other processes than {pids}: {[o.text for o in recovered]}")
    for pid, before, after in zip(pids, rss_before, rss_after, strict=True):
        if after > before * RSS_GROWTH:
            problems.append(f"replica {pid}: VmRSS grew from {before} to {after} KiB (more than 30 %)")
    assert not problems, "\n".join([*problems, summary])
    assert ended - started < LOAD_SECONDS + REQUEST_TIMEOUT + 1, summary
