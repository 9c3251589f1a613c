"""``_Registering``: how handlers get into a ``Server`` (the ``tool``, ``resource``, ``prompt`` and
``completion`` decorators), the capabilities that follow from them, and the server-initiated
notifications (list changed, resource updated).
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from anyport.protocol import TASKS_EXTENSION_ID
from anyport.runtime._hub import LIST_KINDS, NotificationHub
from anyport.server._context import Context
from anyport.server._entries import _clean_meta, _Prompt, _Resource, _Tool
from anyport.server._schema import build_arguments, build_output, never_awaits
from anyport.server._scopes import scope_tuple
from anyport.server._tasks import TASK_SUPPORT
from anyport.server._uri_template import UriTemplate

F = TypeVar("F", bound=Callable[..., Any])

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")  # F-TOOL-05


class _Registering:
    """The registration API of ``Server`` and what registering changes."""

    _tools: dict[str, _Tool]
    _resources: dict[str, _Resource]
    _templates: list[_Resource]
    _prompts: dict[str, _Prompt]
    _completions: dict[tuple[str, str, str], Callable[..., Any]]
    hub: NotificationHub
    _background: set[asyncio.Task[Any]]
    _capabilities: dict[str, Any] | None

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
        scopes: Iterable[str] | None = None,
    ) -> Callable[[F], F]:
        """Register a tool. Name: the function's; description: its docstring; schema: its type hints.

        ``input_schema`` publishes a hand-written JSON Schema (2020-12 keywords such as ``$schema``,
        ``allOf``/``anyOf``, ``if``/``then``/``else`` kept as written, J-17) instead of the generated
        one; arguments are still validated against the type hints, so keep the two in agreement.

        ``task_support`` (``"forbidden"``, ``"optional"``, ``"required"``) lets a call run as a
        task: on 2025-11-25 when the client asks (``params.task``), on 2026-07-28 whenever the
        request declares the tasks extension. With ``defer_task=True`` the handler starts
        inline and becomes a task when it calls ``await ctx.detach()``.

        ``scopes``: what an authenticated caller needs to call it (HTTP with ``auth``): without
        them the call is refused with 403 ``insufficient_scope`` naming them (step-up, A-27), and
        with ``Server(hide_unauthorized=True)`` the tool is left out of that caller's ``tools/list``.
        """
        needed = scope_tuple(scopes)

        def deco(fn: F) -> F:
            self.add_tool(
                fn, name=name, title=title, description=description, annotations=annotations,
                icons=icons, meta=meta, structured_output=structured_output,
                task_support=task_support, defer_task=defer_task, input_schema=input_schema, scopes=needed,
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
        scopes: Iterable[str] | None = None,
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
            inline=not is_async or never_awaits(fn), scopes=scope_tuple(scopes),
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
        scopes: Iterable[str] | None = None,
    ) -> Callable[[F], F]:
        """Register a resource, or a resource template when ``uri`` has ``{variables}`` (RFC 6570).
        ``scopes``: needed to read it (see ``tool``)."""
        needed = scope_tuple(scopes)

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
            entry = _Resource(template, fn, inspect.iscoroutinefunction(fn), args, meta, mime_type, needed)
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
        scopes: Iterable[str] | None = None,
    ) -> Callable[[F], F]:
        """Register a prompt; its arguments are the function's parameters. ``scopes``: needed to get
        it (see ``tool``)."""
        needed = scope_tuple(scopes)

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
            self._prompts[prompt_name] = _Prompt(prompt_name, fn, inspect.iscoroutinefunction(fn), args, meta, needed)
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

    # -- capabilities ----------------------------------------------------------------------------------

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
