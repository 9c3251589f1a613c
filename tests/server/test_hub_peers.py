"""The hub's peer table: one peer per id delivered to, the ones it took over from kept in order.

Two transports of one process may hold the same session (two HTTP apps sharing a server): the
last registered is the one delivered to; when it leaves, the one before it takes over again.
"""

from __future__ import annotations

from typing import Any

from anyport.runtime._hub import NotificationHub


class _Peer:
    def __init__(self, peer_id: str) -> None:
        self.id = peer_id
        self.got: list[str] = []

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        self.got.append(method)


async def test_the_last_registered_peer_is_delivered_to_and_the_earlier_one_takes_over_again() -> None:
    hub = NotificationHub()
    first, second, third = _Peer("s"), _Peer("s"), _Peer("s")
    hub.register(first, subscriptions=["note://1"])
    hub.register(second)
    hub.register(second)  # again: no duplicate
    assert hub.peer("s") is second
    await hub.publish("notifications/tools/list_changed", {})
    assert (first.got, second.got) == ([], ["notifications/tools/list_changed"])
    hub.register(third)
    hub.unregister("s", second)  # an earlier one leaves: the current one stays
    assert hub.peer("s") is third
    hub.unregister("s", third)
    assert hub.peer("s") is first and hub.subscriptions("s") == {"note://1"}
    hub.unregister("s", _Peer("s"))  # a stranger: nothing changes
    assert hub.peer("s") is first
    hub.unregister("s", first)
    assert hub.peer("s") is None and hub.subscriptions("s") == set() and hub.peer_ids == []


async def test_unregistering_without_a_peer_drops_every_peer_of_the_id() -> None:
    hub = NotificationHub()
    a, b = _Peer("x"), _Peer("x")
    hub.register(a, subscriptions=["u"])
    hub.register(b)
    hub.unregister("x")
    assert hub.peer("x") is None and hub.subscriptions("x") == set()
    hub.register(a)
    assert hub.peer("x") is a  # nothing of the old stack came back
    hub.unregister("x", a)
    assert hub.peer("x") is None
    for n in range(500):
        hub.register(_Peer(f"p{n}"))
    for n in range(500):
        hub.unregister(f"p{n}")
    hub.compact()
    assert hub.peer_ids == [] and not hub.active
