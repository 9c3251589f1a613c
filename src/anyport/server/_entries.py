"""What the registries hold and what handlers return: the public value types (``ToolResult``,
``ResourceContents``, ``Message``, ``Completion``), the registry entries (``_Tool``, ``_Resource``,
``_Prompt``) and the helpers the handlers share (paging, metadata, validation messages).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic

from anyport._exceptions import InvalidParamsError
from anyport.protocol import IncomingRequest, Revision
from anyport.server._context import Outlet
from anyport.server._schema import ArgumentsSpec, OutputSpec
from anyport.server._uri_template import UriTemplate

__all__ = ["Completion", "Message", "ResourceContents", "ToolResult"]

#: A request handler of the method table: the result object of an admitted request.
Handler = Callable[[IncomingRequest, Outlet], Awaitable[dict[str, Any]]]


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
    #: Scopes a caller needs (auth only, A-27); empty: anyone who may reach the server.
    scopes: tuple[str, ...] = ()
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
    scopes: tuple[str, ...] = ()


@dataclass(slots=True)
class _Prompt:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    args: ArgumentsSpec
    meta: dict[str, Any]
    scopes: tuple[str, ...] = ()


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


def _page(items: list[Any], params: dict[str, Any], key: str, page_size: int | None) -> dict[str, Any]:
    """One page of a ``*/list`` result: ``items`` from ``params["cursor"]`` on, and ``nextCursor``."""
    start = _page_offset(params.get("cursor"), len(items))
    if page_size is None:
        return {key: items[start:]}
    end = start + page_size
    out: dict[str, Any] = {key: items[start:end]}
    if end < len(items):
        out["nextCursor"] = _page_cursor(end)
    return out


def _validation_text(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)
