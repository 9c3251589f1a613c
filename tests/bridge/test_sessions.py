"""One child per session, shared children, and both eras through the bridge (rogue.py children)."""

from __future__ import annotations

import contextlib
import threading

import httpx

from tests.bridge._helpers import (
    POST_HEADERS,
    alive,
    answers,
    call,
    initialize,
    modern_call,
    rogue,
    serving,
    sse_answer,
    sse_connection,
    text_of,
    wait_until,
)


def test_two_sessions_never_see_each_others_state_or_notifications() -> None:
    """Isolation (issue 15): two concurrent legacy sessions on a stateful child (a counter) each get a
    child of their own; progress (U-06, token rewritten) and log notifications reach only their caller."""
    with serving(rogue()) as (base, bridge), httpx.Client(base_url=base, timeout=20) as c:
        a, b = initialize(c), initialize(c)
        results: dict[str, list[list[dict]]] = {"a": [], "b": []}

        def run(name: str, headers: dict[str, str]) -> None:
            for i in range(5):
                results[name].append(call(c, headers, 10 + i, "inc", meta={"progressToken": f"{name}-{i}"}))

        threads = [threading.Thread(target=run, args=(n, h)) for n, h in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for name in ("a", "b"):
            assert [text_of(m) for m in results[name]] == ["1", "2", "3", "4", "5"]
            for i, messages in enumerate(results[name]):
                progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
                assert progress == [{"progressToken": f"{name}-{i}", "progress": 1, "total": 1}]
                logs = [m["params"]["data"] for m in messages if m.get("method") == "notifications/message"]
                assert logs == [f"counter={i + 1}"]
        pids = {text_of(call(c, h, 99, "pid")) for h in (a, b)}
        assert len(pids) == 2 and len(bridge.slots) == 2


def test_delete_stops_the_sessions_child() -> None:
    """T-HTTP-41/42: DELETE ends the session and its child (process group stopped, reaped)."""
    with serving(rogue()) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        pid = int(text_of(call(c, h, 1, "pid")))
        assert alive(pid)
        assert c.delete("/mcp", headers=h).status_code in (200, 202, 204)
        assert wait_until(lambda: not alive(pid)), "the child survived its session"
        assert c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).status_code == 404


def test_idle_child_is_stopped_although_a_get_stream_is_open() -> None:
    """supergateway #160: the idle timeout does not depend on open GET streams; the session ends with it
    (404 afterwards, T-HTTP-39) so the client starts over (T-HTTP-40)."""
    with serving(rogue(), idle_timeout=0.6) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        pid = int(text_of(call(c, h, 1, "pid")))
        with c.stream("GET", "/mcp", headers={**h, "accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            assert wait_until(lambda: not alive(pid), timeout=8), "an open GET stream kept the idle child"
        assert wait_until(lambda: c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).status_code == 404)


def test_http_sse_connection_closing_stops_its_child() -> None:
    """T-SSE-07: on HTTP+SSE the session is the connection; closing it reaps the child."""
    with serving(rogue()) as (base, bridge), httpx.Client(base_url=base, timeout=20) as c:
        with sse_connection(c) as (lines, endpoint):
            c.post(endpoint, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "pid", "arguments": {}}})
            pid = int(sse_answer(lines, 2)["result"]["content"][0]["text"])
            assert alive(pid)
        assert wait_until(lambda: not alive(pid)), "the child outlived its HTTP+SSE connection"
        assert wait_until(lambda: not bridge.slots)


def test_modern_request_gets_a_child_of_its_own_and_it_is_stopped() -> None:
    """M-05: a 2026-07-28 request carries everything; it runs on a fresh child (no state from another
    caller), answered with resultType and serverInfo (J-16, M-07); the child is stopped after."""
    with serving(rogue(), spares=1) as (base, bridge), httpx.Client(base_url=base, timeout=20) as c:
        assert text_of(modern_call(c, 0, "ping")) == "pong"  # L-19: the bridge answers the child's ping
        first = modern_call(c, 1, "inc")
        second = modern_call(c, 2, "inc")
        assert text_of(first) == text_of(second) == "1"
        result = first[-1]["result"]
        assert result["resultType"] == "complete"
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "rogue"
        assert wait_until(lambda: len(bridge.pool.children) <= 1, timeout=30)  # the warm spare only


def test_modern_caller_answers_a_legacy_childs_elicitation_in_an_mrtr_round() -> None:
    """M-14/M-15/M-18: the child's elicitation/create becomes an input_required result; the retry's
    inputResponses answer the parked call; a forged requestState is refused (M-16)."""
    caps = {"elicitation": {}}
    with serving(rogue(), spares=0) as (base, bridge), httpx.Client(base_url=base, timeout=20) as c:
        first = modern_call(c, 1, "ask", caps=caps)[-1]["result"]
        assert first["resultType"] == "input_required"
        ((key, ask),) = first["inputRequests"].items()
        assert ask["method"] == "elicitation/create" and ask["params"]["message"] == "Name?"
        retry = {"inputResponses": {key: {"action": "accept", "content": {"name": "Ada"}}}, "requestState": first["requestState"]}
        assert text_of(modern_call(c, 2, "ask", caps=caps, extra=retry)) == "name=Ada"
        again = modern_call(c, 3, "ask", caps=caps, extra=retry)[-1]
        assert again["error"]["code"] == -32602  # used once: the call it named is gone
        forged = modern_call(c, 4, "ask", caps=caps, extra={"requestState": "x" + first["requestState"][1:]})[-1]
        assert forged["error"]["code"] == -32602
        assert wait_until(lambda: not bridge.pool.children)


def test_legacy_caller_answers_the_childs_elicitation_on_its_stream() -> None:
    """T-HTTP-15: the child's request goes out on the caller's POST stream, the answer comes back."""
    with serving(rogue()) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c, capabilities={"elicitation": {}})
        body = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "ask", "arguments": {}}}
        with c.stream("POST", "/mcp", headers=h, json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data:") and "elicitation/create" in line:
                    rid = line.split('"id":')[1].split(",")[0]
                    answer = {"jsonrpc": "2.0", "id": int(rid), "result": {"action": "accept", "content": {"name": "Bo"}}}
                    assert c.post("/mcp", headers=h, json=answer).status_code == 202
                if line.startswith("data:") and '"id":5' in line:
                    assert "name=Bo" in line
                    break
            else:
                raise AssertionError("no answer")


def test_shared_children_multiplex_callers_with_their_own_ids() -> None:
    """Shared model (a stateless server): one child serves several sessions; the same JSON-RPC id from
    two callers never collides (the bridge's ids on the child), answers go to their own caller."""
    with serving(rogue(), shared=True, min_children=1, max_children=1, concurrency=8) as (base, bridge), \
            httpx.Client(base_url=base, timeout=20) as c:
        a, b = initialize(c), initialize(c)
        out: dict[str, str] = {}

        def run(name: str, headers: dict[str, str]) -> None:
            out[name] = text_of(call(c, headers, 7, "slow", {"seconds": 0.3}))

        threads = [threading.Thread(target=run, args=(n, h)) for n, h in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert out == {"a": "slept", "b": "slept"}
        assert text_of(call(c, a, 8, "pid")) == text_of(call(c, b, 8, "pid"))
        assert len(bridge.pool.children) == 1


def test_pool_exhausted_is_503_with_retry_after() -> None:
    """Bounded pool: with --max 1 and a session holding the only child, a new session gets 503 + Retry-After
    and /readyz says why; an existing session still works; a session that got in anyway (HTTP+SSE opens
    without a child) gets -32000 for a request once it waited --queue-timeout for room."""
    with serving(rogue(), max_children=1, queue_timeout=0.3) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        text_of(call(c, h, 1, "pid"))
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        r = c.post("/mcp", headers=POST_HEADERS, json=body)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "busy" in ready.json()["reason"]
        assert text_of(call(c, h, 2, "inc")) == "1"
        with sse_connection(c) as (lines, endpoint):
            c.post(endpoint, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "pid", "arguments": {}}})
            answer = next(line for line in lines if line.startswith("data:") and '"id":2' in line)
        assert '"code":-32000' in answer and "children are in use" in answer


def test_environment_is_an_allow_list() -> None:
    """No variable of the bridge's environment reaches a child unless allowed (never a token)."""
    import os

    os.environ["ANYPORT_TEST_SECRET_TOKEN"] = "s3cret"
    try:
        with serving(rogue(), env_set={"GIVEN": "1"}) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
            h = initialize(c)
            names = set(text_of(call(c, h, 1, "env")).split(","))
    finally:
        del os.environ["ANYPORT_TEST_SECRET_TOKEN"]
    assert "ANYPORT_TEST_SECRET_TOKEN" not in names and "GIVEN" in names and "PATH" in names
    assert names <= {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "GIVEN"}


def test_a_cancelled_request_is_cancelled_on_the_child() -> None:
    """U-01/U-04: the caller's notifications/cancelled reaches the child for the bridge's own id of that
    request (not the caller's id); the caller gets no answer for it and the session goes on."""
    import json

    with serving(rogue()) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        text_of(call(c, h, 1, "pid"))

        def hang() -> None:
            body = {"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {"name": "hang", "arguments": {}}}
            with contextlib.suppress(httpx.HTTPError):
                answered.extend(answers(c.post("/mcp", headers=h, json=body, timeout=5)))

        answered: list[dict] = []
        t = threading.Thread(target=hang)
        t.start()
        time_to_start = wait_until(lambda: bool(_bridge.slots) and any(s.child and s.child.calls for s in _bridge.slots.values()))
        assert time_to_start
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77, "reason": "changed my mind"}}
        assert c.post("/mcp", headers=h, json=note).status_code == 202
        t.join(10)
        assert wait_until(lambda: json.loads(text_of(call(c, h, 3, "cancels"))) != [])
        cancelled = json.loads(text_of(call(c, h, 4, "cancels")))
        assert len(cancelled) == 1 and cancelled[0] != 77  # the bridge's id on the child, not the caller's
        assert not [m for m in answered if m.get("id") == 77]  # U-04: no answer to a cancelled request


def test_pass_header_reaches_the_sessions_child_and_credentials_never_do() -> None:
    """Headers a child sees are named by an option only (issue 15); the caller's token never (A-33)."""
    import pytest

    from anyport.bridge import BridgeOptions

    with serving(rogue(), pass_headers=("X-Tenant",), spares=0) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        h = {**h, "x-tenant": "acme", "authorization": "Bearer caller-token"}
        assert text_of(call(c, h, 1, "getenv", {"name": "MCP_HEADER_X_TENANT"})) == "acme"
        names = text_of(call(c, h, 2, "env")).split(",")
        assert not [n for n in names if "AUTHORIZATION" in n]
    for name in ("Authorization", "cookie", "Mcp-Session-Id"):
        with pytest.raises(ValueError, match="never passed"):
            BridgeOptions(command=("x",), pass_headers=(name,))
    with pytest.raises(ValueError, match="child per session"):
        BridgeOptions(command=("x",), pass_headers=("X-Tenant",), shared=True)


def test_shared_child_never_guesses_the_caller() -> None:
    """Shared model: while two callers' requests are in flight on one child, a request of the child and
    a log line name no caller: the request is refused to the child, the log dropped; neither reaches
    the wrong caller (supergateway #35 was the opposite: a broadcast)."""
    with serving(rogue(), shared=True, min_children=1, max_children=1, concurrency=4) as (base, bridge), \
            httpx.Client(base_url=base, timeout=20) as c:
        a, b = initialize(c, capabilities={"elicitation": {}}), initialize(c, capabilities={"elicitation": {}})
        slow: list[list[dict]] = []
        t = threading.Thread(target=lambda: slow.append(call(c, a, 1, "slow", {"seconds": 1.5})))
        t.start()
        assert wait_until(lambda: any(ch.calls for ch in bridge.pool.shared))
        asked = call(c, b, 2, "ask")
        counted = call(c, b, 3, "inc", meta={"progressToken": "b-3"})
        t.join(10)
        assert "cannot tell which of 2 requests" in text_of(asked)
        assert not [m for m in asked + counted + slow[0] if m.get("method") in ("elicitation/create", "notifications/message")]
        # Progress names its request (the bridge's token): it still reaches its caller, with the caller's token.
        assert [m["params"]["progressToken"] for m in counted if m.get("method") == "notifications/progress"] == ["b-3"]


def test_idle_shared_children_above_the_minimum_are_stopped() -> None:
    """The pool shrinks back to --min when shared children have been idle --idle-timeout seconds."""
    with serving(rogue(), shared=True, min_children=0, spares=0, idle_timeout=0.5) as (base, bridge), \
            httpx.Client(base_url=base, timeout=20) as c:
        h = initialize(c)
        pid = int(text_of(call(c, h, 1, "pid")))
        assert wait_until(lambda: not bridge.pool.children and not alive(pid), timeout=8)
        assert int(text_of(call(c, h, 2, "pid"))) != pid  # started again when needed


def test_a_childs_list_changed_reaches_its_own_session_only() -> None:
    """T-HTTP-22/26, isolation: a list change of one session's child goes to that session's GET stream,
    never to another session's."""
    with serving(rogue()) as (base, _bridge), httpx.Client(base_url=base, timeout=20) as c:
        a, b = initialize(c), initialize(c)
        for h in (a, b):
            text_of(call(c, h, 1, "pid"))  # both children started
        seen: dict[str, list[str]] = {"a": [], "b": []}
        opened = threading.Barrier(3, timeout=10)

        def listen(name: str, headers: dict[str, str]) -> None:
            with httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=2.5)) as g, \
                    g.stream("GET", "/mcp", headers={**headers, "accept": "text/event-stream"}) as stream:
                opened.wait()
                with contextlib.suppress(httpx.ReadTimeout):
                    for line in stream.iter_lines():
                        if line.startswith("data:") and "list_changed" in line:
                            seen[name].append(line)
                            return

        threads = [threading.Thread(target=listen, args=(n, h)) for n, h in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        opened.wait()
        assert text_of(call(c, a, 2, "changed")) == "ok"
        for t in threads:
            t.join(15)
        assert len(seen["a"]) == 1 and seen["b"] == []


async def test_an_asgi_server_without_lifespan_starts_the_bridge_on_the_first_request() -> None:
    """Any ASGI server: without lifespan events, the first request starts the first child."""
    from anyport.bridge import Bridge, BridgeOptions, bridge_app

    bridge = Bridge(BridgeOptions(command=tuple(rogue()), spares=0))
    app = bridge_app(bridge)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            assert (await c.get("/readyz")).status_code == 200
            body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            r = await c.post("/mcp", headers=POST_HEADERS, json=body)
            assert r.json()["result"]["serverInfo"]["name"] == "rogue"
    finally:
        await app.http.aclose()
        await bridge.aclose()
    assert not bridge.pool.children
