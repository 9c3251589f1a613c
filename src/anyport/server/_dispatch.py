"""``_Dispatch``: running an admitted request through the method table of ``Server``.

The dispatcher is transport-free: ``handle(request, outlet)`` takes a request that the protocol
core already admitted and returns the result object (or raises a ``JSONRPCError``); ``reply``
wraps it in the JSON-RPC response. ``inline_safe`` / ``answer_now`` / ``reply_now`` are the same
for a request whose handler never waits, run as one plain call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar, cast

from anyport._exceptions import InternalError, JSONRPCError, MethodNotFoundError
from anyport.protocol import IncomingRequest, clip, error_message, result_message
from anyport.server._context import Outlet
from anyport.server._entries import Handler
from anyport.server._tools import _Tools

_log = logging.getLogger("anyport.server")

T = TypeVar("T")

#: Requests whose handlers are ours and never wait (see ``Server.inline_safe``).
_INLINE_METHODS = frozenset({"tools/list", "resources/list", "resources/templates/list", "prompts/list"})
_CACHEABLE = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"})


class _Dispatch(_Tools):
    """The method table's dispatcher. Built on ``_Tools``: ``answer_now`` runs a ``tools/call`` of a
    tool that never waits straight through the tool steps, without the ``_call_tool`` coroutine."""

    _handlers: dict[str, Handler]
    cache_ttl_ms: int
    cache_scope: str
    _modern_info: dict[str, Any]

    def inline_safe(self, req: IncomingRequest) -> bool:
        """True when this request's handler never waits, so a runtime may run it without a task.

        The runtimes run such a request inline (``anyport.runtime._inline``): no task, no extra turn of
        the event loop. That is the lists and a tool that never awaits (a plain function, or an
        ``async def`` with no ``await`` / ``async with`` / ``async for`` in its body). Anything
        else gets its own task, so ``asyncio.current_task()``, ``asyncio.timeout`` and cancel
        scopes behave in handlers as they would anywhere.
        """
        method = req.method
        if method == "tools/call":
            name = req.params.get("name")
            tool = self._tools.get(name) if isinstance(name, str) else None
            if tool is None:
                return True  # answered with an error at once
            if not tool.inline:
                return False
            return tool.task_support == "forbidden" or not (
                req.revision.tasks_extension or isinstance(req.params.get("task"), dict)
            )
        return method in _INLINE_METHODS

    async def handle(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """Run the handler for an admitted request; returns the result object."""
        handler = self._handlers.get(req.method)
        if handler is None:
            raise MethodNotFoundError(f"Method not found: {clip(req.method)}")
        return self._finish_result(req, await handler(req, outlet))

    def answer_now(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """``handle`` for a request that ``inline_safe`` admits, as one plain call: its handler never
        waits, so it runs to the end here, without a chain of coroutines or a task. Raises what
        ``handle`` raises. Runtimes call it in a copy of their context, as a task would run."""
        if req.method == "tools/call":
            prepared = self._prepare_tool_call(req)
            if isinstance(prepared, dict):
                return self._finish_result(req, prepared)
            tool, kwargs, answers = prepared
            if self._mode_of(req, tool) != "sync":  # raises for a task the tool does not allow (F-TASK-01)
                raise InternalError(f"Internal error: {tool.name} cannot run inline as a task")
            try:
                value = self._call_fn(tool, kwargs, req, outlet, answers, None)
                if tool.is_async:
                    value = _drive(value)
            except Exception as exc:
                return self._finish_result(req, self._tool_failure(req, tool, exc))
            return self._finish_result(req, self._tool_result(tool, value, req.revision))
        handler = self._handlers.get(req.method)
        if handler is None:
            raise MethodNotFoundError(f"Method not found: {clip(req.method)}")
        return self._finish_result(req, _drive(handler(req, outlet)))

    async def reply(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """The JSON-RPC response to an admitted request: ``handle``'s result, or the error response."""
        try:
            return result_message(req.id, await self.handle(req, outlet))
        except Exception as exc:
            return _failure_message(req, exc)

    def reply_now(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """``reply`` for a request that ``inline_safe`` admits, by ``answer_now``."""
        try:
            return result_message(req.id, self.answer_now(req, outlet))
        except Exception as exc:
            return _failure_message(req, exc)

    def _finish_result(self, req: IncomingRequest, result: dict[str, Any]) -> dict[str, Any]:
        if req.revision.result_type:
            if "resultType" not in result:
                result["resultType"] = "complete"
            if result["resultType"] == "complete" and req.method in _CACHEABLE:
                result.setdefault("ttlMs", self.cache_ttl_ms)  # U-18
                result.setdefault("cacheScope", self.cache_scope)
            meta = result.get("_meta")
            result["_meta"] = {**meta, **self._modern_info} if isinstance(meta, dict) else self._modern_info  # M-07
        return result


def _failure_message(req: IncomingRequest, exc: Exception) -> dict[str, Any]:
    """The error response of a request whose handler raised ``exc``: a ``JSONRPCError`` as it is,
    anything else logged and answered as an internal error."""
    if not isinstance(exc, JSONRPCError):
        _log.error("unhandled error in %s", req.method, exc_info=exc)
        exc = InternalError("Internal error")
    return error_message(req.id, exc.to_error())


def _drive(awaitable: Awaitable[T]) -> T:
    """The value of a coroutine that never waits, run to its end by hand."""
    coro = cast("Coroutine[Any, Any, T]", awaitable)  # our handlers are coroutines
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise InternalError("Internal error: an inline handler waited")
