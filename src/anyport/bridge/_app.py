"""``Bridge``: a stdio MCP server, any language, as an anyport ``Application``.

anyport's protocol core answers ``initialize``, ``ping``, ``server/discover`` and every protocol
error itself, with what the first child said about itself (its serverInfo, capabilities and
instructions); each admitted request is forwarded to a child (``reply``), and what the child says
on the way (progress, logs, its own requests to the client) goes back through the request's
``Outlet``. Both eras reach every child:

- a legacy caller on a legacy child: the child's requests (sampling, elicitation, roots) become
  server->client requests on the caller's stream;
- a 2026-07-28 caller on a legacy child: the bridge keeps the child's initialized session and turns
  each of its requests into an MRTR round (an ``input_required`` result whose sealed
  ``requestState`` names the call parked in the bridge); the retry's ``inputResponses`` answer
  the child, and the call goes on (``_rounds``);
- a legacy caller on a 2026-07-28 child: the child's ``input_required`` results are asked of the
  caller as server->client requests, and the request is retried with the answers.

Nothing a child says about one caller reaches another: ids and progress tokens are the bridge's
own on every child (``Child``), notifications go to the caller of the call they name, or to the
session that owns the child; with shared children, what cannot be attributed is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from anyport._exceptions import INTERNAL_ERROR, JSONRPCError
from anyport.bridge._child import BRIDGE_INFO, Call, Child, ChildGone
from anyport.bridge._pool import BridgeOptions, Pool
from anyport.bridge._relay import _Relay
from anyport.bridge._rounds import Parked, Rounds, Route, parked_id
from anyport.protocol import (
    LATEST_LEGACY_VERSION,
    LATEST_VERSION,
    LEGACY_VERSIONS,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    META_SERVER_INFO,
    MODERN_VERSIONS,
    IncomingRequest,
    KeyRing,
    ParamHeader,
    Revision,
    ServerConnection,
    error_message,
    result_message,
)
from anyport.runtime import NotificationHub, Outlet

__all__ = ["PASSED_HEADERS", "Bridge"]

log = logging.getLogger("anyport.bridge")

#: The ``pass_headers`` of the HTTP request being served (set by ``BridgeASGI``; tasks inherit it).
PASSED_HEADERS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("anyport_bridge_headers", default=None)

_CACHEABLE = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"})
#: Rounds of input a legacy caller is asked for one request to a 2026-07-28 child, at most.
_MAX_ROUNDS = 16


class _Slot:
    """The child of one legacy session (one child per session)."""

    __slots__ = ("child", "last_used", "level", "lock")

    def __init__(self) -> None:
        self.child: Child | None = None
        self.lock = asyncio.Lock()
        self.last_used = time.monotonic()
        #: The session's log level as its child was last told (``debug``: the core's default, never sent).
        self.level: str | None = "debug"


class Bridge(_Relay):
    """A stdio MCP server served through anyport (``anyport bridge -- COMMAND ARGS...``)."""

    legacy_versions: tuple[str, ...] = LEGACY_VERSIONS
    modern_versions: tuple[str, ...] = MODERN_VERSIONS

    def __init__(self, options: BridgeOptions, *, key_ring: KeyRing | None = None, input_ttl: float = 600.0) -> None:
        self.options = options
        self._hub = NotificationHub()
        self._hub.on_session_end(self._session_ended)
        self.pool = Pool(options, on_notify=self._child_notify, on_ask=self._child_ask)
        self.rounds = Rounds(key_ring or KeyRing.from_env(), input_ttl)
        self.slots: dict[str, _Slot] = {}
        self.info: dict[str, Any] = {"name": "anyport-bridge", "version": "0"}
        self.capabilities: dict[str, Any] = {}
        self.instructions: str | None = None
        #: Set by the HTTP front (``BridgeASGI``): ends an HTTP session whose child went idle.
        self.end_session: Callable[[str], Awaitable[None]] | None = None
        #: Set by replica affinity: records that a parked MRTR call is here, before the round is answered.
        self.on_parked: Callable[[str], Awaitable[None]] | None = None
        self.started = False
        self._reaper: asyncio.Task[None] | None = None
        #: Notifications of clients on their way to children.
        self._sending: set[asyncio.Task[None]] = set()

    # -- Application -------------------------------------------------------------------------

    @property
    def hub(self) -> NotificationHub:
        return self._hub

    def open_connection(self, *, assume_initialized: Revision | None = None) -> ServerConnection:
        return ServerConnection(
            server_info=self.info, capabilities=self.capabilities, instructions=self.instructions,
            legacy_versions=self.legacy_versions, modern_versions=self.modern_versions,
            discover_extra={"ttlMs": 0, "cacheScope": "private"}, assume_initialized=assume_initialized,
        )

    def inline_safe(self, req: IncomingRequest) -> bool:
        return False  # every request waits for a child

    def reply_now(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:  # pragma: no cover - never inline
        raise RuntimeError("the bridge answers no request inline")

    def required_scopes(self, method: str, params: dict[str, Any]) -> tuple[str, ...]:
        return ()

    def param_headers(self, name: str) -> list[ParamHeader] | str | None:
        return None  # the child's x-mcp-header declarations are not checked by the bridge

    def client_notification(self, session_id: str | None, method: str, params: dict[str, Any]) -> None:
        """``notifications/roots/list_changed`` of a legacy session goes to the session's own child.
        Shared children serve many clients: a change of one client's roots is not theirs to hear
        (they ask ``roots/list`` of the caller in flight, so they get the current roots anyway)."""
        if method != "notifications/roots/list_changed" or session_id is None:
            return
        slot = self.slots.get(session_id)
        child = slot.child if slot is not None else None
        if child is not None and child.alive and child.session == session_id:
            task = asyncio.get_running_loop().create_task(child.notify(method, params))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def _session_level(self, session: str) -> str | None:
        slot = self.slots.get(session)
        return slot.level if slot is not None else None

    async def reply(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        try:
            return await self._forward(req, outlet)
        except JSONRPCError as exc:
            return error_message(req.id, exc.to_error())
        except ChildGone as exc:
            return error_message(req.id, {"code": INTERNAL_ERROR, "message": f"The stdio server failed during {req.method}: {exc}"})
        except TimeoutError:
            return error_message(req.id, {
                "code": INTERNAL_ERROR,
                "message": f"The stdio server did not answer {req.method} within {self.options.call_timeout:g} s",
            })
        except Exception:  # a bug of ours: an answer all the same, never a caller left waiting
            log.exception("internal error while forwarding %s", req.method)
            return error_message(req.id, {"code": INTERNAL_ERROR, "message": "Internal error"})

    # -- life ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the first child and learn what it serves; raises ``ChildStartError`` when it cannot."""
        if self.started:
            return
        child = await self.pool.probe()
        server = child.server
        info = server.get("serverInfo")
        if not isinstance(info, dict):
            meta = server.get("_meta")
            info = meta.get(META_SERVER_INFO) if isinstance(meta, dict) else None
        if isinstance(info, dict) and isinstance(info.get("name"), str):
            self.info = {"version": "0", **info}
        caps = server.get("capabilities")
        self.capabilities = dict(caps) if isinstance(caps, dict) else {}
        instructions = server.get("instructions")
        self.instructions = instructions if isinstance(instructions, str) else None
        if self.options.shared or self.pool.era == "modern":
            self.pool.shared.append(child)
        else:
            await self.pool.stop(child)
        self.started = True
        self.pool.refill()
        self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())
        log.info("bridging %s (%s child, %s)", self.info.get("name"), self.pool.era,
                 "shared children" if self.shared else "one child per session")

    @property
    def shared(self) -> bool:
        return self.options.shared or self.pool.era == "modern"

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        self.rounds.close()
        await self.pool.aclose()
        self.slots.clear()

    def readiness(self) -> tuple[bool, str]:
        """Whether children can be started now, and why not (``/readyz``)."""
        if not self.started:
            return False, "the first child has not started"
        if self.pool.closed:
            return False, "shutting down"
        if self.pool.failures and self.pool.backoff_left() > 0:
            return False, f"the stdio server failed to start {self.pool.failures} time(s): {self.pool.last_failure}"
        if self.pool.exhausted():
            return False, f"all {self.options.max_children} children are busy"
        return True, "ready"

    def _session_ended(self, session_id: str) -> None:
        slot = self.slots.pop(session_id, None)
        if slot is not None and slot.child is not None:
            log.debug("session %s ended: stopping child %d", session_id[:8], slot.child.pid)
            self.pool.stop_soon(slot.child)

    async def _reap_idle(self) -> None:
        """Stop the child of a session idle for ``idle_timeout`` (open GET streams do not count),
        and end that session; drop MRTR calls nobody came back for."""
        period = max(0.05, min(self.options.idle_timeout / 4, 5.0))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for sid, slot in list(self.slots.items()):
                child = slot.child
                busy = child is not None and (child.calls or self.rounds.holds(child))
                last = max(slot.last_used, child.last_used if child is not None else 0.0)  # a long call's end counts
                if not busy and now - last >= self.options.idle_timeout:
                    self.slots.pop(sid, None)
                    if child is not None:
                        log.info("child %d of session %s idle for %.0f s: stopped", child.pid, sid[:8], now - slot.last_used)
                        await self.pool.stop(child)
                    if self.end_session is not None:
                        with contextlib.suppress(Exception):
                            await self.end_session(sid)
            for parked in self.rounds.expired():
                await self._drop_parked(parked)
            if self.shared:  # shared children above the minimum, idle for long, are stopped
                spare = len(self.pool.shared) - self.options.min_children
                for child in sorted(self.pool.shared, key=lambda c: c.last_used)[:max(0, spare)]:
                    if not child.calls and not self.rounds.holds(child) and now - child.last_used >= self.options.idle_timeout:
                        await self.pool.stop(child)

    async def _drop_parked(self, parked: Parked) -> None:
        for _ask, fut in parked.route.questions.values():
            if not fut.done():  # the child's question gets an answer: the client never came back
                fut.set_exception(JSONRPCError("the client did not answer in time", code=INTERNAL_ERROR))
                fut.exception()
        parked.flight.cancel()
        if parked.disposable and parked.child is not None:
            await self.pool.stop(parked.child)

    # -- forwarding ----------------------------------------------------------------------------

    async def _forward(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        if req.method == "subscriptions/listen":
            return result_message(req.id, await self._listen(req, outlet))
        if req.revision.modern and not self.pool.era == "modern" and req.params.get("requestState") is not None:
            parked = self.rounds.resume(req)
            child = parked.child
            assert child is not None  # the bridge parks calls of its children only
            parked.route.outlet = outlet
            parked.route.req = req
            try:
                return await self._drive(child, parked.route, parked.flight, parked.disposable)
            finally:
                await self._settle(child, parked.disposable)
        session = getattr(outlet, "session_id", None)
        disposable = False
        if self.shared:
            child = await self.pool.shared_child()
        elif not req.revision.modern and isinstance(session, str):
            child = await self._session_child(session, req)
        else:  # a request of its own (2026-07-28, or a legacy request without a session)
            version = LATEST_LEGACY_VERSION if req.revision.modern else req.revision.version
            child = await self.pool.start(version, req.client_capabilities, req.client_info, PASSED_HEADERS.get())
            disposable = True
        route = Route(outlet, req, session if isinstance(session, str) else None)
        try:
            if req.revision.modern and child.era == "legacy":
                flight = asyncio.get_running_loop().create_task(self._call(child, route, _params_for(child, req)))
                return await self._drive(child, route, flight, disposable)
            msg = await self._call_with_rounds(child, route, req)
            return self._finish(req, msg, child)
        finally:
            await self._settle(child, disposable)

    async def _settle(self, child: Child, disposable: bool) -> None:
        """A request is done with ``child``: a child of its own is stopped (unless a call of it is
        parked for an MRTR round), a shared one has room for another request."""
        if disposable and not self.rounds.holds(child):
            self.pool.stop_soon(child)  # in the background: the answer does not wait for the exit
        elif not disposable:
            await self.pool.released()

    async def _session_child(self, session: str, req: IncomingRequest) -> Child:
        slot = self.slots.get(session)
        if slot is None:
            slot = self.slots[session] = _Slot()
        slot.last_used = time.monotonic()
        async with slot.lock:
            if slot.child is None or not slot.child.alive:
                if slot.child is not None:
                    log.info("session %s: its child ended (%s); starting another", session[:8], slot.child.describe_end())
                slot.child = await self.pool.start(req.revision.version, req.client_capabilities, req.client_info, PASSED_HEADERS.get())
                slot.child.session = session
                slot.level = "debug"
                if session not in self.slots:  # the session ended while its child started
                    self.pool.stop_soon(slot.child)
            if req.log_level != slot.level:  # logging/setLevel (answered by the core) since the child last heard
                await self._set_level(slot.child, req.log_level)
                slot.level = req.log_level
            return slot.child

    async def _set_level(self, child: Child, level: str | None) -> None:
        """The session's log level (``logging/setLevel``, answered by the core) given to its child,
        before the first request that follows the change (U-11); the bridge also drops the child's
        log messages below it (``_wants_log``), so none below it ever reaches the client."""
        caps = child.server.get("capabilities")
        if level is None or not (isinstance(caps, dict) and "logging" in caps):
            return
        with contextlib.suppress(ChildGone, TimeoutError, JSONRPCError):
            await child.request("logging/setLevel", {"level": level}, Call(None, None), self.options.start_timeout)

    async def _call(self, child: Child, route: Route, params: dict[str, Any]) -> dict[str, Any]:
        call = Call(route, route.req.progress_token)
        if call.original_token is not None:
            meta = dict(params.get("_meta") or {})
            meta["progressToken"] = child.new_token(call)
            params = {**params, "_meta": meta}
        msg = await child.request(route.req.method, params, call, self.options.call_timeout)
        if route.req.method == "resources/subscribe" and "result" in msg and route.session is not None:
            uri = route.req.params.get("uri")
            if isinstance(uri, str):
                self._hub.subscribe(route.session, uri)
        return msg

    async def _call_with_rounds(self, child: Child, route: Route, req: IncomingRequest) -> dict[str, Any]:
        """One request, and (a 2026-07-28 child answering a legacy caller) its MRTR rounds, each
        asked of the caller as server->client requests."""
        params = _params_for(child, req)
        for _ in range(_MAX_ROUNDS):
            msg = await self._call(child, route, params)
            result = msg.get("result")
            if req.revision.modern or not isinstance(result, dict) or result.get("resultType") != "input_required":
                return msg
            asks = result.get("inputRequests")
            answers: dict[str, Any] = {}
            for key, ask in (asks if isinstance(asks, dict) else {}).items():
                if isinstance(ask, dict) and isinstance(ask.get("method"), str):
                    answers[key] = await self._ask_caller(route, ask["method"], ask.get("params") or {})
            params = {**params, "inputResponses": answers}
            if "requestState" in result:
                params["requestState"] = result["requestState"]
            else:
                params.pop("requestState", None)
        raise JSONRPCError(f"{req.method}: the stdio server asked for input more than {_MAX_ROUNDS} times", code=INTERNAL_ERROR)

    async def _drive(self, child: Child, route: Route, flight: asyncio.Task[dict[str, Any]], disposable: bool) -> dict[str, Any]:
        """A 2026-07-28 caller on a legacy child: the answer, or an MRTR round for what the child asked."""
        req = route.req
        asked = asyncio.ensure_future(route.asked.wait())
        try:
            await asyncio.wait({flight, asked}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            flight.cancel()  # T-H26-11: the caller closed the stream
            raise
        finally:
            asked.cancel()
        if flight.done():
            return self._finish(req, flight.result(), child)
        result = self.rounds.park(Parked(child, route, flight, disposable))
        if self.on_parked is not None:  # replicas: the retry must find this replica (``_affinity``)
            await self.on_parked(str(parked_id(result["requestState"])))
        return result_message(req.id, result)

    def _finish(self, req: IncomingRequest, msg: dict[str, Any], child: Child) -> dict[str, Any]:
        if "error" in msg:
            error = msg["error"]
            return error_message(req.id, error if isinstance(error, dict) else {"code": INTERNAL_ERROR, "message": "Internal error"})
        result = msg.get("result")
        if not isinstance(result, dict):
            result = {}
        if req.revision.result_type:
            result.setdefault("resultType", "complete")
            if result["resultType"] == "complete" and req.method in _CACHEABLE:
                result.setdefault("ttlMs", 0)  # U-18
                result.setdefault("cacheScope", "public" if self.shared else "private")
            meta = result.get("_meta")
            info = {META_SERVER_INFO: {"name": self.info["name"], "version": self.info["version"]}}
            result["_meta"] = {**meta, **info} if isinstance(meta, dict) else info  # M-07
        elif child.era == "modern":
            for key in ("resultType", "ttlMs", "cacheScope"):
                result.pop(key, None)
        return result_message(req.id, result)


def _params_for(child: Child, req: IncomingRequest) -> dict[str, Any]:
    """The caller's params as the child must see them: no caller's era envelope or progress
    token; a 2026-07-28 child gets its own ``_meta`` (M-02)."""
    params = dict(req.params)
    meta = params.get("_meta")
    kept = {k: v for k, v in meta.items() if not k.startswith("io.modelcontextprotocol/") and k != "progressToken"} if isinstance(meta, dict) else {}
    if child.era == "modern":
        kept.update({
            META_PROTOCOL_VERSION: LATEST_VERSION, META_CLIENT_CAPABILITIES: req.client_capabilities,
            META_CLIENT_INFO: req.client_info or BRIDGE_INFO,
        })
        if req.log_level is not None:
            kept[META_LOG_LEVEL] = req.log_level
    elif req.revision.modern:
        params.pop("requestState", None)
        params.pop("inputResponses", None)
    if kept:
        params["_meta"] = kept
    else:
        params.pop("_meta", None)
    return params
