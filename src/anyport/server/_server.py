"""``Server``: an MCP server's configuration and its connections, put together from the mixins that
hold the rest.

- ``_registering``: the ``tool`` / ``resource`` / ``prompt`` / ``completion`` decorators,
  capabilities, list-changed and resource-updated notifications;
- ``_dispatch``: the transport-free dispatcher (``handle``, ``reply``, ``inline_safe``,
  ``answer_now``, ``reply_now``) over the method table built here;
- ``_tools``, ``_resources``, ``_prompts``: the request handlers; ``_mrtr``: what they share for
  multi round-trip requests;
- ``_entries``: the value types (``ToolResult``, ``ResourceContents``, ``Message``,
  ``Completion``) and the registry entries, re-exported here.

Transports call ``open_connection()`` for the protocol state and ``handle()`` for the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anyport.protocol import META_SERVER_INFO, KeyRing, ParamHeader, Revision, ServerConnection
from anyport.protocol._revisions import LEGACY_VERSIONS, MODERN_VERSIONS
from anyport.runtime import MessageStream, NotificationHub, serve_stream
from anyport.server._dispatch import _Dispatch
from anyport.server._entries import (
    Completion,
    Handler,
    Message,
    ResourceContents,
    ToolResult,
    _clean_meta,
    _Prompt,
    _Resource,
    _Tool,
)
from anyport.server._prompts import _Prompts
from anyport.server._registering import _Registering
from anyport.server._resources import _Resources
from anyport.server._tasks import TaskRunner

if TYPE_CHECKING:
    from anyport.state._tasks import TaskStore

__all__ = ["Completion", "Message", "ResourceContents", "Server", "ToolResult"]


class Server(_Registering, _Dispatch, _Resources, _Prompts):
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
        hide_unauthorized: bool = False,
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
        self.hide_unauthorized = hide_unauthorized
        self.cache_ttl_ms = cache_ttl_ms
        self.cache_scope = cache_scope
        self.key_ring = key_ring or KeyRing.from_env()
        self.input_ttl = input_ttl
        self.legacy_versions: tuple[str, ...] = LEGACY_VERSIONS
        self.modern_versions: tuple[str, ...] = MODERN_VERSIONS
        self._tools: dict[str, _Tool] = {}
        self._param_decls: dict[str, tuple[dict[str, Any], list[ParamHeader] | str]] = {}
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

    def client_notification(self, session_id: str | None, method: str, params: dict[str, Any]) -> None:
        """A client's notification the protocol core left to the server (``roots/list_changed``):
        nothing to do, a server keeps nothing of the client's roots (``ctx.list_roots`` asks anew)."""

    async def serve(self, stream: MessageStream) -> None:
        """Serve one connection over any message stream (memory pairs, custom byte streams)."""
        await serve_stream(self, stream)

    def run(self, transport: str = "stdio", **kw: Any) -> None:
        """Blocking: serve this server on ``"stdio"``, or on ``"http"`` with uvicorn.

        ``run("http", host="127.0.0.1", port=8000)`` serves Streamable HTTP at ``/mcp`` and the
        2024-11-05 HTTP+SSE transport at ``/sse``; it takes ``certfile``/``keyfile`` (TLS),
        ``allowed_hosts``, ``log_level`` and every option of ``anyport.transports.http.create_app``.
        HTTP needs ``pip install 'anyport[http]'``.
        """
        from anyport._launch import run  # the composition root: the server package imports no transport

        run(self, transport, **kw)
