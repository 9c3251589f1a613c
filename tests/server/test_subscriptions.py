"""Server-initiated notifications: legacy resources/subscribe + list_changed (F-RES-03, F-TOOL-03,
F-RES-02, F-PROMPT-01) and 2026-07-28 subscriptions/listen (M-20..M-24), in process and over stdio."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from anyport import Client, JSONRPCError
from anyport.protocol import META_SUBSCRIPTION_ID
from anyport.testing import connect
from anyport.transports.stdio import StdioClientStream

from ._raw import RawPeer, raw
from ._task_fixture import build_app

ROOT = Path(__file__).resolve().parents[2]


class Inbox:
    """Collects notifications a Client receives."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, method: str, params: dict[str, Any]) -> None:
        self.items.append((method, params))

    def methods(self) -> list[str]:
        return [m for m, _ in self.items]


async def test_legacy_capabilities() -> None:
    """F-RES-01, F-TOOL-01, F-PROMPT-01: subscribe and listChanged are advertised; not `subscribe` on 2026."""
    app = build_app()
    async with connect(app, era="legacy") as c:
        caps = c.server_capabilities
        assert caps["resources"] == {"subscribe": True, "listChanged": True}
        assert caps["tools"]["listChanged"] and caps["prompts"]["listChanged"]
    async with connect(app, era="modern") as c:
        assert c.server_capabilities["resources"] == {"listChanged": True}


async def test_resource_subscribe_updated_unsubscribe() -> None:
    """F-RES-03: only a subscribed session gets notifications/resources/updated, and not after unsubscribe."""
    app = build_app()
    a_inbox, b_inbox = Inbox(), Inbox()
    async with connect(app, era="legacy", on_notification=a_inbox) as a, \
            connect(app, era="legacy", on_notification=b_inbox) as b:
        await b.ping()
        assert await a.request("resources/subscribe", {"uri": "test://watched-resource"}) == {}
        await app.notify_resource_updated("test://watched-resource")
        await app.notify_resource_updated("test://other")
        await a.ping()
        assert a_inbox.items == [("notifications/resources/updated", {"uri": "test://watched-resource"})]
        assert b_inbox.items == []
        assert await a.request("resources/unsubscribe", {"uri": "test://watched-resource"}) == {}
        await app.notify_resource_updated("test://watched-resource")
        await b.call_tool("touch", {"uri": "test://watched-resource"})  # from inside a tool, too
        await a.ping()
        assert len(a_inbox.items) == 1
        with pytest.raises(JSONRPCError) as exc:
            await a.request("resources/subscribe", {})
        assert exc.value.code == -32602


async def test_list_changed_to_every_legacy_session() -> None:
    """F-TOOL-03 / F-RES-02 / F-PROMPT-01: notify_list_changed and registering after start notify every session."""
    app = build_app()
    inbox = Inbox()
    async with connect(app, era="legacy", on_notification=inbox) as c:
        await c.ping()  # the server has seen notifications/initialized (L-10)
        await app.notify_list_changed("prompts")
        await c.call_tool("add_tool", {"name": "late"})
        await asyncio.sleep(0.05)
        assert inbox.methods() == ["notifications/prompts/list_changed", "notifications/tools/list_changed"]
        assert "late" in [t.name for t in await c.list_tools()]
        with pytest.raises(ValueError):
            await app.notify_list_changed("widgets")


async def test_modern_connection_gets_nothing_unsolicited() -> None:
    """M-05: a 2026-07-28 connection is not a session; notifications only flow on listen streams."""
    app = build_app()
    async with raw(app) as peer:
        await peer.call("tools/list")
        await app.notify_list_changed("tools")
        await app.notify_resource_updated("test://watched-resource")
        await peer.call("tools/list")
        assert peer.notifications == []
        with pytest.raises(JSONRPCError) as exc:
            await peer.call("resources/subscribe", {"uri": "test://watched-resource"})
        assert exc.value.code == -32601


async def test_listen_ack_filter_tagging_and_cancel() -> None:
    """M-20, M-21, M-22: acknowledged first with the honoured filter; only opted-in kinds, each tagged
    with the listen request's id; a client cancel ends it without a response."""
    app = build_app()
    async with raw(app) as peer:
        listen_id, response = peer.start("subscriptions/listen", {"notifications": {
            "toolsListChanged": True, "promptsListChanged": False,
            "resourceSubscriptions": ["test://watched-resource"], "bogus": True,
        }})
        ack = await peer.notification("notifications/subscriptions/acknowledged")
        assert peer.notifications[0] is ack  # M-21: nothing for the subscription precedes it
        assert ack["params"]["_meta"] == {META_SUBSCRIPTION_ID: listen_id}
        assert ack["params"]["notifications"] == {
            "toolsListChanged": True, "resourceSubscriptions": ["test://watched-resource"],
        }
        await app.notify_list_changed("prompts")  # not asked for
        await app.notify_list_changed("resources")  # not asked for
        await app.notify_resource_updated("test://other")  # not asked for
        await app.notify_list_changed("tools")
        await app.notify_resource_updated("test://watched-resource")
        updated = await peer.notification("notifications/resources/updated")
        assert [n["method"] for n in peer.notifications[1:]] == [
            "notifications/tools/list_changed", "notifications/resources/updated",
        ]
        assert updated["params"] == {"uri": "test://watched-resource", "_meta": {META_SUBSCRIPTION_ID: listen_id}}
        assert peer.notifications[1]["params"]["_meta"] == {META_SUBSCRIPTION_ID: listen_id}

        await peer.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": listen_id}})
        await asyncio.sleep(0.05)
        await app.notify_list_changed("tools")
        await peer.call("tools/list")
        assert len(peer.notifications) == 3 and not response.done()  # U-04: no response after cancel


async def test_listen_concurrent_streams_and_graceful_close() -> None:
    """M-22, M-23: two subscriptions are told apart by id; the server's close answers each with a
    complete result carrying its subscriptionId."""
    app = build_app()
    async with raw(app) as peer:
        id_a, resp_a = peer.start("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
        id_b, resp_b = peer.start("subscriptions/listen", {"notifications": {"promptsListChanged": True}})
        await peer.notification("notifications/subscriptions/acknowledged", _meta={META_SUBSCRIPTION_ID: id_a})
        await peer.notification("notifications/subscriptions/acknowledged", _meta={META_SUBSCRIPTION_ID: id_b})
        app.add_tool(lambda: "x", name="fresh", description="d")  # registering after start notifies
        tools = await peer.notification("notifications/tools/list_changed")
        assert tools["params"]["_meta"] == {META_SUBSCRIPTION_ID: id_a}
        app.close_subscriptions()
        done_a, done_b = await asyncio.wait_for(asyncio.gather(resp_a, resp_b), 5)
        assert done_a["result"]["resultType"] == "complete"
        assert done_a["result"]["_meta"][META_SUBSCRIPTION_ID] == id_a
        assert done_b["result"]["_meta"][META_SUBSCRIPTION_ID] == id_b
        assert not any(n["method"] == "notifications/prompts/list_changed" for n in peer.notifications)


async def test_listen_is_modern_only_and_validates() -> None:
    """subscriptions/listen does not exist on legacy revisions; a malformed filter is -32602."""
    app = build_app()
    async with connect(app, era="legacy") as c:
        with pytest.raises(JSONRPCError) as exc:
            await c.request("subscriptions/listen", {"notifications": {}})
        assert exc.value.code == -32601
    async with raw(app) as peer:
        bad_filters: list[dict[str, Any]] = [{"notifications": []}, {"notifications": {"resourceSubscriptions": "x"}}]
        for bad in bad_filters:
            with pytest.raises(JSONRPCError) as exc:
                await peer.call("subscriptions/listen", bad)
            assert exc.value.code == -32602


# -- over a real stdio subprocess --------------------------------------------------------------------------


def _stdio_cmd() -> list[str]:
    return [sys.executable, str(Path(__file__).with_name("_task_fixture.py")), str(ROOT)]


async def test_stdio_legacy_subscribe_and_list_changed() -> None:
    """F-RES-03 / F-TOOL-03 over stdio: updates for the subscribed URI, list_changed after registering."""
    inbox = Inbox()
    async with Client(_stdio_cmd(), era="legacy", timeout=20, on_notification=inbox) as c:
        await c.request("resources/subscribe", {"uri": "test://watched-resource"})
        await c.call_tool("touch", {"uri": "test://watched-resource"})
        await c.call_tool("touch", {"uri": "test://elsewhere"})
        await c.call_tool("add_tool", {"name": "later"})
        await c.ping()
        assert inbox.items[0] == ("notifications/resources/updated", {"uri": "test://watched-resource"})
        assert inbox.methods() == ["notifications/resources/updated", "notifications/tools/list_changed"]


async def test_stdio_listen() -> None:
    """M-21, M-22 over stdio: the ack, then a tagged list_changed when a tool is registered."""
    stream = StdioClientStream(_stdio_cmd())
    await stream.start()
    peer = RawPeer(stream, capabilities={})
    try:
        listen_id, _ = peer.start("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
        await peer.notification("notifications/subscriptions/acknowledged", timeout=15)
        await peer.call("tools/call", {"name": "add_tool", "arguments": {"name": "later"}})
        note = await peer.notification("notifications/tools/list_changed")
        assert note["params"]["_meta"] == {META_SUBSCRIPTION_ID: listen_id}
    finally:
        await peer.aclose()
