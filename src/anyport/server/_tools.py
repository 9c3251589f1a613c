"""``_Tools``: the ``tools/list`` and ``tools/call`` handlers of ``Server``.

A call is validated (``_prepare_tool_call``), given a mode (sync, a task now, or inline until
``ctx.detach()``), run (``_run_tool``) and shaped into a ``CallToolResult`` (``_tool_result``,
``_tool_failure``). ``_Dispatch.answer_now`` runs the same steps inline for a tool that never waits.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pydantic

from anyport._exceptions import InvalidParamsError, JSONRPCError, MethodNotFoundError, ToolError
from anyport.protocol import IncomingRequest, ParamHeader, Revision, brief, dumps, scan_param_headers
from anyport.server._content import blocks_of, to_content_blocks
from anyport.server._context import Context, InputRequired, Outlet
from anyport.server._entries import ToolResult, _page, _Tool, _validation_text
from anyport.server._mrtr import _Mrtr
from anyport.server._scopes import _Scopes
from anyport.server._tasks import TaskHandle, TaskRunner, client_has_tasks_extension, missing_tasks_extension

if TYPE_CHECKING:
    from anyport.state._tasks import TaskRecord

_NO_ANSWERS: Mapping[str, Any] = types.MappingProxyType({})


class _Tools(_Mrtr, _Scopes):
    """Listing and calling tools, with the task modes of a call."""

    _tools: dict[str, _Tool]
    #: tool name -> (its input schema, its x-mcp-header declarations), see ``param_headers``.
    _param_decls: dict[str, tuple[dict[str, Any], list[ParamHeader] | str]]
    tasks: TaskRunner
    page_size: int | None

    def tool_input_schema(self, name: str) -> dict[str, Any] | None:
        """The published ``inputSchema`` of a tool, or None."""
        tool = self._tools.get(name)
        schema = tool.meta.get("inputSchema") if tool is not None else None
        return schema if isinstance(schema, dict) else None

    def param_headers(self, name: str) -> list[ParamHeader] | str | None:
        """The ``x-mcp-header`` declarations of a tool (T-H26-19..21): what an HTTP transport checks
        against ``Mcp-Param-*`` headers; a str says why the schema's declarations are invalid; None
        for an unknown tool. Scanned once per schema (a tool registered again gets a new one)."""
        schema = self.tool_input_schema(name)
        if schema is None:
            return None
        cached = self._param_decls.get(name)
        if cached is None or cached[0] is not schema:
            if len(self._param_decls) > len(self._tools):
                self._param_decls.clear()  # tools were removed: forget their declarations
            cached = self._param_decls[name] = (schema, scan_param_headers(schema))
        return cached[1]

    async def _list_tools(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        rev = req.revision
        tools = self._tools.values()
        if self.hide_unauthorized:
            tools = [t for t in tools if self._visible(t.scopes)]  # type: ignore[assignment]
        return _page([t.describe(rev) for t in tools], req.params, "tools", self.page_size)

    async def _call_tool(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        prepared = self._prepare_tool_call(req)
        if isinstance(prepared, dict):
            return prepared
        tool, kwargs, answers = prepared
        mode = self._mode_of(req, tool)
        if mode == "sync":
            return await self._run_tool(tool, kwargs, req, outlet, answers, None)
        ctx = Context(req, outlet, self, answers)
        if mode == "defer":
            return await self._run_deferred(tool, kwargs, req, outlet, answers, ctx)
        rec = await self.tasks.create(req, outlet)
        ctx._bind_task(TaskHandle(self.tasks, rec.task_id, req.revision, outlet))
        self.tasks.spawn(rec, lambda: self._run_tool(tool, kwargs, req, outlet, answers, ctx))
        return self.tasks.create_result(rec, req.revision)

    def _prepare_tool_call(self, req: IncomingRequest) -> dict[str, Any] | tuple[_Tool, dict[str, Any], Mapping[str, Any]]:
        """(tool, validated keyword arguments, MRTR answers), or the error result of bad arguments."""
        params = req.params
        name = params.get("name")
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            raise InvalidParamsError(f"Unknown tool: {brief(name)}")  # F-TOOL-07
        if tool.scopes:
            self._check_scopes(f"tool {tool.name}", tool.scopes)
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        elif not isinstance(arguments, dict):
            raise InvalidParamsError("tools/call arguments must be an object")
        try:
            kwargs = tool.args.validate(arguments)
        except pydantic.ValidationError as exc:
            # F-TOOL-07: argument validation failures are tool results the model can correct.
            return _error_result(f"Invalid arguments for tool {tool.name}: {_validation_text(exc)}")
        answers = self._answers(req, tool.name) if req.revision.modern else _NO_ANSWERS
        return tool, kwargs, answers

    def _mode_of(self, req: IncomingRequest, tool: _Tool) -> str:
        if tool.task_support == "forbidden" and "task" not in req.params and not req.revision.tasks_extension:
            return "sync"  # what _task_mode says for the common case, without asking it
        return self._task_mode(req, tool)

    def _task_mode(self, req: IncomingRequest, tool: _Tool) -> str:
        """sync, task (create one now) or defer (inline until ``ctx.detach()``)."""
        rev = req.revision
        support = tool.task_support
        if rev.tasks_extension:
            # SEP-2663: the server decides, for a request that declares the extension.
            if client_has_tasks_extension(req):
                if support == "forbidden":
                    return "sync"
                return "defer" if tool.defer_task else "task"
            if support == "required":
                raise missing_tasks_extension()
            return "sync"  # a legacy `task` param is ignored
        if rev.tasks:
            # 2025-11-25: the client augments the request with params.task.
            if isinstance(req.params.get("task"), dict):
                if support == "forbidden":
                    raise MethodNotFoundError(f"Tool {tool.name} cannot be called as a task")
                return "task"
            if support == "required":
                raise MethodNotFoundError(f"Tool {tool.name} must be called as a task (params.task)")
        return "sync"

    async def _run_tool(
        self, tool: _Tool, kwargs: dict[str, Any], req: IncomingRequest, outlet: Outlet,
        answers: Mapping[str, Any], ctx: Context | None,
    ) -> dict[str, Any]:
        try:
            value = self._call_fn(tool, kwargs, req, outlet, answers, ctx)
            if tool.is_async:
                value = await value
        except Exception as exc:
            return self._tool_failure(req, tool, exc)
        return self._tool_result(tool, value, req.revision)

    def _call_fn(
        self, tool: _Tool, kwargs: dict[str, Any], req: IncomingRequest, outlet: Outlet,
        answers: Mapping[str, Any], ctx: Context | None,
    ) -> Any:
        """The tool function called: its value, or its coroutine when it is ``async``."""
        if tool.args.context_param is not None:
            kwargs[tool.args.context_param] = ctx if ctx is not None else Context(req, outlet, self, answers)
        return tool.fn(**kwargs)

    def _tool_failure(self, req: IncomingRequest, tool: _Tool, exc: Exception) -> dict[str, Any]:
        """What a tool that raised answers: an MRTR round, the error result the model sees, or (a
        JSON-RPC error) the exception again."""
        if isinstance(exc, InputRequired):
            return self._input_required(req, tool.name, exc)
        if isinstance(exc, JSONRPCError):
            raise exc
        if isinstance(exc, ToolError):
            return _error_result(str(exc))
        return _error_result(str(exc) or type(exc).__name__)

    async def _run_deferred(
        self, tool: _Tool, kwargs: dict[str, Any], req: IncomingRequest, outlet: Outlet,
        answers: Mapping[str, Any], ctx: Context,
    ) -> dict[str, Any]:
        """Run inline; when the handler calls ``ctx.detach()`` answer with a CreateTaskResult."""
        loop = asyncio.get_running_loop()
        detached: asyncio.Future[TaskRecord] = loop.create_future()

        async def detacher(c: Context) -> None:
            rec = await self.tasks.create(req, outlet)
            c._bind_task(TaskHandle(self.tasks, rec.task_id, req.revision, outlet))
            if not detached.done():
                detached.set_result(rec)

        ctx._detacher = detacher
        body = loop.create_task(self._run_tool(tool, kwargs, req, outlet, answers, ctx))
        try:
            waiting: set[asyncio.Future[Any]] = {body, detached}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if not detached.done():
                body.cancel()
            raise
        if not detached.done():
            detached.cancel()
            return body.result()
        rec = detached.result()
        self.tasks.adopt(rec, loop.create_task(self.tasks.finish(rec.task_id, body)))
        return self.tasks.create_result(rec, req.revision)

    def _tool_result(self, tool: _Tool, value: Any, rev: Revision) -> dict[str, Any]:
        if isinstance(value, ToolResult):
            out: dict[str, Any] = {"content": blocks_of(value.content), "isError": value.is_error}
            if value.structured_content is not None and rev.structured_output:
                out["structuredContent"] = value.structured_content
            if value.meta:
                out["_meta"] = dict(value.meta)
            return out
        if tool.output.schema is not None:
            structured = tool.output.structured(value)
            try:
                text = dumps(structured).decode()
            except TypeError as exc:  # e.g. an integer beyond 64 bits, coerced from a client's 1e20
                return _error_result(f"{tool.name}: the result cannot be sent as JSON: {exc}")
            result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": False}
            if rev.structured_output:
                result["structuredContent"] = structured
            return result
        return {"content": to_content_blocks(value), "isError": False}


def _error_result(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}
