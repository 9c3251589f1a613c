"""Streams across replicas (issue 12, DESIGN.md §4): a POST stream cut on one replica is resumed with
``Last-Event-ID`` on another, also after the first one was killed; a server notification reaches a
session's GET stream once, from whichever replica sends it. Real processes, a real redis-server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx

from tests.redis_servers import RedisServer, free_port
from tests.scaleout.test_redis_replicas import APP, _stop, _wait_ready, replicas

VERSION = "2025-11-25"
POST = {"accept": "application/json, text/event-stream", "content-type": "application/json"}




def _events(text: str) -> list[dict[str, Any]]:
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        ev: dict[str, Any] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                ev["id"] = value
            elif name == "data":
                ev["data"] = json.loads(value) if value.strip() else ""
        if "data" in ev or "id" in ev:
            out.append(ev)
    return out


def _initialize(c: httpx.Client, port: int) -> dict[str, str]:
    r = c.post(f"http://127.0.0.1:{port}/mcp", headers={**POST, "mcp-protocol-version": VERSION}, json={
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    })
    assert r.status_code == 200, r.text
    h = {**POST, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": VERSION}
    r = c.post(f"http://127.0.0.1:{port}/mcp", headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert r.status_code == 202
    return h


def _call(id_: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": arguments, "_meta": {"progressToken": f"t{id_}"}}}


def _cut_after_first_progress(c: httpx.Client, url: str, h: dict[str, str], body: dict[str, Any]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    with c.stream("POST", url, headers=h, json=body) as r:
        assert r.status_code == 200
        buf = ""
        for chunk in r.iter_text():
            buf += chunk
            *blocks, buf = buf.split("\n\n")
            for block in blocks:
                seen += _events(block + "\n\n")
            if any(e.get("data") for e in seen):
                break  # leaving the block closes the connection
    return seen


def _read_for(c: httpx.Client, url: str, headers: dict[str, str], quiet: float) -> str:
    """The text of a GET stream until nothing more arrives for ``quiet`` seconds."""
    text = ""
    with c.stream("GET", url, headers=headers, timeout=httpx.Timeout(30, read=quiet)) as g:
        assert g.status_code == 200
        with contextlib.suppress(httpx.ReadTimeout):
            for chunk in g.iter_text():
                text += chunk
    return text


def _get_headers(h: dict[str, str], last: str | None = None) -> dict[str, str]:
    out = {"accept": "text/event-stream", "mcp-session-id": h["mcp-session-id"], "mcp-protocol-version": VERSION}
    if last is not None:
        out["last-event-id"] = last
    return out


def test_a_stream_cut_on_one_replica_resumes_on_another_exactly_once_T_HTTP_30(redis: RedisServer) -> None:
    with replicas(redis, "resume") as ports, httpx.Client(timeout=30) as c:
        h = _initialize(c, ports[0])
        seen = _cut_after_first_progress(c, f"http://127.0.0.1:{ports[1]}/mcp", h, _call(5, "slow_count", {"n": 5, "delay": 0.2}))
        assert seen[-1]["data"]["params"]["progress"] == 1
        g = c.get(f"http://127.0.0.1:{ports[2]}/mcp", headers=_get_headers(h, seen[-1]["id"]))
        assert g.status_code == 200
        everything = seen + _events(g.text)
        progress = [e["data"]["params"]["progress"] for e in everything if e.get("data") and "method" in e["data"]]
        assert progress == [1, 2, 3, 4, 5]
        answers = [e["data"] for e in everything if e.get("data") and "id" in e["data"]]
        assert len(answers) == 1 and answers[0]["id"] == 5 and not answers[0]["result"]["isError"]
        ids = [e["id"] for e in everything if e.get("id")]
        assert len(ids) == len(set(ids))


def test_events_logged_before_a_replica_died_are_replayed_elsewhere(redis: RedisServer) -> None:
    """kill -9 the replica running a call: what it logged is resumed from another replica, once each."""
    with replicas(redis, "killed") as ports, httpx.Client(timeout=30) as c:
        h = _initialize(c, ports[0])
        seen = _cut_after_first_progress(c, f"http://127.0.0.1:{ports[1]}/mcp", h, _call(6, "slow_count", {"n": 50, "delay": 0.05}))
        time.sleep(0.5)  # some ten more events logged by the replica on ports[1]
        victim = int(c.post(f"http://127.0.0.1:{ports[1]}/mcp", headers=h, json=_call(7, "whoami", {})).text.split('"text":"')[1].split('"')[0])
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.2)
        text = _read_for(c, f"http://127.0.0.1:{ports[2]}/mcp", _get_headers(h, seen[-1]["id"]), 1.5)
        rest = [e for e in _events(text) if e.get("data")]
        progress = [e["data"]["params"]["progress"] for e in seen + rest if e.get("data") and "method" in e["data"]]
        assert progress[:1] == [1] and len(progress) >= 5
        assert progress == list(range(1, len(progress) + 1))  # every logged event, in order, once


def test_a_notification_reaches_the_get_stream_once_from_any_replica_M_05(redis: RedisServer) -> None:
    """The GET stream is held by one replica; notify_list_changed runs on another; the session gets it once."""
    with replicas(redis, "notify") as ports, httpx.Client(timeout=30) as c:
        h = _initialize(c, ports[0])
        with c.stream("GET", f"http://127.0.0.1:{ports[1]}/mcp", headers=_get_headers(h), timeout=httpx.Timeout(30, read=1.5)) as g:
            assert g.status_code == 200
            time.sleep(0.3)
            r = c.post(f"http://127.0.0.1:{ports[2]}/mcp", headers=h, json=_call(8, "announce", {}))
            assert r.status_code == 200
            text = ""
            with contextlib.suppress(httpx.ReadTimeout):
                for chunk in g.iter_text():
                    text += chunk  # until nothing more comes for 1.5 s
        notes = [e["data"] for e in _events(text) if e.get("data") and e["data"].get("method") == "notifications/tools/list_changed"]
        assert len(notes) == 1, text


def test_a_listen_stream_gets_what_another_replica_sends_once_M_20(redis: RedisServer) -> None:
    """2026-07-28: ``subscriptions/listen`` open on one replica; ``notify_list_changed`` runs on
    another (a tool call); the listener gets it once, tagged with its subscription id (M-22)."""
    from tests.transports._http_helpers import modern_body, modern_headers

    with replicas(redis, "listen") as ports, httpx.Client(timeout=30) as c:
        listen = modern_body(1, "subscriptions/listen", {"notifications": {"toolsListChanged": True}})
        with c.stream(
            "POST", f"http://127.0.0.1:{ports[0]}/mcp", headers=modern_headers("subscriptions/listen"), json=listen,
            timeout=httpx.Timeout(30, read=1.5),
        ) as s:
            assert s.status_code == 200
            time.sleep(0.3)
            call = modern_body(2, "tools/call", {"name": "announce", "arguments": {}})
            r = c.post(f"http://127.0.0.1:{ports[1]}/mcp", headers=modern_headers("tools/call", "announce"), json=call)
            assert r.status_code == 200, r.text
            text = ""
            with contextlib.suppress(httpx.ReadTimeout):
                for chunk in s.iter_text():
                    text += chunk
        methods = [e["data"]["method"] for e in _events(text) if e.get("data") and "method" in e["data"]]
        assert methods == ["notifications/subscriptions/acknowledged", "notifications/tools/list_changed"], text


def test_an_answer_written_at_once_is_resumable_on_another_replica_T_HTTP_31(redis: RedisServer) -> None:
    """A one-piece SSE answer (the handler never waited) is written first and its stream stored
    behind it; resuming it from its priming event on another replica replays the answer once."""
    with replicas(redis, "behind") as ports, httpx.Client(timeout=30) as c:
        h = _initialize(c, ports[0])
        r = c.post(f"http://127.0.0.1:{ports[1]}/mcp", headers=h, json=_call(3, "whoami", {}))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.text)
        priming, answer = events[0], events[1]
        assert priming.get("data", "") == "" and answer["data"]["id"] == 3
        time.sleep(0.1)
        rest = [e for e in _events(_read_for(c, f"http://127.0.0.1:{ports[2]}/mcp", _get_headers(h, priming["id"]), 1.0)) if e.get("data")]
        assert [e["id"] for e in rest] == [answer["id"]] and rest[0]["data"] == answer["data"]


def test_a_request_left_by_a_dead_replica_is_answered_with_an_error_on_resume(redis: RedisServer) -> None:
    """kill -9 the replica running a call mid-stream: a client resuming on another replica gets the
    logged events once, then, about one stream lease later, an error for the unanswered request and
    the end of the stream (no endless wait)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    env["ANYPORT_STREAM_LEASE_SECONDS"] = "1.5"
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "anyport", "serve", APP, "--http", "--log-level", "warning", "--port", str(p),
             "--redis", redis.url, "--redis-prefix", "orphan"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )
        for p in ports
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_ready(port, proc)
        with httpx.Client(timeout=30) as c:
            h = _initialize(c, ports[0])
            seen = _cut_after_first_progress(c, f"http://127.0.0.1:{ports[0]}/mcp", h, _call(9, "slow_count", {"n": 100, "delay": 0.05}))
            time.sleep(0.3)
            procs[0].kill()  # the replica running the call
            procs[0].wait(10)
            started = time.monotonic()
            text = _read_for(c, f"http://127.0.0.1:{ports[1]}/mcp", _get_headers(h, seen[-1]["id"]), 6.0)
            took = time.monotonic() - started
        rest = [e for e in _events(text) if e.get("data")]
        progress = [e["data"]["params"]["progress"] for e in seen + rest if "method" in e["data"]]
        assert progress == list(range(1, len(progress) + 1)) and len(progress) >= 2  # logged events, once each
        answers = [e["data"] for e in rest if "id" in e["data"]]
        assert len(answers) == 1 and answers[0]["id"] == 9 and answers[0]["error"]["code"] == -32603, text
        assert "stopped" in answers[0]["error"]["message"]
        assert took < 6.0  # the stream ended (within about a lease), not the read timeout
    finally:
        _stop(procs)
