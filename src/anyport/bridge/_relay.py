"""What children say, routed to the caller it is for (``Bridge`` is built on ``_Relay``).

- ``notifications/progress``: to the caller of the call whose (rewritten) token it names, with the
  caller's own token back;
- list changes and resource updates: to the session owning the child (one child per session), to
  every session and listener (shared children: the same server for all), or to the subscribers of
  the URI;
- anything else (logs, ...): to the caller when exactly one call is in flight on the child, else to
  the owning session; on a shared child with several calls, nothing names the caller: dropped;
- the child's own requests (sampling, elicitation, roots): asked of the caller of the call in
  flight (a server->client request, or an MRTR round for a 2026-07-28 caller); on a shared child
  with several calls in flight they are refused, never risked on the wrong caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from anyport._exceptions import INTERNAL_ERROR, METHOD_NOT_FOUND, InvalidParamsError, JSONRPCError
from anyport.bridge._child import Child
from anyport.bridge._pool import Pool
from anyport.bridge._rounds import Route
from anyport.protocol import LOG_LEVELS, META_SUBSCRIPTION_ID, IncomingRequest
from anyport.runtime import NotificationHub, Outlet

__all__ = ["NOTIFY_TIMEOUT", "_Relay"]

log = logging.getLogger("anyport.bridge")

#: Seconds a caller's stream may take to accept one notification before it is dropped for that caller.
NOTIFY_TIMEOUT = 5.0

_CAPABILITY_OF = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
_LIST_CHANGED = frozenset(
    {"notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"}
)


class _Relay:
    """The bridge's routing of what children send, and ``subscriptions/listen``."""

    _hub: NotificationHub
    pool: Pool

    def _routes(self, child: Child) -> list[Route]:
        return [c.owner for c in sorted(child.calls.values(), key=lambda c: c.child_id or 0) if isinstance(c.owner, Route)]

    async def _child_notify(self, child: Child, method: str, params: dict[str, Any]) -> None:
        if method == "notifications/progress":
            call = child.by_token.get(params.get("progressToken"))  # type: ignore[arg-type]
            if call is not None and isinstance(call.owner, Route):
                await _bounded(call.owner.outlet.notify(method, {**params, "progressToken": call.original_token}))
            return
        if method in _LIST_CHANGED or method == "notifications/resources/updated":
            if child.session is not None:
                await self._hub.publish(method, params, peers=[child.session])
            elif method == "notifications/resources/updated" and isinstance(params.get("uri"), str):
                await self._hub.resource_updated(params["uri"])
            elif method in _LIST_CHANGED and child in self.pool.shared:
                await self._hub.publish(method, params)
            return
        routes = self._routes(child)
        if len(routes) == 1:
            route = routes[0]
            if method == "notifications/message" and not _wants_log(route.req, params):
                return
            await _bounded(route.outlet.notify(method, params))
        elif child.session is not None:
            if method == "notifications/message" and not _at_least(params, self._session_level(child.session)):
                return  # below the session's logging/setLevel (U-11)
            await self._hub.publish(method, params, peers=[child.session])
        # else: several callers share this child and nothing names the one it is for: dropped

    def _session_level(self, session: str) -> str | None:
        """The log level a legacy session asked for (``logging/setLevel``); None: not known."""
        return None

    async def _child_ask(self, child: Child, method: str, params: dict[str, Any]) -> Any:
        if method == "ping":
            return {}  # L-19: the bridge is the child's client, and it is alive
        routes = self._routes(child)
        if child.session is None and len(routes) != 1:
            raise JSONRPCError(
                f"{method}: the bridge cannot tell which of {len(routes)} requests this is for (shared child)",
                code=INTERNAL_ERROR,
            )
        if not routes:
            raise JSONRPCError(f"{method}: no request of the client is in flight to ask it on", code=INTERNAL_ERROR)
        return await self._ask_caller(routes[-1], method, params)

    async def _ask_caller(self, route: Route, method: str, params: dict[str, Any]) -> Any:
        capability = _CAPABILITY_OF.get(method)
        if capability is not None and capability not in route.req.client_capabilities:
            raise JSONRPCError(f"{method}: the client did not declare the {capability!r} capability", code=METHOD_NOT_FOUND)
        if route.req.revision.modern:
            return await route.ask(method, params)  # an MRTR round (``_drive``)
        return await route.outlet.request(method, params)

    async def _listen(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """``subscriptions/listen`` (M-20..M-23): list changes of shared children."""
        wanted = req.params.get("notifications") or {}
        if not isinstance(wanted, dict):
            raise InvalidParamsError("subscriptions/listen notifications must be an object")
        honoured: dict[str, Any] = {k: True for k in ("toolsListChanged", "promptsListChanged", "resourcesListChanged") if wanted.get(k) is True}
        uris = wanted.get("resourceSubscriptions")
        if isinstance(uris, list) and uris and all(isinstance(u, str) for u in uris):
            honoured["resourceSubscriptions"] = list(dict.fromkeys(uris))
        tag = {META_SUBSCRIPTION_ID: req.id}
        listener = self._hub.add_listener(honoured)
        try:
            await outlet.notify("notifications/subscriptions/acknowledged", {"_meta": dict(tag), "notifications": honoured})
            while (item := await listener.queue.get()) is not None:
                method, params = item
                meta = params.get("_meta")
                params["_meta"] = {**meta, **tag} if isinstance(meta, dict) else dict(tag)
                await outlet.notify(method, params)
        finally:
            self._hub.remove_listener(listener)
        return {"_meta": dict(tag)}


async def _bounded(sending: Awaitable[None]) -> None:
    """A notification to one caller, given up after ``NOTIFY_TIMEOUT`` seconds: the child's output is
    read in order, and a caller that does not read its stream must not hold up the others."""
    try:
        await asyncio.wait_for(sending, NOTIFY_TIMEOUT)
    except TimeoutError:
        log.info("a caller did not take a notification within %g s: dropped", NOTIFY_TIMEOUT)


def _wants_log(req: IncomingRequest, params: dict[str, Any]) -> bool:
    """Log messages at or above the level the caller asked for: its ``_meta`` level (M-19: none
    without one on 2026-07-28), or its session's ``logging/setLevel`` (U-11)."""
    if req.log_level is None:
        return not req.revision.modern
    return _at_least(params, req.log_level)


def _at_least(params: dict[str, Any], floor: str | None) -> bool:
    """A log message's level is ``floor`` or above (any level when ``floor`` is None)."""
    if floor is None:
        return True
    level = params.get("level")
    return isinstance(level, str) and LOG_LEVELS.get(level, -1) >= LOG_LEVELS.get(floor, 0)
