"""What an application hears of its sessions besides requests: the client's notifications the core
leaves to it (``Application.client_notification``) and the end of a session (``hub.on_session_end``),
on every runtime: a stream (memory, as stdio), Streamable HTTP (both eras) and HTTP+SSE."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from anyport import Server
from anyport.runtime._hub import NotificationHub
from anyport.testing import memory_pair
from anyport.transports.http import create_app
from tests.server._raw import RawPeer
from tests.transports._http_helpers import running

ROOTS_CHANGED = "notifications/roots/list_changed"
POST = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


class _Peer:
    def __init__(self, peer_id: str) -> None:
        self.id = peer_id

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        return None


class Recording(Server):
    """A server that writes down the client notifications and session ends it is told of."""

    def __init__(self) -> None:
        super().__init__("recording")
        self.heard: list[tuple[str | None, str, dict[str, Any]]] = []
        self.ended: list[str] = []
        self.hub.on_session_end(self.ended.append)

    def client_notification(self, session_id: str | None, method: str, params: dict[str, Any]) -> None:
        self.heard.append((session_id, method, params))


def test_session_end_hook_runs_once_when_the_last_peer_of_an_id_leaves() -> None:
    hub = NotificationHub()
    ended: list[str] = []
    hub.on_session_end(ended.append)
    first, second = _Peer("s"), _Peer("s")
    hub.register(first)
    hub.register(second)
    hub.unregister("s", second)  # the earlier peer takes over: the session goes on
    assert ended == []
    hub.unregister("s", first)
    assert ended == ["s"]
    hub.unregister("s")  # again, and an id never registered: no second end
    hub.unregister("never")
    assert ended == ["s"]


def test_a_failing_session_end_hook_does_not_stop_the_others() -> None:
    hub = NotificationHub()
    ended: list[str] = []

    def broken(_sid: str) -> None:
        raise RuntimeError("boom")

    hub.on_session_end(broken)
    hub.on_session_end(ended.append)
    hub.register(_Peer("x"))
    hub.unregister("x")
    assert ended == ["x"]


async def test_stream_runtime_hands_roots_list_changed_to_the_application_and_ends_the_session() -> None:
    """L-15 (roots/list_changed) reaches the application with the session's id; the connection's end
    is the session's end. initialized and cancelled stay with the core."""
    app = Recording()
    client_end, server_end = memory_pair()
    serving = asyncio.get_running_loop().create_task(app.serve(server_end))
    peer = RawPeer(client_end, {"roots": {"listChanged": True}})
    try:
        await peer.call("initialize", {"protocolVersion": "2025-11-25", "capabilities": {"roots": {"listChanged": True}},
                                       "clientInfo": {"name": "t", "version": "1"}}, modern=False)
        await peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await peer.send({"jsonrpc": "2.0", "method": ROOTS_CHANGED})
        await peer.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}})
        await peer.call("ping", {}, modern=False)  # the notifications were read before this answer
        assert [(m, p) for _, m, p in app.heard] == [(ROOTS_CHANGED, {})]
        session = app.heard[0][0]
        assert isinstance(session, str) and session in app.hub.peer_ids
    finally:
        await peer.aclose()
        await asyncio.wait_for(serving, 5)
    assert app.ended == [session]


def test_streamable_http_and_http_sse_hand_client_notifications_to_the_application() -> None:
    """T-HTTP-08 (a POST of notifications only: 202) and T-H26-04 (a 2026-07-28 notification: 202);
    the legacy session's id, none for a 2026-07-28 one; on HTTP+SSE the id is the connection's
    ``session_id`` (T-SSE-06), and closing the stream ends that session (T-SSE-07)."""
    app = Recording()
    with running(create_app(app)) as base, httpx.Client(base_url=base, timeout=10) as c:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {"roots": {"listChanged": True}}, "clientInfo": {"name": "t", "version": "1"}}}
        r = c.post("/mcp", headers=POST, json=init)
        sid = r.headers["mcp-session-id"]
        h = {**POST, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        assert c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
        assert c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "method": ROOTS_CHANGED}).status_code == 202
        modern = {**POST, "mcp-protocol-version": "2026-07-28", "mcp-method": ROOTS_CHANGED}
        assert c.post("/mcp", headers=modern, json={"jsonrpc": "2.0", "method": ROOTS_CHANGED, "params": {}}).status_code == 202
        assert [(s, m) for s, m, _ in app.heard] == [(sid, ROOTS_CHANGED), (None, ROOTS_CHANGED)]
        assert c.delete("/mcp", headers=h).status_code in (200, 202, 204)
        assert app.ended == [sid]

        with c.stream("GET", "/sse", headers={"accept": "text/event-stream"}) as stream:
            lines = stream.iter_lines()
            endpoint = next(line for line in lines if line.startswith("data:"))[5:].strip()
            conn_id = endpoint.split("session_id=")[1]
            init["params"]["protocolVersion"] = "2024-11-05"
            assert c.post(endpoint, json=init).status_code == 202
            next(line for line in lines if line.startswith("data:"))
            c.post(endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            assert c.post(endpoint, json={"jsonrpc": "2.0", "method": ROOTS_CHANGED}).status_code == 202
        _wait(lambda: (conn_id, ROOTS_CHANGED, {}) in app.heard)
        _wait(lambda: app.ended == [sid, conn_id])


def _wait(predicate: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)
