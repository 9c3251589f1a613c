"""What a client tells the bridge besides requests reaches the session's own child: roots changes
(``notifications/roots/list_changed``) and log levels (``logging/setLevel``, answered by anyport's core);
an idle HTTP+SSE session ends its stream with its child (rogue.py children)."""

from __future__ import annotations

import json

import httpx

from tests.bridge._helpers import (
    alive,
    call,
    initialize,
    rogue,
    serving,
    sse_answer,
    sse_connection,
    text_of,
    wait_until,
)

ROOTS_CHANGED = {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
ROOTS = {"roots": {"listChanged": True}}


def _notes(c: httpx.Client, h: dict[str, str], id_: int) -> list[str]:
    return list(json.loads(text_of(call(c, h, id_, "notes"))))


def test_roots_list_changed_reaches_the_sessions_own_child_only() -> None:
    """L-15: a client's roots/list_changed goes to the child of its session, and to no other session's child."""
    with serving(rogue()) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        a, b = initialize(c, capabilities=ROOTS), initialize(c, capabilities=ROOTS)
        assert _notes(c, a, 1) == [] and _notes(c, b, 2) == []  # both children started
        assert c.post("/mcp", headers=a, json=ROOTS_CHANGED).status_code == 202  # T-HTTP-08
        assert wait_until(lambda: _notes(c, a, 3) == ["notifications/roots/list_changed"])
        assert _notes(c, b, 4) == []


def test_roots_list_changed_over_http_sse_reaches_the_child() -> None:
    """L-15 on the 2024-11-05 transport (T-SSE-04: the answers come on the connection's stream)."""
    with serving(rogue()) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        with sse_connection(c, ROOTS) as (lines, endpoint):
            tool = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "notes", "arguments": {}}}
            c.post(endpoint, json={**tool, "id": 2})
            assert sse_answer(lines, 2)["result"]["content"][0]["text"] == "[]"
            assert c.post(endpoint, json=ROOTS_CHANGED).status_code == 202
            for i in range(3, 40):
                c.post(endpoint, json={**tool, "id": i})
                if json.loads(sse_answer(lines, i)["result"]["content"][0]["text"]) == ["notifications/roots/list_changed"]:
                    break
            else:
                raise AssertionError("the child never heard of the roots change")


def test_log_level_set_mid_session_reaches_the_running_child_and_filters_its_logs() -> None:
    """U-11: logging/setLevel (answered by the core) is given to the session's child before its next
    request, and the child's log messages below the level never reach the client."""
    with serving(rogue()) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        first = call(c, h, 1, "inc")
        assert [m["params"]["data"] for m in first if m.get("method") == "notifications/message"] == ["counter=1"]
        assert text_of(call(c, h, 2, "level")) == ""  # the default was never sent
        r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 3, "method": "logging/setLevel", "params": {"level": "error"}})
        assert r.status_code == 200
        quiet = call(c, h, 4, "inc")  # rogue logs at info: below error
        assert text_of(quiet) == "2" and not [m for m in quiet if m.get("method") == "notifications/message"]
        assert text_of(call(c, h, 5, "level")) == "error"
        c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 6, "method": "logging/setLevel", "params": {"level": "debug"}})
        loud = call(c, h, 7, "inc")
        assert [m["params"]["data"] for m in loud if m.get("method") == "notifications/message"] == ["counter=3"]
        assert text_of(call(c, h, 8, "level")) == "debug"


def test_idle_http_sse_session_ends_its_stream_with_its_child() -> None:
    """T-SSE-07 from the server's side: the idle timeout stops the child and closes the connection's
    stream, so the client knows to connect again (no stream left open on a dead session)."""
    with serving(rogue(), idle_timeout=0.6) as (base, bridge), httpx.Client(base_url=base, timeout=20) as c:
        with sse_connection(c) as (lines, endpoint):
            c.post(endpoint, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "pid", "arguments": {}}})
            pid = int(sse_answer(lines, 2)["result"]["content"][0]["text"])
            rest = list(lines)  # returns once the server ends the stream (keep-alive comments only meanwhile)
            assert not any(line.startswith("data:") for line in rest)
        assert wait_until(lambda: not alive(pid)) and not bridge.slots
        assert c.post(endpoint, json={"jsonrpc": "2.0", "id": 3, "method": "ping"}).status_code == 404
