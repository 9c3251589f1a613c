"""Server-initiated notifications: who is connected, who subscribed to what.

Two kinds of receivers:

- **Peers** (legacy era): a connected session that takes unsolicited notifications, e.g. a stdio
  or memory connection after ``initialize``, or a Streamable HTTP session's GET stream. A
  transport registers each session with ``server.peers.register(peer)`` and unregisters it
  when the session ends. ``resources/subscribe`` records the URI for that peer.
- **Listeners** (2026-07-28): one per open ``subscriptions/listen`` request; it receives only
  the kinds its filter named, tagged with its subscription id (M-20..M-22). The dispatcher
  manages them; transports only stream what the request's outlet sends.

Delivery is in-process; a scaled-out transport registers a peer whose ``notify`` publishes on
the Bus to the replica that holds the stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["LIST_KINDS", "Listener", "NotificationHub", "Peer"]

log = logging.getLogger("anyport.server")

#: notify_list_changed kinds -> the listen filter field that opts into each (M-20).
LIST_KINDS = {"tools": "toolsListChanged", "resources": "resourcesListChanged", "prompts": "promptsListChanged"}


@runtime_checkable
class Peer(Protocol):
    """A legacy session that can receive server-initiated notifications.

    ``id`` is unique among registered peers (an ``Mcp-Session-Id`` for HTTP). ``notify`` sends
    one notification to the client, or drops it when the session cannot take it now (not yet
    initialized, no GET stream open); it should not raise for a closed session.
    """

    @property
    def id(self) -> str: ...

    async def notify(self, method: str, params: dict[str, Any]) -> object: ...


@dataclass(eq=False, slots=True)
class Listener:
    """One open ``subscriptions/listen``: its honoured filter and its queue of notifications."""

    filter: dict[str, Any]
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = field(default_factory=asyncio.Queue)

    def wants(self, method: str, params: dict[str, Any]) -> bool:
        f = self.filter
        if method == "notifications/resources/updated":
            return params.get("uri") in (f.get("resourceSubscriptions") or ())
        if method == "notifications/tasks":
            return params.get("taskId") in (f.get("taskIds") or ())
        for kind, key in LIST_KINDS.items():
            if method == f"notifications/{kind}/list_changed":
                return f.get(key) is True
        return False


class NotificationHub:
    """The registry of peers and listeners of one ``Server``."""

    def __init__(self) -> None:
        self._peers: dict[str, Peer] = {}
        self._subscriptions: dict[str, set[str]] = {}
        self._listeners: set[Listener] = set()

    # -- peers (legacy) ------------------------------------------------------------------------

    def register(self, peer: Peer) -> None:
        """Start delivering to ``peer`` (replaces a peer registered under the same id)."""
        self._peers[peer.id] = peer

    def unregister(self, peer_id: str) -> None:
        """Stop delivering to the peer; its resource subscriptions are dropped."""
        self._peers.pop(peer_id, None)
        self._subscriptions.pop(peer_id, None)

    def peer(self, peer_id: str) -> Peer | None:
        return self._peers.get(peer_id)

    @property
    def peer_ids(self) -> list[str]:
        return list(self._peers)

    def subscribe(self, peer_id: str, uri: str) -> None:
        self._subscriptions.setdefault(peer_id, set()).add(uri)

    def unsubscribe(self, peer_id: str, uri: str) -> None:
        subs = self._subscriptions.get(peer_id)
        if subs is not None:
            subs.discard(uri)

    def subscriptions(self, peer_id: str) -> set[str]:
        return set(self._subscriptions.get(peer_id, ()))

    # -- listeners (modern) --------------------------------------------------------------------

    def add_listener(self, filter_: dict[str, Any]) -> Listener:
        listener = Listener(filter_)
        self._listeners.add(listener)
        return listener

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def close_listeners(self) -> None:
        """End every open ``subscriptions/listen`` gracefully (M-23)."""
        for listener in list(self._listeners):
            listener.queue.put_nowait(None)

    @property
    def active(self) -> bool:
        return bool(self._peers or self._listeners)

    # -- delivery ------------------------------------------------------------------------------

    async def publish(self, method: str, params: dict[str, Any], *, peers: Iterable[str] | None = None) -> None:
        """Send to listeners whose filter asks for it and to ``peers`` (default: every peer)."""
        for listener in list(self._listeners):
            if listener.wants(method, params):
                listener.queue.put_nowait((method, dict(params)))
        targets = list(self._peers) if peers is None else list(peers)
        for pid in targets:
            peer = self._peers.get(pid)
            if peer is None:
                continue
            try:
                await peer.notify(method, dict(params))
            except Exception:  # one broken peer never stops the others
                log.debug("dropping %s for peer %s", method, pid, exc_info=True)

    async def resource_updated(self, uri: str) -> None:
        subscribed = [pid for pid, uris in self._subscriptions.items() if uri in uris]
        await self.publish("notifications/resources/updated", {"uri": uri}, peers=subscribed)
