"""``Server``: the registries of tools, resources, prompts and completions, and the dispatcher.

The dispatcher is transport-free: ``handle(request, outlet)`` takes a request that the protocol
core already admitted and returns the result object (or raises a ``JSONRPCError``). Transports
call ``open_connection()`` for the protocol state and ``handle()`` for the work.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import logging
import re
import types
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pydantic

from anyport._exceptions import (
    InternalError,
    InvalidParamsError,
    JSONRPCError,
    MethodNotFoundError,
    ResourceNotFoundError,
    ToolError,
)
from anyport.protocol import (
    META_SERVER_INFO,
    META_SUBSCRIPTION_ID,
    TASKS_EXTENSION_ID,
    IncomingRequest,
    KeyRing,
    Revision,
    ServerConnection,
    bounded,
    brief,
    clip,
    dumps,
    error_message,
    result_message,
)
from anyport.protocol._codec import dumps_canonical
from anyport.protocol._revisions import LEGACY_VERSIONS, MODERN_VERSIONS
from anyport.server._content import blocks_of, to_content_blocks, to_text
from anyport.server._context import Context, InputRequired, Outlet
from anyport.server._hub import LIST_KINDS, NotificationHub
from anyport.server._schema import ArgumentsSpec, OutputSpec, build_arguments, build_output, never_awaits
from anyport.server._tasks import (
    TASK_SUPPORT,
    TaskHandle,
    TaskRunner,
    client_has_tasks_extension,
    missing_tasks_extension,
)
from anyport.server._uri_template import UriTemplate

if TYPE_CHECKING:
    from anyport.state._tasks import TaskRecord, TaskStore
    from anyport.transports._base import MessageStream

__all__ = ["Completion", "Message", "ResourceContents", "Server", "ToolResult"]

_log = logging.getLogger("anyport.server")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
Handler = Callable[[IncomingRequest, Outlet], Awaitable[dict[str, Any]]]

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")  # F-TOOL-05
_NO_ANSWERS: Mapping[str, Any] = types.MappingProxyType({})
#: Requests whose handlers are ours and never wait (see ``Server.inline_safe``).
_INLINE_METHODS = frozenset({"tools/list", "resources/list", "resources/templates/list", "prompts/list"})
_CACHEABLE = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"})
_MAX_COMPLETIONS = 100


@dataclass(slots=True)
class ToolResult:
    """Full control over a tool's result: content blocks, structured content, error flag."""

    content: list[Any] = field(default_factory=list)
    structured_content: Any = None
    is_error: bool = False
    meta: dict[str, Any] | None = None


@dataclass(slots=True)
class ResourceContents:
    """One item of a ``resources/read`` result; return several from a handler for multi-part resources."""

    text: str | None = None
    blob: bytes | None = None
    mime_type: str | None = None
    uri: str | None = None


@dataclass(slots=True)
class Message:
    """A prompt message; ``content`` is a str (a text block) or a content object / block dict."""

    role: str
    content: Any


@dataclass(slots=True)
class Completion:
    values: list[str]
    total: int | None = None
    has_more: bool | None = None


@dataclass(slots=True)
class _Tool:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    args: ArgumentsSpec
    output: OutputSpec
    meta: dict[str, Any]
    #: ``execution.taskSupport``: forbidden | optional | required (F-TASK-01).
    task_support: str = "forbidden"
    #: The handler runs inline and becomes a task when it calls ``ctx.detach()``.
    defer_task: bool = False
    #: Never waits: a sync function, or an ``async def`` without any await (see ``never_awaits``).
    inline: bool = False
    _described: dict[str, dict[str, Any]] = field(default_factory=dict)

    def describe(self, rev: Revision) -> dict[str, Any]:
        cached = self._described.get(rev.version)
        if cached is None:
            d = dict(self.meta)
            if not rev.titles:
                d.pop("title", None)
            if not rev.icons:
                d.pop("icons", None)
            if not rev.annotations:
                d.pop("annotations", None)
            if self.output.schema is not None and rev.structured_output:
                d["outputSchema"] = self.output.schema
            if rev.tasks and self.task_support != "forbidden":
                d["execution"] = {"taskSupport": self.task_support}
            cached = self._described[rev.version] = d
        return cached


@dataclass(slots=True)
class _Resource:
    template: UriTemplate
    fn: Callable[..., Any]
    is_async: bool
    args: ArgumentsSpec
    meta: dict[str, Any]
    mime_type: str | None


@dataclass(slots=True)
class _Prompt:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    args: ArgumentsSpec
    meta: dict[str, Any]


def _page_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _page_offset(cursor: object, total: int) -> int:
    if cursor is None:
        return 0
    if not isinstance(cursor, str):
        raise InvalidParamsError("Invalid cursor")  # U-15
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset = int(raw[1:]) if raw.startswith("o") else -1
    except (ValueError, binascii.Error, UnicodeDecodeError):
        offset = -1
    if offset < 0 or offset > total:
        raise InvalidParamsError("Invalid cursor")
    return offset


def _clean_meta(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


class Server:
    """An MCP server. Register handlers with the decorators, then serve it with any transport.

    Example:
        app = Server("notes", version="1.0.0")

        @app.tool()
        async def add(a: int, b: int) -> int:
            \"\"\"Add two numbers.\"\"\"
            return a + b
    """

    def __init__(
        self,
        name: str,
        version: str = "0.1.0",
        *,
        title: str | None = None,
        description: str | None = None,
        instructions: str | None = None,
        website_url: str | None = None,
        icons: list[dict[str, Any]] | None = None,
        page_size: int | None = None,
        cache_ttl_ms: int = 0,
        cache_scope: str = "public",
        key_ring: KeyRing | None = None,
        input_ttl: float = 600.0,
        task_store: TaskStore | None = None,
        task_ttl_ms: int = 3_600_000,
        task_poll_interval_ms: int | None = 500,
    ) -> None:
        self.name = name
        self.version = version
        self.instructions = instructions
        self.info: dict[str, Any] = _clean_meta(
            name=name, version=version, title=title, description=description, websiteUrl=website_url, icons=icons
        )
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.page_size = page_size
        self.cache_ttl_ms = cache_ttl_ms
        self.cache_scope = cache_scope
        self.key_ring = key_ring or KeyRing.from_env()
        self.input_ttl = input_ttl
        self.legacy_versions: tuple[str, ...] = LEGACY_VERSIONS
        self.modern_versions: tuple[str, ...] = MODERN_VERSIONS
        self._tools: dict[str, _Tool] = {}
        self._resources: dict[str, _Resource] = {}
        self._templates: list[_Resource] = []
        self._prompts: dict[str, _Prompt] = {}
        self._completions: dict[tuple[str, str, str], Callable[..., Any]] = {}
        self._handlers: dict[str, Handler] = {
            "tools/list": self._list_tools,
            "tools/call": self._call_tool,
            "resources/list": self._list_resources,
            "resources/templates/list": self._list_templates,
            "resources/read": self._read_resource,
            "prompts/list": self._list_prompts,
            "prompts/get": self._get_prompt,
            "completion/complete": self._complete,
            "resources/subscribe": self._subscribe,
            "resources/unsubscribe": self._unsubscribe,
            "subscriptions/listen": self._listen,
        }
        #: Connected legacy sessions and open listen streams (server-initiated notifications).
        self.hub = NotificationHub()
        #: Tasks: creation, background handlers, tasks/* (TaskStore: in memory unless given).
        self.tasks = TaskRunner(
            self.hub, task_store, default_ttl_ms=task_ttl_ms, poll_interval_ms=task_poll_interval_ms,
            page_size=page_size or 50,
        )
        self._handlers.update({
            "tasks/get": self.tasks.get,
            "tasks/result": self.tasks.result,
            "tasks/list": self.tasks.list,
            "tasks/cancel": self.tasks.cancel,
            "tasks/update": self.tasks.update_inputs,
        })
        self._background: set[asyncio.Task[Any]] = set()
        self._capabilities: dict[str, Any] | None = None
        self._discover_cache: tuple[tuple[Any, Any], dict[str, Any]] | None = None
        self._modern_info = {META_SERVER_INFO: {"name": name, "version": version}}

    # -- registration ----------------------------------------------------------------------------

    def tool(
        self,
        name: str | None = None,
        *,
        title: str | None = None,
        description: str | None = None,
        annotations: dict[str, Any] | None = None,
        icons: list[dict[str, Any]] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
        task_support: str = "forbidden",
        defer_task: bool = False,
        input_schema: dict[str, Any] | None = None,
    ) -> Callable[[F], F]:
        """Register a tool. Name: the function's; description: its docstring; schema: its type hints.

        ``input_schema`` publishes a hand-written JSON Schema (2020-12 keywords such as ``$schema``,
        ``allOf``/``anyOf``, ``if``/``then``/``else`` kept as written, J-17) instead of the generated
        one; arguments are still validated against the type hints, so keep the two in agreement.

        ``task_support`` (``"forbidden"``, ``"optional"``, ``"required"``) lets a call run as a
        task: on 2025-11-25 when the client asks (``params.task``), on 2026-07-28 whenever the
        request declares the tasks extension. With ``defer_task=True`` the handler starts
        inline and becomes a task when it calls ``await ctx.detach()``.
        """

        def deco(fn: F) -> F:
            self.add_tool(
                fn, name=name, title=title, description=description, annotations=annotations,
                icons=icons, meta=meta, structured_output=structured_output,
                task_support=task_support, defer_task=defer_task, input_schema=input_schema,
            )
            return fn

        return deco

    def add_tool(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: dict[str, Any] | None = None,
        icons: list[dict[str, Any]] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
        task_support: str = "forbidden",
        defer_task: bool = False,
        input_schema: dict[str, Any] | None = None,
    ) -> None:
        tool_name = name or fn.__name__
        if input_schema is not None and (not isinstance(input_schema, dict) or input_schema.get("type") != "object"):
            raise ValueError(f"tool {tool_name!r}: input_schema must be a JSON Schema object with type 'object' (F-TOOL-04)")
        if task_support not in TASK_SUPPORT:
            raise ValueError(f"task_support must be one of {', '.join(TASK_SUPPORT)}, not {task_support!r}")
        if not _TOOL_NAME.match(tool_name):
            raise ValueError(f"invalid tool name {tool_name!r}: 1-128 characters of A-Z a-z 0-9 _ . -")
        if tool_name in self._tools:
            raise ValueError(f"tool {tool_name!r} is already registered")
        args = build_arguments(fn, Context, f"{tool_name}Arguments")
        output = build_output(fn, structured_output)
        doc = description if description is not None else inspect.getdoc(fn)
        described = _clean_meta(
            name=tool_name, title=title, description=doc,
            inputSchema=dict(input_schema) if input_schema is not None else args.schema,
            annotations=annotations, icons=icons, _meta=meta,
        )
        is_async = inspect.iscoroutinefunction(fn)
        self._tools[tool_name] = _Tool(
            tool_name, fn, is_async, args, output, described, task_support, defer_task,
            inline=not is_async or never_awaits(fn),
        )
        self._capabilities = None  # `tasks` depends on the tools' task support
        self._registry_changed("tools")

    def resource(
        self,
        uri: str,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        annotations: dict[str, Any] | None = None,
        icons: list[dict[str, Any]] | None = None,
        size: int | None = None,
    ) -> Callable[[F], F]:
        """Register a resource, or a resource template when ``uri`` has ``{variables}`` (RFC 6570)."""

        def deco(fn: F) -> F:
            template = UriTemplate(uri)
            args = build_arguments(fn, Context, f"{fn.__name__}ResourceArguments")
            if template.is_template:
                missing = set(args.names) - set(template.variables)
                if missing:
                    raise TypeError(f"{fn.__qualname__}: parameters {sorted(missing)} are not variables of {uri!r}")
            elif args.names:
                raise TypeError(f"{fn.__qualname__}: a fixed resource takes no arguments (only a Context)")
            key = "uriTemplate" if template.is_template else "uri"
            meta = _clean_meta(
                name=name or fn.__name__, title=title, description=description if description is not None else inspect.getdoc(fn),
                mimeType=mime_type, annotations=annotations, icons=icons, size=size,
            )
            meta[key] = uri
            entry = _Resource(template, fn, inspect.iscoroutinefunction(fn), args, meta, mime_type)
            if template.is_template:
                self._templates.append(entry)
            else:
                if uri in self._resources:
                    raise ValueError(f"resource {uri!r} is already registered")
                self._resources[uri] = entry
            self._registry_changed("resources")
            return fn

        return deco

    def prompt(
        self,
        name: str | None = None,
        *,
        title: str | None = None,
        description: str | None = None,
        icons: list[dict[str, Any]] | None = None,
    ) -> Callable[[F], F]:
        """Register a prompt; its arguments are the function's parameters."""

        def deco(fn: F) -> F:
            prompt_name = name or fn.__name__
            if prompt_name in self._prompts:
                raise ValueError(f"prompt {prompt_name!r} is already registered")
            args = build_arguments(fn, Context, f"{prompt_name}PromptArguments")
            arguments = [_clean_meta(name=n, description=d, required=r) for n, d, r in args.fields]
            meta = _clean_meta(
                name=prompt_name, title=title, description=description if description is not None else inspect.getdoc(fn),
                arguments=arguments, icons=icons,
            )
            self._prompts[prompt_name] = _Prompt(prompt_name, fn, inspect.iscoroutinefunction(fn), args, meta)
            self._registry_changed("prompts")
            return fn

        return deco

    def completion(self, *, argument: str, prompt: str | None = None, resource: str | None = None) -> Callable[[F], F]:
        """Register completions for one argument of a prompt or of a resource template.

        The handler gets ``(value, context)``: the partial value and the already-resolved
        arguments; it returns a list of strings (at most 100 are sent) or a ``Completion``.
        """
        if (prompt is None) == (resource is None):
            raise TypeError("give exactly one of prompt= or resource=")

        def deco(fn: F) -> F:
            key = ("ref/prompt", prompt, argument) if prompt is not None else ("ref/resource", str(resource), argument)
            self._completions[key] = fn
            return fn

        return deco

    # -- protocol-facing ------------------------------------------------------------------------------

    @property
    def capabilities(self) -> dict[str, Any]:
        """What this server declares (built once, again after a tool is registered). Do not mutate."""
        caps = self._capabilities
        if caps is None:
            caps = self._capabilities = self._build_capabilities()
        return caps

    def _build_capabilities(self) -> dict[str, Any]:
        caps: dict[str, Any] = {
            "tools": {"listChanged": True},
            "resources": {"subscribe": True, "listChanged": True},
            "prompts": {"listChanged": True},
            "logging": {},
            "completions": {},
        }
        if any(t.task_support != "forbidden" for t in self._tools.values()):
            # The revision table keeps `tasks` on 2025-11-25 and the extension on 2026-07-28.
            caps["tasks"] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
            caps["extensions"] = {TASKS_EXTENSION_ID: {}}
        return caps

    # -- server-initiated notifications --------------------------------------------------------------

    async def notify_resource_updated(self, uri: str) -> None:
        """``notifications/resources/updated`` to every legacy session subscribed to ``uri`` and every
        listen stream whose ``resourceSubscriptions`` names it (F-RES-03, M-20)."""
        await self.hub.resource_updated(uri)

    async def notify_list_changed(self, kind: str) -> None:
        """``notifications/{kind}/list_changed`` (kind: tools, resources, prompts) to every legacy
        session and to listen streams that asked for it (F-TOOL-03, F-RES-02, F-PROMPT-01)."""
        if kind not in LIST_KINDS:
            raise ValueError(f"kind is one of {', '.join(LIST_KINDS)}, not {kind!r}")
        await self.hub.publish(f"notifications/{kind}/list_changed", {})

    def close_subscriptions(self) -> None:
        """End every open ``subscriptions/listen`` with its completion result (M-23)."""
        self.hub.close_listeners()

    def _registry_changed(self, kind: str) -> None:
        # Registering after start (someone is connected) tells the clients (listChanged).
        if not self.hub.active:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.notify_list_changed(kind))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def _discover_extra(self) -> dict[str, Any]:
        # One dict for every connection (read-only there), rebuilt if the caching hints change.
        hints = (self.cache_ttl_ms, self.cache_scope)
        cached = self._discover_cache
        if cached is None or cached[0] != hints:
            cached = self._discover_cache = (hints, {"ttlMs": hints[0], "cacheScope": hints[1]})
        return cached[1]

    def open_connection(self, *, assume_initialized: Revision | None = None) -> ServerConnection:
        """Fresh protocol state for one connection (a stdio process, an HTTP session, a request)."""
        return ServerConnection(
            server_info=self.info,
            capabilities=self.capabilities,
            instructions=self.instructions,
            legacy_versions=self.legacy_versions,
            modern_versions=self.modern_versions,
            discover_extra=self._discover_extra,
            assume_initialized=assume_initialized,
        )

    async def serve(self, stream: MessageStream) -> None:
        """Serve one connection over any message stream (memory pairs, custom byte streams)."""
        from anyport.server._session import ServerSession

        await ServerSession(self, stream).run()

    def run(self, transport: str = "stdio", **kw: Any) -> None:
        """Blocking: serve this server on ``"stdio"``, or on ``"http"`` with uvicorn.

        ``run("http", host="127.0.0.1", port=8000)`` serves Streamable HTTP at ``/mcp`` and the
        2024-11-05 HTTP+SSE transport at ``/sse``; it takes ``certfile``/``keyfile`` (TLS),
        ``allowed_hosts``, ``log_level`` and every option of ``anyport.transports.http.create_app``.
        HTTP needs ``pip install 'anyport[http]'``.
        """
        if transport == "stdio":
            from anyport.transports.stdio import run_stdio_server

            run_stdio_server(self, **kw)
        elif transport == "http":
            from anyport.transports.http import run_http_server

            run_http_server(self, **kw)
        else:
            raise ValueError(f"unknown transport {transport!r} (stdio or http)")

    def inline_safe(self, req: IncomingRequest) -> bool:
        """True when this request's handler never waits, so a runtime may run it without a task.

        The runtimes run such a request inline (``anyport._inline``): no task, no extra turn of
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

    # -- MRTR --------------------------------------------------------------------------------------------

    def _binding(self, req: IncomingRequest, target: str) -> bytes:
        args = req.params.get("arguments")
        try:
            digest = hashlib.sha256(dumps_canonical(args)).hexdigest() if args else ""
        except TypeError as exc:  # orjson writes at most 254 levels (it reads 1,024)
            raise InvalidParamsError(f"{target}: arguments nested too deeply to answer with input_required") from exc
        return f"{req.method}\0{target}\0{digest}".encode()

    def _answers(self, req: IncomingRequest, target: str) -> dict[str, Any]:
        if not req.revision.modern:
            return {}
        answers: dict[str, Any] = {}
        state = req.params.get("requestState")
        if state is not None:
            opened = self.key_ring.open(state, binding=self._binding(req, target))
            prior = opened.get("a")
            if isinstance(prior, dict):
                answers.update(prior)
        responses = req.params.get("inputResponses")
        if isinstance(responses, dict):
            answers.update(responses)
        return answers

    def _input_required(self, req: IncomingRequest, target: str, exc: InputRequired) -> dict[str, Any]:
        state = self.key_ring.seal({"a": exc.answers}, binding=self._binding(req, target), ttl=self.input_ttl)
        return {"resultType": "input_required", "inputRequests": exc.requests, "requestState": state}

    async def _invoke(
        self, fn: Callable[..., Any], is_async: bool, kwargs: dict[str, Any], spec: ArgumentsSpec,
        req: IncomingRequest, outlet: Outlet, answers: Mapping[str, Any], ctx: Context | None = None,
    ) -> Any:
        if spec.context_param is not None:
            kwargs[spec.context_param] = ctx if ctx is not None else Context(req, outlet, self, answers)
        if is_async:
            return await fn(**kwargs)
        return fn(**kwargs)

    # -- tools -------------------------------------------------------------------------------------------

    def _page(self, items: list[Any], params: dict[str, Any], key: str) -> dict[str, Any]:
        start = _page_offset(params.get("cursor"), len(items))
        if self.page_size is None:
            return {key: items[start:]}
        end = start + self.page_size
        out: dict[str, Any] = {key: items[start:end]}
        if end < len(items):
            out["nextCursor"] = _page_cursor(end)
        return out

    def tool_input_schema(self, name: str) -> dict[str, Any] | None:
        """The published ``inputSchema`` of a tool, or None (transports use it for ``Mcp-Param-*``)."""
        tool = self._tools.get(name)
        schema = tool.meta.get("inputSchema") if tool is not None else None
        return schema if isinstance(schema, dict) else None

    async def _list_tools(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        rev = req.revision
        return self._page([t.describe(rev) for t in self._tools.values()], req.params, "tools")

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

    # -- subscriptions -----------------------------------------------------------------------------------

    async def _subscribe(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        uri = req.params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise InvalidParamsError("resources/subscribe needs a string uri")
        session_id = getattr(outlet, "session_id", None)
        if isinstance(session_id, str):
            self.hub.subscribe(session_id, uri)
        return {}

    async def _unsubscribe(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        uri = req.params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise InvalidParamsError("resources/unsubscribe needs a string uri")
        session_id = getattr(outlet, "session_id", None)
        if isinstance(session_id, str):
            self.hub.unsubscribe(session_id, uri)
        return {}

    async def _listen(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """``subscriptions/listen`` (M-20..M-23): acknowledge, then forward what the filter asked for
        until the client cancels (no response then) or the server closes it (a complete result)."""
        wanted = req.params.get("notifications")
        if wanted is None:
            wanted = {}
        if not isinstance(wanted, dict):
            raise InvalidParamsError("subscriptions/listen notifications must be an object")
        honoured: dict[str, Any] = {k: True for k in LIST_KINDS.values() if wanted.get(k) is True}
        uris = wanted.get("resourceSubscriptions")
        if uris is not None:
            if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
                raise InvalidParamsError("resourceSubscriptions must be an array of URIs")
            if uris:
                honoured["resourceSubscriptions"] = list(dict.fromkeys(uris))
        task_ids = wanted.get("taskIds")
        if task_ids is not None:
            if not isinstance(task_ids, list) or not all(isinstance(t, str) for t in task_ids):
                raise InvalidParamsError("taskIds must be an array of task ids")
            if task_ids:
                if not client_has_tasks_extension(req):
                    raise missing_tasks_extension()  # SEP-2663
                honoured["taskIds"] = list(dict.fromkeys(task_ids))
        tag = {META_SUBSCRIPTION_ID: req.id}
        listener = self.hub.add_listener(honoured)  # before the ack: nothing is lost in between
        try:
            await outlet.notify(
                "notifications/subscriptions/acknowledged", {"_meta": dict(tag), "notifications": honoured}
            )
            while True:
                item = await listener.queue.get()
                if item is None:
                    break
                method, params = item
                meta = params.get("_meta")
                params["_meta"] = {**meta, **tag} if isinstance(meta, dict) else dict(tag)
                await outlet.notify(method, params)
        finally:
            self.hub.remove_listener(listener)
        return {"_meta": dict(tag)}

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
            result: dict[str, Any] = {"content": [{"type": "text", "text": dumps(structured).decode()}], "isError": False}
            if rev.structured_output:
                result["structuredContent"] = structured
            return result
        return {"content": to_content_blocks(value), "isError": False}

    # -- resources -----------------------------------------------------------------------------------------

    async def _list_resources(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        return self._page([r.meta for r in self._resources.values()], req.params, "resources")

    async def _list_templates(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        return self._page([r.meta for r in self._templates], req.params, "resourceTemplates")

    def _find_resource(self, uri: str) -> tuple[_Resource, dict[str, str]] | None:
        entry = self._resources.get(uri)
        if entry is not None:
            return entry, {}
        for t in self._templates:
            values = t.template.match(uri)
            if values is not None:
                return t, values
        return None

    async def _read_resource(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        uri = req.params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise InvalidParamsError("resources/read needs a string uri")
        found = self._find_resource(uri)
        if found is None:
            # F-RES-04: -32002 on legacy revisions, -32602 on 2026-07-28.
            raise ResourceNotFoundError(
                f"Resource not found: {clip(uri)}", code=req.revision.resource_not_found_code, data={"uri": bounded(uri)}
            )
        entry, values = found
        try:
            kwargs = entry.args.validate(values)
        except pydantic.ValidationError as exc:
            raise InvalidParamsError(f"Invalid URI {clip(uri)}: {_validation_text(exc)}") from exc
        answers = self._answers(req, uri)
        try:
            value = await self._invoke(entry.fn, entry.is_async, kwargs, entry.args, req, outlet, answers)
        except InputRequired as exc:
            return self._input_required(req, uri, exc)
        return {"contents": _resource_contents(uri, value, entry.mime_type)}

    # -- prompts ---------------------------------------------------------------------------------------------

    async def _list_prompts(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        return self._page([p.meta for p in self._prompts.values()], req.params, "prompts")

    async def _get_prompt(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        name = req.params.get("name")
        prompt = self._prompts.get(name) if isinstance(name, str) else None
        if prompt is None:
            raise InvalidParamsError(f"Unknown prompt: {brief(name)}")  # F-PROMPT-02
        arguments = req.params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise InvalidParamsError("prompts/get arguments must be an object")
        try:
            kwargs = prompt.args.validate(arguments)
        except pydantic.ValidationError as exc:
            raise InvalidParamsError(f"Invalid arguments for prompt {prompt.name}: {_validation_text(exc)}") from exc
        answers = self._answers(req, prompt.name)
        try:
            value = await self._invoke(prompt.fn, prompt.is_async, kwargs, prompt.args, req, outlet, answers)
        except InputRequired as exc:
            return self._input_required(req, prompt.name, exc)
        result: dict[str, Any] = {"messages": _prompt_messages(value)}
        if prompt.meta.get("description"):
            result["description"] = prompt.meta["description"]
        return result

    # -- completion ---------------------------------------------------------------------------------------------

    async def _complete(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        ref = req.params.get("ref")
        argument = req.params.get("argument")
        if not isinstance(ref, dict) or not isinstance(argument, dict) or not isinstance(argument.get("name"), str):
            raise InvalidParamsError("completion/complete needs ref and argument {name, value}")
        kind = ref.get("type")
        target = ref.get("name") if kind == "ref/prompt" else ref.get("uri") if kind == "ref/resource" else None
        if not isinstance(target, str):
            raise InvalidParamsError(f"Invalid completion ref: {brief(ref)}")
        if kind == "ref/prompt" and target not in self._prompts:
            raise InvalidParamsError(f"Unknown prompt: {brief(target)}")
        if kind == "ref/resource" and not any(t.template.template == target for t in self._templates) and target not in self._resources:
            raise InvalidParamsError(f"Unknown resource: {brief(target)}")
        fn = self._completions.get((str(kind), target, str(argument["name"])))
        if fn is None:
            return {"completion": {"values": [], "hasMore": False}}
        value = argument.get("value", "")
        ctx_args = req.params.get("context", {})
        ctx_args = ctx_args.get("arguments", {}) if isinstance(ctx_args, dict) else {}
        out = fn(str(value), dict(ctx_args) if isinstance(ctx_args, dict) else {})
        if inspect.isawaitable(out):
            out = await out
        comp = out if isinstance(out, Completion) else Completion([str(v) for v in out])
        values = comp.values[:_MAX_COMPLETIONS]
        completion: dict[str, Any] = {"values": values}
        total = comp.total if comp.total is not None else len(comp.values)
        completion["total"] = total
        completion["hasMore"] = comp.has_more if comp.has_more is not None else total > len(values)
        return {"completion": completion}


def _validation_text(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


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


def _error_result(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


def _resource_contents(uri: str, value: Any, mime_type: str | None) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) and value and all(isinstance(v, ResourceContents) for v in value) else [value]
    out = []
    for item in items:
        if isinstance(item, ResourceContents):
            entry: dict[str, Any] = {"uri": item.uri or uri}
            mt = item.mime_type or mime_type
            if item.blob is not None:
                entry["blob"] = base64.b64encode(item.blob).decode()
            else:
                entry["text"] = item.text or ""
        elif isinstance(item, (bytes, bytearray)):
            entry = {"uri": uri, "blob": base64.b64encode(bytes(item)).decode()}
            mt = mime_type or "application/octet-stream"
        elif isinstance(item, str):
            entry = {"uri": uri, "text": item}
            mt = mime_type or "text/plain"
        else:
            entry = {"uri": uri, "text": to_text(item)}
            mt = mime_type or "application/json"
        if mt:
            entry["mimeType"] = mt
        out.append(entry)
    return out


def _prompt_messages(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, Message):
            role, content = item.role, item.content
        elif isinstance(item, dict) and "role" in item:
            role, content = item["role"], item.get("content")
        else:
            role, content = "user", item
        if role not in ("user", "assistant"):
            raise InvalidParamsError(f"prompt message role must be user or assistant, not {role!r}")
        if isinstance(content, dict) and "type" in content:
            block = content
        else:
            blocks = to_content_blocks(content)
            block = blocks[0] if blocks else {"type": "text", "text": ""}
        out.append({"role": role, "content": block})
    return out
