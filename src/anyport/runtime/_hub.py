"""Server-initiated notifications: who is connected, who subscribed to what.

Three kinds of receivers:

- **Peers** (legacy era): a connected session that takes unsolicited notifications, e.g. a stdio
  or memory connection after ``initialize``, a 2024-11-05 HTTP+SSE connection, or a Streamable
  HTTP session. A transport registers each session with ``server.hub.register(peer)`` and
  unregisters it when the session ends. ``resources/subscribe`` records the URI for that peer
  (and tells the peer, when it has a ``subscriptions_changed`` hook, so it can persist them).
- **Fanouts**: one delivery path to many peers at once, possibly in several processes, e.g. the
  Bus every Streamable HTTP GET stream listens on. A peer whose ``fanout`` attribute is set is
  reached through its fanout, never one by one, when a notification goes to every peer
  (``list_changed``) or to every subscriber of a URI (``resources/updated``): one publish, each
  session once, also the sessions this process has never seen. The fanout filters by itself
  (initialized sessions; sessions subscribed to the URI).
- **Listeners** (2026-07-28): one per open ``subscriptions/listen`` request; it receives only
  the kinds its filter named, tagged with its subscription id (M-20..M-22). The dispatcher
  manages them; transports only stream what the request's outlet sends.
- **Relays**: carry what listeners get to the hubs of other processes (replicas sharing a Bus),
  whose listeners take it with ``deliver_to_listeners``; each hub skips what it sent itself
  (``origin``), so a listener gets each notification once, whichever replica sent it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["LIST_KINDS", "Fanout", "Listener", "NotificationHub", "Peer", "Relay"]

log = logging.getLogger("anyport.server")

#: notify_list_changed kinds -> the listen filter field that opts into each (M-20).
LIST_KINDS = {"tools": "toolsListChanged", "resources": "resourcesListChanged", "prompts": "promptsListChanged"}


@runtime_checkable
class Peer(Protocol):
    """A legacy session that can receive server-initiated notifications.

    ``id`` is unique among the sessions of a server (an ``Mcp-Session-Id`` for HTTP). ``notify``
    sends one notification to the client, or drops it when the session cannot take it now (not yet
    initialized, no GET stream open); it should not raise for a closed session.

    Optional attributes a peer may have: ``fanout`` (a ``Fanout`` that reaches this peer when a
    notification goes to all peers or to a URI's subscribers) and ``subscriptions_changed(uris)``
    (called with the peer's whole set after each ``resources/subscribe`` / ``unsubscribe``).
    """

    @property
    def id(self) -> str: ...

    async def notify(self, method: str, params: dict[str, Any]) -> object: ...


@runtime_checkable
class Fanout(Protocol):
    """One publish that reaches many peers, each exactly once (e.g. over a Bus shared by replicas).

    Fanouts with equal ``key`` are one path: a notification is published once per key. ``publish``
    without ``uri`` goes to every initialized session the fanout reaches; with ``uri``
    (``notifications/resources/updated``) only to the sessions subscribed to it.
    """

    @property
    def key(self) -> Hashable: ...

    async def publish(self, method: str, params: dict[str, Any], *, uri: str | None = None) -> object: ...


@runtime_checkable
class Relay(Protocol):
    """Carries listener notifications to other processes (relays with equal ``key`` are one path)."""

    @property
    def key(self) -> Hashable: ...

    async def publish(self, origin: str, method: str, params: dict[str, Any]) -> object: ...


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


def _remove(peers: list[Peer], peer: Peer) -> None:
    for i, p in enumerate(peers):
        if p is peer:
            del peers[i]
            return


class NotificationHub:
    """The registry of peers, fanouts and listeners of one ``Server``."""

    def __init__(self) -> None:
        #: Peers by id: the last registered under an id is the one delivered to (two transports of
        #: one process may both hold a session, e.g. two HTTP apps sharing a server and its state);
        #: the ones it took over from wait in ``_earlier`` (rare: most ids have one peer, kept alone).
        self._peers: dict[str, Peer] = {}
        self._earlier: dict[str, list[Peer]] = {}
        self._subscriptions: dict[str, set[str]] = {}
        self._fanouts: list[Fanout] = []
        self._listeners: set[Listener] = set()
        self._relays: dict[Hashable, Relay] = {}
        #: Names this hub in what its relays carry, so it never takes back its own notifications.
        self.origin = secrets.token_hex(8)
        #: Called with a peer id once no peer is left under it (``on_session_end``).
        self._enders: list[Callable[[str], None]] = []

    # -- peers (legacy) ------------------------------------------------------------------------

    def register(self, peer: Peer, *, subscriptions: Iterable[str] = ()) -> None:
        """Start delivering to ``peer`` (it takes over from a peer registered under the same id);
        ``subscriptions``: resource URIs it had subscribed to already (a restored session)."""
        current = self._peers.get(peer.id)
        if current is not None and current is not peer:
            earlier = self._earlier.setdefault(peer.id, [])
            _remove(earlier, peer)
            earlier.append(current)
        self._peers[peer.id] = peer
        if subscriptions:
            uris = set(subscriptions)
            if uris:
                self._subscriptions.setdefault(peer.id, set()).update(uris)

    def unregister(self, peer_id: str, peer: Peer | None = None) -> None:
        """Stop delivering to the peer (only that object, when given); once no peer is left under
        ``peer_id`` its resource subscriptions are dropped."""
        current = self._peers.get(peer_id)
        earlier = self._earlier.get(peer_id)
        known = current is not None or bool(earlier)  # else no session of this hub, or one ended already
        if peer is None or current is peer:
            if peer is None:
                earlier = None
            if earlier:
                self._peers[peer_id] = earlier.pop()
                if not earlier:
                    del self._earlier[peer_id]
                return
            self._peers.pop(peer_id, None)
            self._earlier.pop(peer_id, None)
        elif earlier is not None:
            _remove(earlier, peer)
            if not earlier:
                del self._earlier[peer_id]
        if peer_id not in self._peers:
            self._subscriptions.pop(peer_id, None)
            for ended in self._enders if known else ():
                try:
                    ended(peer_id)
                except Exception:
                    log.exception("a session-end hook failed")

    def on_session_end(self, hook: Callable[[str], None]) -> None:
        """Call ``hook(session_id)`` whenever a session of this process ends: its last peer is
        unregistered (DELETE, expiry, an HTTP+SSE or stdio connection closed, shutdown). The
        application frees what it keeps per session there (a bridge stops the session's child)."""
        self._enders.append(hook)

    def compact(self) -> None:
        """Shrink the tables after many peers left (a dict keeps its peak size until rebuilt)."""
        self._peers = dict(self._peers)
        self._subscriptions = dict(self._subscriptions)

    def peer(self, peer_id: str) -> Peer | None:
        return self._peers.get(peer_id)

    @property
    def peer_ids(self) -> list[str]:
        return list(self._peers)

    def subscribe(self, peer_id: str, uri: str) -> None:
        subs = self._subscriptions.setdefault(peer_id, set())
        if uri not in subs:
            subs.add(uri)
            self._subscriptions_changed(peer_id)

    def unsubscribe(self, peer_id: str, uri: str) -> None:
        subs = self._subscriptions.get(peer_id)
        if subs is not None and uri in subs:
            subs.discard(uri)
            self._subscriptions_changed(peer_id)

    def set_subscriptions(self, peer_id: str, uris: Iterable[str]) -> None:
        """Replace the peer's subscriptions with what a transport learned elsewhere (another
        replica); unlike ``subscribe`` this does not call the peer's hook."""
        self._subscriptions[peer_id] = set(uris)

    def subscriptions(self, peer_id: str) -> set[str]:
        return set(self._subscriptions.get(peer_id, ()))

    def _subscriptions_changed(self, peer_id: str) -> None:
        hook = getattr(self.peer(peer_id), "subscriptions_changed", None)
        if callable(hook):
            try:
                hook(frozenset(self._subscriptions.get(peer_id, ())))
            except Exception:
                log.debug("subscriptions_changed failed for peer %s", peer_id, exc_info=True)

    # -- fanouts --------------------------------------------------------------------------------

    def add_fanout(self, fanout: Fanout) -> None:
        """Publish notifications for all peers (or a URI's subscribers) through ``fanout`` too,
        even while no peer of it is registered here (its sessions may live in other processes)."""
        if not any(f is fanout for f in self._fanouts):
            self._fanouts.append(fanout)

    def remove_fanout(self, fanout: Fanout) -> None:
        self._fanouts = [f for f in self._fanouts if f is not fanout]

    def _split(self, peer_ids: Iterable[str]) -> tuple[list[str], dict[Hashable, Fanout]]:
        """(ids of peers reached one by one, fanouts by key): added fanouts and those of the peers."""
        fanouts: dict[Hashable, Fanout] = {}
        for f in self._fanouts:
            fanouts.setdefault(f.key, f)
        direct: list[str] = []
        for pid in peer_ids:
            fanout = getattr(self.peer(pid), "fanout", None)
            if fanout is None:
                direct.append(pid)
            else:
                fanouts.setdefault(fanout.key, fanout)
        return direct, fanouts

    # -- relays (listeners of other processes) -------------------------------------------------

    def add_relay(self, relay: Relay) -> Relay:
        """Carry listener notifications through ``relay`` too; returns the relay in use for its key
        (an equal one added earlier wins: one path per key)."""
        return self._relays.setdefault(relay.key, relay)

    def remove_relay(self, relay: Relay) -> None:
        if self._relays.get(relay.key) is relay:
            del self._relays[relay.key]

    def deliver_to_listeners(self, origin: str, method: str, params: dict[str, Any]) -> None:
        """A notification another process's hub sent to its listeners: ours get it too (not our own)."""
        if origin != self.origin:
            self._to_listeners(method, params)

    async def _relay(self, method: str, params: dict[str, Any]) -> None:
        for key, relay in list(self._relays.items()):
            try:
                await relay.publish(self.origin, method, dict(params))
            except Exception:
                log.debug("dropping %s for relay %r", method, key, exc_info=True)

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
        return bool(self._peers or self._listeners or self._fanouts or self._relays)

    # -- delivery ------------------------------------------------------------------------------

    async def publish(self, method: str, params: dict[str, Any], *, peers: Iterable[str] | None = None) -> None:
        """Send to listeners whose filter asks for it and to ``peers`` (default: every peer, those
        with a fanout through it, once per fanout). Named ``peers`` are notified one by one."""
        self._to_listeners(method, params)
        if self._relays:
            await self._relay(method, params)
        if peers is not None:
            await self._notify(list(peers), method, params)
            return
        direct, fanouts = self._split(list(self._peers))
        await self._notify(direct, method, params)
        await self._fan(fanouts, method, params, None)

    async def resource_updated(self, uri: str) -> None:
        """``notifications/resources/updated`` to listeners and peers subscribed to ``uri``."""
        method, params = "notifications/resources/updated", {"uri": uri}
        self._to_listeners(method, params)
        if self._relays:
            await self._relay(method, params)
        subscribed = [pid for pid, uris in self._subscriptions.items() if uri in uris]
        direct, fanouts = self._split(subscribed)
        await self._notify(direct, method, params)
        await self._fan(fanouts, method, params, uri)

    def _to_listeners(self, method: str, params: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            if listener.wants(method, params):
                listener.queue.put_nowait((method, dict(params)))

    async def _notify(self, peer_ids: list[str], method: str, params: dict[str, Any]) -> None:
        for pid in peer_ids:
            peer = self.peer(pid)
            if peer is None:
                continue
            try:
                await peer.notify(method, dict(params))
            except Exception:  # one broken peer never stops the others
                log.debug("dropping %s for peer %s", method, pid, exc_info=True)

    async def _fan(self, fanouts: dict[Hashable, Fanout], method: str, params: dict[str, Any], uri: str | None) -> None:
        for key, fanout in fanouts.items():
            try:
                await fanout.publish(method, dict(params), uri=uri)
            except Exception:
                log.debug("dropping %s for fanout %r", method, key, exc_info=True)
