"""``Remote``: a remote MCP server (Streamable HTTP or HTTP+SSE) as an ``Application``, so that
``anyport connect URL`` serves it over stdio to hosts that only spawn commands.

The upstream side is anyport's ``Client``: transport and era detection (falling back from
Streamable HTTP to HTTP+SSE as the client does), ``--header``, a legacy session renewed when the
server forgot it (T-HTTP-40), resumption of a dropped stream with ``Last-Event-ID``, MRTR rounds of a
2026-07-28 server. The stdio side is anyport's protocol core and stdio runtime: the local host
gets the remote's serverInfo, capabilities and instructions, and speaks whichever era it speaks.
What the remote asks (elicitation, sampling, roots) is asked of the local host on the stream of
the request in flight; what it notifies goes to the local host; progress tokens are the local ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from anyport._exceptions import INTERNAL_ERROR, METHOD_NOT_FOUND, JSONRPCError, MCPError
from anyport.bridge._rounds import Parked, Rounds, Route
from anyport.protocol import (
    LEGACY_VERSIONS,
    LOG_LEVELS,
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

__all__ = ["Remote"]

log = logging.getLogger("anyport.connect")

_CAPABILITY_OF = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}


class Remote:
    """The remote server at ``url``, served to one local host (``anyport connect``)."""

    legacy_versions: tuple[str, ...] = LEGACY_VERSIONS
    modern_versions: tuple[str, ...] = MODERN_VERSIONS

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None, transport: str = "auto",
                 timeout: float = 300.0, auth: Any = None) -> None:
        from anyport.client import Client

        self._hub = NotificationHub()
        #: The local requests in flight, newest last: where the remote's questions are asked.
        self._inflight: list[Route] = []
        self.rounds = Rounds(KeyRing.from_env(), 600.0)
        self.client = Client(
            url, headers=headers, transport=transport, timeout=timeout,
            on_elicit=lambda p: self._ask("elicitation/create", p),
            on_sample=lambda p: self._ask("sampling/createMessage", p),
            on_list_roots=self._roots,
            on_notification=self._notified, on_log=lambda p: self._notified("notifications/message", p),
            client_info={"name": "anyport-connect", "version": "1"}, auth=auth,
        )

    async def start(self) -> None:
        await self.client.connect()
        # Every log message upstream (the local host's level is applied here): in the envelope of each request
        # to a 2026-07-28 remote (no request sent), by logging/setLevel to an older one, only if it
        # declares the logging capability (L-14, U-11: the official Python SDK's MCPServer declares none
        # and answers logging/setLevel with "Method not found", yet sends log messages, against U-10).
        if self.client.revision.modern or "logging" in self.client.server_capabilities:
            await self.client.set_logging_level("debug")

    async def aclose(self) -> None:
        self.rounds.close()
        await self.client.aclose()

    # -- Application -------------------------------------------------------------------------

    @property
    def hub(self) -> NotificationHub:
        return self._hub

    def open_connection(self, *, assume_initialized: Revision | None = None) -> ServerConnection:
        info = dict(self.client.server_info) or {"name": "remote"}
        info.setdefault("name", "remote")
        info.setdefault("version", "0")
        return ServerConnection(
            server_info=info, capabilities=dict(self.client.server_capabilities), instructions=self.client.instructions,
            legacy_versions=self.legacy_versions, modern_versions=self.modern_versions, assume_initialized=assume_initialized,
        )

    def inline_safe(self, req: IncomingRequest) -> bool:
        return False

    def reply_now(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:  # pragma: no cover - never inline
        raise RuntimeError("connect answers no request inline")

    def required_scopes(self, method: str, params: dict[str, Any]) -> tuple[str, ...]:
        return ()

    def param_headers(self, name: str) -> list[ParamHeader] | str | None:
        return None

    def client_notification(self, session_id: str | None, method: str, params: dict[str, Any]) -> None:
        """Nothing goes upstream: the client upstream declares ``roots`` without ``listChanged``, and a
        remote's ``roots/list`` is asked of the local host on its request in flight, so the remote
        gets the host's current roots anyway (as the bridge's shared children do)."""

    async def reply(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        try:
            if req.revision.modern and req.params.get("requestState") is not None:
                parked = self.rounds.resume(req)  # a retry answering the remote's questions
                parked.route.outlet = outlet
                parked.route.req = req
                return await self._drive(parked.route, parked.flight)
            route = Route(outlet, req, None)
            flight = asyncio.get_running_loop().create_task(self._upstream(route))
            if req.revision.modern:
                return await self._drive(route, flight)
            try:
                return self._finish(route.req, await asyncio.shield(flight))
            except asyncio.CancelledError:
                flight.cancel()  # the host cancelled: so does the request upstream (U-01)
                raise
        except JSONRPCError as exc:
            return error_message(req.id, exc.to_error())
        except MCPError as exc:
            return error_message(req.id, {"code": INTERNAL_ERROR, "message": f"The remote server failed: {exc}"})

    async def _upstream(self, route: Route) -> dict[str, Any]:
        """The request upstream (with the remote's MRTR rounds, answered by ``_ask``); its result."""
        req = route.req
        params = dict(req.params)
        meta = params.get("_meta")
        kept = {k: v for k, v in meta.items() if not k.startswith("io.modelcontextprotocol/") and k != "progressToken"} if isinstance(meta, dict) else {}
        if kept:
            params["_meta"] = kept
        else:
            params.pop("_meta", None)
        for key in ("requestState", "inputResponses"):
            params.pop(key, None)
        token = req.progress_token

        async def progress(value: float, total: float | None, message: str | None) -> None:
            note: dict[str, Any] = {"progressToken": token, "progress": value}
            if total is not None:
                note["total"] = total
            if message is not None:
                note["message"] = message
            await route.outlet.notify("notifications/progress", note)

        self._inflight.append(route)
        try:
            return await self.client.request(req.method, params, on_progress=progress if token is not None else None)
        finally:
            self._inflight.remove(route)

    async def _drive(self, route: Route, flight: asyncio.Task[dict[str, Any]]) -> dict[str, Any]:
        """A 2026-07-28 host: the answer, or an MRTR round for what the remote asked (M-14..M-18)."""
        asked = asyncio.ensure_future(route.asked.wait())
        try:
            await asyncio.wait({flight, asked}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            flight.cancel()
            raise
        finally:
            asked.cancel()
        if flight.done():
            return self._finish(route.req, flight.result())
        return result_message(route.req.id, self.rounds.park(Parked(None, route, flight, False)))

    def _finish(self, req: IncomingRequest, result: dict[str, Any]) -> dict[str, Any]:
        if req.revision.result_type:
            result.setdefault("resultType", "complete")
            meta_out = result.get("_meta")
            stamp = {META_SERVER_INFO: {"name": self.client.server_info.get("name", "remote"),
                                        "version": self.client.server_info.get("version", "0")}}
            result["_meta"] = {**meta_out, **stamp} if isinstance(meta_out, dict) else stamp
        else:  # a legacy host of a 2026-07-28 remote: no fields its revision does not have
            for key in ("resultType", "ttlMs", "cacheScope"):
                result.pop(key, None)
            meta_out = result.get("_meta")
            if isinstance(meta_out, dict) and META_SERVER_INFO in meta_out:  # M-07's stamp is 2026-07-28's
                meta_out = {k: v for k, v in meta_out.items() if k != META_SERVER_INFO}
                if meta_out:
                    result["_meta"] = meta_out
                else:
                    del result["_meta"]
        return result_message(req.id, result)

    # -- what the remote says ----------------------------------------------------------------

    async def _ask(self, method: str, params: dict[str, Any]) -> Any:
        if not self._inflight:
            raise JSONRPCError(f"{method}: no request of the local client is in flight to ask it on", code=INTERNAL_ERROR)
        route = self._inflight[-1]
        capability = _CAPABILITY_OF.get(method)
        if capability is not None and capability not in route.req.client_capabilities:
            raise JSONRPCError(f"{method}: the local client did not declare the {capability!r} capability", code=METHOD_NOT_FOUND)
        if route.req.revision.modern:
            return await route.ask(method, params)  # an MRTR round (``_drive``)
        return await route.outlet.request(method, params)

    async def _roots(self) -> list[Any]:
        result = await self._ask("roots/list", {})
        roots = result.get("roots") if isinstance(result, dict) else None
        return roots if isinstance(roots, list) else []

    async def _notified(self, method: str, params: dict[str, Any]) -> None:
        if method == "notifications/message" and self._inflight and self._inflight[-1].req.revision.modern:
            route = self._inflight[-1]
            level, wanted = params.get("level"), route.req.log_level
            if wanted is not None and isinstance(level, str) and LOG_LEVELS.get(level, -1) >= LOG_LEVELS[wanted]:
                await route.outlet.notify(method, params)  # M-19: only at or above the level asked for
            return
        await self._hub.publish(method, params)
