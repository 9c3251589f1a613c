"""Legacy-era Streamable HTTP sessions (T-HTTP-33..42): the live part, kept by this process.

A session has two halves (DESIGN.md §4):

- its **record** (``anyport.state.SessionRecord``: revision, client capabilities and info, log
  level, subscriptions), plain data in a ``anyport.state.SessionStore`` that any replica can load;
- its **live** part, which only the process running its handlers can hold: the protocol state
  machine (``ServerConnection``), the handler tasks (so ``notifications/cancelled`` can stop them)
  and the futures waiting for the client's answers to server->client requests.

``LiveSessions`` (``_registry``) is the registry of this process's live sessions. It writes each
record to the state store and, when a request names a session this process has never seen, rebuilds
the live part from the record (``restore``), so sessions survive without sticky routing.

Each live session is a peer of ``server.hub`` (registered on create and restore, unregistered
when it ends here: DELETE, expiry, eviction, shutdown), so ``server.notify_list_changed`` and
``server.notify_resource_updated`` reach Streamable HTTP clients. Those two go through the hub's
fanout ``BusFanout``: one publish on the Bus key every standalone GET stream listens on, filtered by
each stream (initialized sessions; sessions subscribed to the URI), so every session is reached once,
on whichever replica holds its stream, also sessions this process has never seen.
``resources/subscribe`` lands in the hub, which calls ``HTTPSession.subscriptions_changed``: the
set is written to the record (any replica restores it) and published to the session's GET stream.

Server code reaches one session's client with ``HTTPSession.notify(method, params)``: the message
goes over the ``Bus`` to whichever process holds the session's standalone GET stream.

The client's answers to server->client requests (elicitation, sampling, roots) and its
``notifications/cancelled`` arrive as POSTs on any replica (DESIGN.md §4, T-HTTP-05, T-HTTP-18). A
replica that finds the waiting future or the handler task itself resolves or cancels it at once, with
no Bus traffic; otherwise it publishes the message on the session's inbox key (``inbox_key``). A
replica listens there only while its live part of the session has handlers running or futures waiting
(``HTTPSession.listening``), so an idle session costs no subscription. Each answer resolves its future
once (the waiter is popped by whoever comes first); unknown and late ids are dropped (U-04, U-05).
Server->client request ids are unique across replicas (J-04): the replica that created the session
numbers them 1, 2, ...; a replica that restored it uses its own random block (``SessionRequests``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import Coroutine, Hashable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from anyport._exceptions import ConnectionClosedError, error_from_response
from anyport.protocol import OutgoingRequests, ResponseReceived, ServerConnection, is_request_id, notification
from anyport.state import Bus, SessionRecord, SessionStore

if TYPE_CHECKING:
    from anyport.runtime._hub import NotificationHub
    from anyport.transports.http._registry import LiveSessions

__all__ = [
    "BROADCAST_KEY",
    "HUB_KEY",
    "LISTEN_KEY",
    "SESSIONS_KEY",
    "BusRelay",
    "BusFanout",
    "HTTPSession",
    "SessionRequests",
    "SessionStore",
    "inbox_key",
    "new_session_id",
    "record_of",
    "session_key",
]

log = logging.getLogger("anyport.http")

#: Bus key every standalone GET stream listens on while a connection is attached to it, for messages
#: meant for every connected session (``StreamableHTTPApp.broadcast``).
BROADCAST_KEY = "broadcast"
#: Bus key every standalone stream listens on, attached or lingering (logged for a resuming GET):
#: the hub's notifications for every session (``BusFanout``), filtered by each stream.
HUB_KEY = "hub"


def session_key(session_id: str) -> str:
    """Bus key of a session's standalone GET stream."""
    return f"session:{session_id}"


def inbox_key(session_id: str) -> str:
    """Bus key of a session's inbox: the client's answers and cancellations that reached a replica
    without the waiting future or the handler task, for the replica that has it (DESIGN.md §4)."""
    return f"inbox:{session_id}"


def new_session_id() -> str:
    """A cryptographically random id of visible ASCII only (T-HTTP-34, T-HTTP-35)."""
    return secrets.token_urlsafe(32)


def record_of(session_id: str, conn: ServerConnection, subscriptions: Any = ()) -> SessionRecord:
    """The plain-data record of a live connection."""
    return SessionRecord(
        id=session_id,
        version=conn.revision.version if conn.revision is not None else None,
        client_capabilities=dict(conn.client_capabilities),
        client_info=conn.client_info,
        log_level=conn.log_level,
        initialized=conn.initialized,
        subscriptions=sorted(subscriptions),
    )


#: ``ResponseReceived.method`` of an answer to a request this replica did not send: another replica
#: may have sent it, so ``HTTPSession.deliver`` hands it on over the Bus.
ASKED_ELSEWHERE = ""

#: Server->client request ids come in blocks of this many; block 0 (ids 1, 2, ...) belongs to the
#: replica that created the session, the others are drawn at random, all below 2**53 so that
#: JavaScript clients read them exactly.
_ID_BLOCK = 1 << 20
_ID_BLOCKS = (1 << 53) // _ID_BLOCK


_T = TypeVar("_T")

#: Memory is given back after many sessions ended (``anyport.runtime._heap.Releaser``), and also once the
#: last session is gone while the table still has room for some tens: a release in the middle of
#: a burst must not leave the table sized for the burst's tail.
_EMPTY_TABLE_BYTES = 1024

_NO_URIS: frozenset[str] = frozenset()
_FIRST_BLOCKS = (0,)  # the blocks of every session's first live part: one shared tuple


class SessionRequests(OutgoingRequests):
    """One replica's server->client requests on a session that several replicas serve.

    Ids never repeat within the session (J-04), also across replicas: each live part numbers its
    requests within its own block (``first``: block 0, ids 1, 2, ...; otherwise a random one of
    2**33 blocks, a fresh one when a block is used up). ``resolve`` knows its own blocks: an id of
    ours that is not pending is late (None, U-05); an id of another block may be waited for on
    another replica (``ASKED_ELSEWHERE``).
    """

    __slots__ = ("_block", "_blocks", "_seq")

    def __init__(self, *, first: bool = False, pending: dict[str | int, str] | None = None) -> None:
        super().__init__()
        if pending:
            self.pending.update(pending)
        self._blocks: tuple[int, ...] = ()  # usually one: a tuple is a fraction of a set's size
        self._block = 0
        self._seq = 0  # the last number used in the current block
        self._use(0 if first else self._fresh())

    def _fresh(self) -> int:
        while True:
            block = secrets.randbelow(_ID_BLOCKS - 1) + 1
            if block not in self._blocks:
                return block

    def _use(self, block: int) -> None:
        self._blocks = _FIRST_BLOCKS if block == 0 and not self._blocks else (*self._blocks, block)
        self._block = block
        self._seq = 0

    def start(self, method: str) -> int:
        n = self._seq = self._seq + 1
        if n >= _ID_BLOCK:
            self._use(self._fresh())
            n = self._seq = 1
        id_ = self._block * _ID_BLOCK + n
        self.pending[id_] = method
        return id_

    def ours(self, id_: object) -> bool:
        """Whether ``id_`` is one this live part could have sent."""
        return isinstance(id_, int) and not isinstance(id_, bool) and id_ // _ID_BLOCK in self._blocks

    def resolve(self, id_: str | int) -> str | None:
        method = self.pending.pop(id_, None)
        if method is None and not self.ours(id_):
            return ASKED_ELSEWHERE
        return method


def share(conn: ServerConnection, *, first: bool = False) -> None:
    """Make ``conn`` the live part of a session other replicas serve too (see ``SessionRequests``)."""
    conn.shared = True
    if not isinstance(conn.outgoing, SessionRequests):
        conn.outgoing = SessionRequests(first=first, pending=conn.outgoing.pending)


#: Client-declared values (capabilities, clientInfo) by their canonical JSON: one copy for every session.
_COPIES: dict[bytes, Any] = {}
_COPIES_KEPT = 256


def _one_copy(value: _T) -> _T:
    """``value``, or an equal one already kept for another session (small JSON data only)."""
    if not value:
        return value
    try:
        key = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return value
    if len(key) > 4096:
        return value
    kept = _COPIES.get(key)
    if kept is None:
        if len(_COPIES) >= _COPIES_KEPT:
            _COPIES.clear()
        kept = _COPIES[key] = value
    return kept


def _settle(fut: asyncio.Future[Any], result: Any, error: Any) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error_from_response(error))
    else:
        fut.set_result(result)


#: What the hub's fanout asks of each standalone stream (see ``GetStreams``): deliver to an initialized
#: session, or to one subscribed to the message's ``uri``.
TO_INITIALIZED = "initialized"
TO_SUBSCRIBED = "subscribed"


class BusFanout:
    """The hub's fanout for Streamable HTTP sessions (``anyport.runtime._hub.Fanout``).

    One publish on ``HUB_KEY`` reaches the standalone GET stream of every session of every replica
    sharing the Bus, also a stream whose client is between two GETs (it is logged for the resuming
    GET); each stream takes it only when its session is initialized (M-05) or, for
    ``notifications/resources/updated``, subscribed to the URI (F-RES-03). Apps sharing one Bus
    object share the key, so the hub publishes once for all of them.
    """

    __slots__ = ("bus",)

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    @property
    def key(self) -> Hashable:
        return ("anyport.http.bus", id(self.bus))

    async def publish(self, method: str, params: dict[str, Any], *, uri: str | None = None) -> int:
        """How many GET streams got it (before their filters)."""
        msg: dict[str, Any] = {"message": notification(method, params), "to": TO_INITIALIZED}
        if uri is not None:
            msg["to"], msg["uri"] = TO_SUBSCRIBED, uri
        return await self.bus.publish(HUB_KEY, msg)


#: Bus key on which replicas tell each other that a session ended (DELETE) or its record changed, so
#: a live part kept elsewhere is dropped, or re-reads its record, at once (``LiveSessions``).
SESSIONS_KEY = "sessions"

#: Bus key on which the hubs of every replica relay what their listeners get (2026-07-28
#: ``subscriptions/listen``), see ``BusRelay``.
LISTEN_KEY = "listen"


class BusRelay:
    """The hub's relay over a Bus (``anyport.runtime._hub.Relay``), and the one subscription that
    brings other replicas' listener notifications to this hub: a ``subscriptions/listen`` stream on
    any replica gets what any replica sends (list changes, resource updates, task status).

    One per hub and Bus (``hub.add_relay`` keeps the first); the apps using it ``acquire`` and
    ``release`` it, and it listens while one does. A subscription that breaks (Redis restarted) is
    made again after a short pause.
    """

    __slots__ = ("_task", "_users", "bus", "hub")

    def __init__(self, bus: Bus, hub: NotificationHub) -> None:
        self.bus = bus
        self.hub = hub
        self._users = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def key(self) -> Hashable:
        return ("anyport.http.relay", id(self.bus))

    async def publish(self, origin: str, method: str, params: dict[str, Any]) -> int:
        return await self.bus.publish(LISTEN_KEY, {"origin": origin, "method": method, "params": params})

    def acquire(self) -> None:
        self._users += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())

    def release(self) -> bool:
        """One app stopped using the relay; True when it was the last (the relay stops listening)."""
        self._users -= 1
        if self._users > 0:
            return False
        if self._task is not None:
            self._task.cancel()
            self._task = None
        return True

    async def _listen(self) -> None:
        while True:
            try:
                sub = await self.bus.subscribe(LISTEN_KEY)
            except Exception as exc:
                log.warning("cannot relay listener notifications from other replicas yet: %s", exc)
                await asyncio.sleep(1.0)
                continue
            try:
                while True:
                    _key, msg = await sub.get()
                    origin, method, params = msg.get("origin"), msg.get("method"), msg.get("params")
                    if isinstance(origin, str) and isinstance(method, str) and isinstance(params, dict):
                        self.hub.deliver_to_listeners(origin, method, params)
            except EOFError:
                await asyncio.sleep(0.5)  # the bus connection broke: subscribe again
            finally:
                with contextlib.suppress(Exception):
                    await sub.aclose()


class HTTPSession:
    """One legacy session: protocol state plus this process's tasks and waiters; a hub ``Peer``.

    With a ``bus`` the session is served by every replica sharing it (DESIGN.md §4): its connection is
    ``share``d, answers and cancellations for another replica go out on ``inbox_key``, and while
    handlers run or futures wait here (``busy``) one listener takes what other replicas hand on.
    """

    __slots__ = (
        "_listener", "_registry", "_saved", "_tasks", "_waiters", "attached", "checked", "closed", "conn", "created", "id",
        "last_seen", "subscriptions",
    )

    def __init__(
        self, session_id: str, conn: ServerConnection, registry: LiveSessions, *,
        subscriptions: Any = (), first: bool = False,
    ) -> None:
        # What every session of the registry shares (its bus, fanout, clock, hooks) is read from it:
        # an idle session keeps only its own state.
        self.id = session_id
        self.conn = conn
        self._registry = registry
        if registry.bus is not None:
            share(conn, first=first)
        self.created = self.last_seen = registry.clock()
        #: When the shared record was last read (``LiveSessions.get`` re-reads it after ``recheck``).
        self.checked = self.created
        #: Client connections open on this session's streams here (POST responses, GET streams).
        self.attached = 0
        self._tasks: dict[str | int, asyncio.Task[Any]] | None = None
        self._waiters: dict[str | int, asyncio.Future[Any]] | None = None
        #: Resource URIs the client subscribed to (persisted in the record; kept by server code).
        #: (A frozenset: the empty one is shared by every session that subscribed to nothing.)
        self.subscriptions: frozenset[str] = frozenset(subscriptions) or _NO_URIS
        self.closed = False
        #: The record last written to (or read from) a shared store; None without one.
        self._saved: SessionRecord | None = None
        #: The task reading ``inbox_key`` while the session is busy here.
        self._listener: asyncio.Task[None] | None = None

    @property
    def bus(self) -> Bus | None:
        return self._registry.bus

    @property
    def fanout(self) -> BusFanout | None:
        """How the hub reaches this session together with all others (None: one by one, ``notify``)."""
        return self._registry.fanout

    @property
    def tasks(self) -> dict[str | int, asyncio.Task[Any]]:
        """Handlers running here, by request id (made on first use: most sessions are idle)."""
        tasks = self._tasks
        if tasks is None:
            tasks = self._tasks = {}
        return tasks

    @property
    def waiters(self) -> dict[str | int, asyncio.Future[Any]]:
        """Futures for the client's answers to our requests, by request id."""
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = {}
        return waiters

    def record(self) -> SessionRecord:
        return record_of(self.id, self.conn, self.subscriptions)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> bool:
        """Send a notification to the client on the session's standalone GET stream (T-HTTP-19..22).

        It travels over the Bus to whichever process holds that stream, and is delivered on exactly
        one stream (T-HTTP-26). The stream outlives its connection: while the client is between
        two GETs the message is logged with an event id and replayed when it resumes with
        ``Last-Event-ID`` (T-HTTP-30/31). False when the session is closed or has no standalone
        stream (no GET since the handshake, or its last one ended long ago): nothing is delivered.
        """
        if self.closed or self.bus is None:
            return False
        return await self.bus.publish(session_key(self.id), {"message": notification(method, params)}) > 0

    def subscriptions_changed(self, uris: Iterable[str]) -> None:
        """The hub's hook after ``resources/subscribe`` / ``unsubscribe``: keep the set, persist it."""
        self.subscriptions = frozenset(uris) or _NO_URIS
        if not self.closed:
            self._registry._changed(self)

    def touch(self) -> None:
        self.last_seen = self._registry.clock()

    @property
    def busy(self) -> bool:
        """Handlers are running or waiting for the client: the session is not idle."""
        return bool(self._tasks or self._waiters)

    @property
    def listening(self) -> bool:
        """Whether this live part listens on ``inbox_key`` (busy, with a bus, not closed)."""
        return self._listener is not None

    def attach(self) -> None:
        """A client connection now reads one of the session's streams: the session is not idle."""
        self.attached += 1

    def detach(self) -> None:
        """That connection ended (answered, dropped, taken over): the idle time starts now."""
        self.attached -= 1
        self.touch()

    def expired(self, idle_timeout: float) -> bool:
        """No client connection open here and no request for ``idle_timeout`` seconds. Handlers still
        running count for nothing: a client that left them behind is gone (they are cancelled)."""
        return self.attached <= 0 and self._registry.clock() - self.last_seen > idle_timeout

    def track(self, request_id: str | int, task: asyncio.Task[Any]) -> None:
        """Remember a running handler so a ``notifications/cancelled`` POST can reach it, on any replica."""
        self.tasks[request_id] = task

        def done(_t: asyncio.Task[Any]) -> None:
            if self.tasks.get(request_id) is task:
                del self.tasks[request_id]
                self._listen_while_busy()

        task.add_done_callback(done)
        self._listen_while_busy()

    def cancel(self, request_id: str | int) -> None:
        """The client cancelled ``request_id`` (U-04): stop its handler here, or hand the cancellation to
        the replica running it (no Bus traffic when it runs here; ignored where nobody runs it)."""
        task = self.tasks.get(request_id)
        if task is not None:
            task.cancel()
        else:
            self._publish({"type": "cancel", "id": request_id})

    def expect(self, request_id: str | int) -> asyncio.Future[Any]:
        """A future for the client's answer to our request ``request_id``, whichever replica gets it."""
        if self.closed:
            raise ConnectionClosedError("the session is closed")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters[request_id] = fut
        fut.add_done_callback(functools.partial(self._waiter_done, request_id))
        self._listen_while_busy()
        return fut

    def _waiter_done(self, request_id: str | int, fut: asyncio.Future[Any]) -> None:
        # Answered, timed out or cancelled: ``asyncio.wait_for`` cancels the future on timeout.
        if self.waiters.get(request_id) is fut:
            del self.waiters[request_id]
        self._listen_while_busy()

    def deliver(self, ev: ResponseReceived) -> None:
        """The client's answer (a separate POST) to one of our requests, or to another replica's."""
        fut = self.waiters.pop(ev.id, None)
        if fut is not None:
            _settle(fut, ev.result, ev.error)
        elif ev.method == ASKED_ELSEWHERE:
            self._publish({"type": "response", "id": ev.id, "result": ev.result, "error": ev.error})

    def close(self) -> None:
        """Stop everything the session runs (DELETE, expiry, shutdown)."""
        if self.closed:
            return
        self.closed = True
        for task in list((self._tasks or {}).values()):
            task.cancel()
        for fut in (self._waiters or {}).values():
            if not fut.done():
                fut.set_exception(ConnectionClosedError("the session was terminated"))
        self._waiters = None
        self._listen_while_busy()  # stops listening

    # -- across replicas (DESIGN.md §4) ---------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        background = self._registry.background
        background.add(task)
        task.add_done_callback(background.discard)
        return task

    def _listen_while_busy(self) -> None:
        """Listen on the inbox exactly while there is something here to wait for."""
        if self.bus is None:
            return
        if self.busy and not self.closed:
            if self._listener is None:
                self._listener = self._spawn(self._listen(self.bus))
        elif self._listener is not None:
            listener, self._listener = self._listener, None
            listener.cancel()

    async def _listen(self, bus: Bus) -> None:
        sub = await bus.subscribe(inbox_key(self.id))
        try:
            while True:
                _key, message = await sub.get()
                self._from_inbox(message)
        except EOFError:
            pass  # the bus closed
        finally:
            if self._listener is asyncio.current_task():
                self._listener = None
            await sub.aclose()

    def _from_inbox(self, message: dict[str, Any]) -> None:
        """What another replica handed on: an answer, a cancellation, or the end of the session."""
        kind = message.get("type")
        id_ = message.get("id")
        if kind == "closed":
            self._registry._drop(self)
            return
        if not is_request_id(id_):
            return
        if kind == "response":
            fut = self.waiters.pop(id_, None)
            if fut is None:
                return  # not ours, or answered already: exactly once (U-05)
            self.conn.outgoing.forget(id_)
            _settle(fut, message.get("result"), message.get("error"))
        elif kind == "cancel":
            task = self.tasks.get(id_)
            if task is None:
                return  # not running here (finished, or on yet another replica)
            if id_ in self.conn.inflight:
                self.conn.inflight[id_] = True  # as the core does: nothing is sent for it (U-04)
            task.cancel()

    def _publish(self, message: dict[str, Any]) -> None:
        if self.bus is not None and not self.closed:
            self._spawn(self._send(self.bus, message))

    async def _send(self, bus: Bus, message: dict[str, Any]) -> None:
        try:
            if await bus.publish(inbox_key(self.id), message) == 0:
                log.debug("session %s: nobody waits for %s %r", self.id[:8], message.get("type"), message.get("id"))
        except Exception:
            log.warning("session %s: could not hand on a %s", self.id[:8], message.get("type"), exc_info=True)
