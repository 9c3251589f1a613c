"""10,000 live legacy sessions in one process, every one usable, all gone after DELETE.

Driven at the ASGI level (no sockets: the point is the app's own bookkeeping, and 10,000 real
connections would measure the kernel). The sessions exist, answer, are registered as hub peers,
and leave nothing behind (T-HTTP-33, T-HTTP-39, T-HTTP-41). Memory is measured by Python's own
allocation tracing (what the objects take, not the process's RSS, which is a benchmark figure of
``bench/http.py``): an idle session's objects fit in 2 KiB and none survive its DELETE.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from anyport import Server
from anyport.transports.http import create_app

SESSIONS = 10_000
HEADERS = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"), (b"accept", b"application/json, text/event-stream")]


async def _call(app: Any, method: str, body: Any = None, extra: list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
    data = orjson.dumps(body) if body is not None else b""
    sent = False
    out: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": data, "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    scope = {
        "type": "http", "method": method, "path": "/mcp", "query_string": b"", "root_path": "",
        "headers": [*HEADERS, (b"content-length", str(len(data)).encode()), *(extra or [])], "client": ("127.0.0.1", 40000),
    }
    await asyncio.wait_for(app(scope, receive, send), 10)
    start = out[0]
    return start["status"], dict(start.get("headers", [])), b"".join(m.get("body", b"") for m in out[1:])


def _headers(sid: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"mcp-session-id", sid), (b"mcp-protocol-version", b"2025-11-25")]


def _initialize(capabilities: dict[str, Any] | None = None, client: str = "t") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": capabilities or {}, "clientInfo": {"name": client, "version": "1"}},
    }


async def _open_sessions(app: Any, n: int, init: dict[str, Any]) -> list[bytes]:
    """``n`` legacy sessions, each initialized (initialize, then notifications/initialized)."""
    ids = []
    for _ in range(n):
        status, headers, _ = await _call(app, "POST", init)
        assert status == 200
        sid = headers[b"mcp-session-id"]
        status, _, _ = await _call(app, "POST", {"jsonrpc": "2.0", "method": "notifications/initialized"}, _headers(sid))
        assert status == 202
        ids.append(sid)
    return ids


async def _delete_sessions(app: Any, ids: list[bytes]) -> None:
    for sid in ids:
        status, _, _ = await _call(app, "DELETE", None, _headers(sid))
        assert status == 204


async def test_ten_thousand_live_sessions() -> None:
    server = Server("capacity")

    @server.tool()
    def echo(text: str) -> str:
        return text

    app = create_app(server, json_response=True, max_sessions=SESSIONS)
    init = _initialize()
    ids = await _open_sessions(app, SESSIONS, init)
    assert len(set(ids)) == SESSIONS
    assert len(app.sessions) == SESSIONS
    assert len(server.hub._peers) == SESSIONS

    # One more is refused with 503 + Retry-After (the cap), and every live session answers.
    status, headers, _ = await _call(app, "POST", init)
    assert status == 503 and b"retry-after" in headers
    for n, sid in enumerate(ids):
        call = {"jsonrpc": "2.0", "id": n + 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": str(n)}}}
        status, _, body = await _call(app, "POST", call, _headers(sid))
        assert status == 200
        assert orjson.loads(body)["result"]["content"][0]["text"] == str(n)

    await _delete_sessions(app, ids)
    assert len(app.sessions) == 0
    assert len(server.hub._peers) == 0
    assert app.sessions.records is None  # no shared store: each live session was the only copy of itself
    status, _, _ = await _call(app, "POST", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                               _headers(ids[0]))
    assert status == 404  # T-HTTP-39: a deleted session is unknown
    await app.aclose()


async def test_an_idle_session_takes_under_2_kib_and_leaves_nothing_after_delete(monkeypatch: Any) -> None:
    """Issue 4's memory targets, as allocations: <= 2 KiB of objects per idle legacy session, every
    byte of it freed by DELETE, and then the registries shrink and the C heap is trimmed."""
    import gc
    import tracemalloc

    from anyport.runtime import _heap as _memory
    from anyport.transports.http import _registry as _sessions

    trims: list[int] = []
    monkeypatch.setattr(_sessions, "trim_heap", lambda: trims.append(1) or True)
    monkeypatch.setattr(_memory, "RELEASE_DELAY", 0.01)
    server = Server("memory")
    app = create_app(server, json_response=True)
    init = _initialize({"sampling": {}, "roots": {"listChanged": True}}, client="some-client")
    await _delete_sessions(app, await _open_sessions(app, 20, init))  # one-time allocations (caches, first-use tables) happen here
    n = 1000
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.get_traced_memory()[0]
        ids = await _open_sessions(app, n, init)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before - sum(len(i) + 33 for i in ids)  # minus our own id copies
        assert held / n <= 2048, f"{held / n:.0f} bytes per idle session"
        await _delete_sessions(app, ids)
        del ids
        await asyncio.sleep(0.05)  # the release timer
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*anyport*")])
        left = sum(stat.size for stat in snapshot.statistics("filename"))
    finally:
        tracemalloc.stop()
    assert left < 4096, f"{left} bytes of anyport objects outlived {n} DELETEs"
    assert trims and len(server.hub._peers) == 0 and len(app.sessions) == 0
    await app.aclose()


async def test_a_release_in_the_middle_of_a_burst_does_not_leave_the_tail_s_table(monkeypatch: Any) -> None:
    """The release after 256 ended sessions may fire while DELETEs are still coming; the tables it
    rebuilds are sized for the sessions left then. When the last of those is gone, fewer than 256
    later, the tables must be rebuilt again instead of keeping room for the tail for good."""
    import sys

    from anyport.runtime import _heap as _memory
    from anyport.transports.http import _registry as _sessions

    monkeypatch.setattr(_sessions, "trim_heap", lambda: True)
    monkeypatch.setattr(_memory, "RELEASE_DELAY", 0.01)
    server = Server("burst")
    app = create_app(server, json_response=True)
    ids = await _open_sessions(app, 400, _initialize())
    await _delete_sessions(app, ids[:300])
    await asyncio.sleep(0.1)  # the first release: tables rebuilt for the 100 left
    assert len(app.sessions) == 100
    await _delete_sessions(app, ids[300:])
    await asyncio.sleep(0.1)
    assert len(app.sessions) == 0
    empty = sys.getsizeof({})
    assert sys.getsizeof(app.sessions._sessions) == empty
    assert sys.getsizeof(server.hub._peers) == empty
    await app.aclose()
