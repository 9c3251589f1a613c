"""``Client``: one object for every server, transport and revision.

``Client(["python", "server.py"])`` spawns a stdio server; ``Client(app)`` connects to a
``Server`` in this process; ``Client(stream)`` uses any ``MessageStream``. On connect the client
detects the era (T-STDIO-15): it probes ``server/discover`` with 2026-07-28 ``_meta``; a discover
result, or a recognised modern error, means modern; any other answer or silence means legacy,
and it falls back to ``initialize`` (never keyed to one error code: T-STDIO-16).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import inspect
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from anyport._exceptions import (
    JSONRPCError,
    LocalProtocolError,
    RemoteProtocolError,
    RequestTimeoutError,
    UnsupportedProtocolVersionError,
)
from anyport.client._session import ClientSession, ProgressCallback
from anyport.client._types import (
    CallToolResult,
    CompletionResult,
    GetPromptResult,
    Prompt,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    Tool,
)
from anyport.protocol import (
    LEGACY_VERSIONS,
    LOG_LEVELS,
    MODERN_VERSIONS,
    ClientConnection,
    Revision,
)
from anyport.transports._base import MessageStream

__all__ = ["Client"]

_MODERN_ERROR_CODES = frozenset({-32020, -32021, -32022})
_MAX_INPUT_ROUNDS = 16


@runtime_checkable
class _Servable(Protocol):
    async def serve(self, stream: MessageStream) -> None: ...


def _version() -> str:
    try:
        return importlib.metadata.version("anyport")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "0"


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    out = fn(*args)
    if inspect.isawaitable(out):
        out = await out
    return out


class Client:
    """An MCP client.

    Args:
        target: an ``http(s)://`` URL of a Streamable HTTP endpoint, a command (list of strings)
            for stdio, a ``Server`` in this process, or a ``MessageStream``.
        era: ``"auto"`` (probe, then fall back), ``"modern"`` or ``"legacy"``.
        protocol_version: the version to ask for (default: the newest of the era).
        on_elicit / on_sample / on_list_roots / roots: answer the server's questions; each one
            given declares the matching client capability.
        on_log: receives ``notifications/message`` params; ``log_level`` asks for that level.
        timeout: default seconds per request; on expiry a cancellation is sent (L-16).

    Example:
        async with Client(["python", "server.py"]) as c:
            print(await c.list_tools())
            result = await c.call_tool("add", {"a": 1, "b": 2})
    """

    def __init__(
        self,
        target: str | Sequence[str] | _Servable | MessageStream,
        *,
        era: str = "auto",
        protocol_version: str | None = None,
        client_info: Mapping[str, Any] | None = None,
        on_elicit: Callable[[dict[str, Any]], Any] | None = None,
        on_sample: Callable[[dict[str, Any]], Any] | None = None,
        on_list_roots: Callable[[], Any] | None = None,
        roots: Sequence[str | Mapping[str, Any]] | None = None,
        on_log: Callable[[dict[str, Any]], Any] | None = None,
        on_notification: Callable[[str, dict[str, Any]], Any] | None = None,
        log_level: str | None = None,
        timeout: float | None = 60.0,
        probe_timeout: float = 5.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        if era not in ("auto", "modern", "legacy"):
            raise ValueError("era is 'auto', 'modern' or 'legacy'")
        if log_level is not None and log_level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {log_level!r}")
        if protocol_version is not None and protocol_version not in (*LEGACY_VERSIONS, *MODERN_VERSIONS):
            raise ValueError(f"unknown protocol version {protocol_version!r}")
        self._target = target
        self._era_wanted = era
        self._version_wanted = protocol_version
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self._env = env
        self._cwd = cwd
        self._on_log = on_log
        self._on_notification = on_notification
        self._on_elicit = on_elicit
        self._on_sample = on_sample
        if roots is not None and on_list_roots is None:
            fixed = [{"uri": r} if isinstance(r, str) else dict(r) for r in roots]
            on_list_roots = lambda: fixed  # noqa: E731
        self._on_list_roots = on_list_roots
        caps: dict[str, Any] = {}
        if on_elicit is not None:
            caps["elicitation"] = {"form": {}}
        if on_sample is not None:
            caps["sampling"] = {}
        if on_list_roots is not None:
            caps["roots"] = {"listChanged": False}
        info = dict(client_info) if client_info else {"name": "anyport", "version": _version()}
        self._conn = ClientConnection(client_info=info, capabilities=caps, log_level=log_level)
        self._session: ClientSession | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._opened: list[Any] = []

    # -- connection -------------------------------------------------------------------------------

    @property
    def revision(self) -> Revision:
        if self._conn.revision is None:
            raise LocalProtocolError("the client is not connected")
        return self._conn.revision

    @property
    def era(self) -> str:
        return self.revision.era

    @property
    def protocol_version(self) -> str:
        return self.revision.version

    @property
    def server_info(self) -> dict[str, Any]:
        return self._conn.server_info

    @property
    def server_capabilities(self) -> dict[str, Any]:
        return self._conn.server_capabilities

    @property
    def instructions(self) -> str | None:
        return self._conn.instructions

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _open_stream(self) -> MessageStream:
        target = self._target
        if isinstance(target, _Servable):
            from anyport.transports.memory import memory_pair

            client_end, server_end = memory_pair()
            self._server_task = asyncio.get_running_loop().create_task(target.serve(server_end))
            return client_end
        if isinstance(target, str):
            if not target.lower().startswith(("http://", "https://")):
                raise ValueError(f"not an http:// or https:// URL: {target!r}; pass a command list for stdio")
            from anyport.transports.http_client import StreamableHTTPClientStream

            return StreamableHTTPClientStream(target)
        if isinstance(target, Sequence):
            from anyport.transports.stdio import StdioClientStream

            stream = StdioClientStream([str(p) for p in target], env=self._env, cwd=self._cwd)
            await stream.start()
            return stream
        return target

    async def connect(self) -> None:
        stream = await self._open_stream()
        handlers = {
            "elicitation/create": self._handle_elicit,
            "sampling/createMessage": self._handle_sample,
            "roots/list": self._handle_roots,
        }
        self._session = ClientSession(stream, self._conn, request_handlers=handlers, notification_handler=self._notified)
        self._session.start()
        try:
            await self._handshake()
        except BaseException:
            await self.aclose()
            raise

    async def _handshake(self) -> None:
        era = self._era_wanted
        if era == "legacy" or (self._version_wanted in LEGACY_VERSIONS):
            await self._initialize()
            return
        if era == "modern":
            await self._discover(strict=True)
            return
        if not await self._discover(strict=False):
            await self._initialize()

    async def _discover(self, *, strict: bool) -> bool:
        """Probe ``server/discover`` (T-STDIO-15). True when the server is modern."""
        assert self._session is not None
        version = self._version_wanted or MODERN_VERSIONS[-1]
        params = {"_meta": self._conn.modern_meta(version)}
        try:
            result = await self._session.request(
                "server/discover", params, timeout=self.probe_timeout, cancel_on_timeout=False
            )
        except UnsupportedProtocolVersionError as exc:
            usable = [v for v in exc.supported if v in MODERN_VERSIONS]
            if not usable:
                if strict:
                    raise
                return False
            # A modern server that speaks another modern version: retry with it, never fall back.
            self._version_wanted = usable[-1]
            return await self._discover(strict=True)
        except JSONRPCError as exc:
            if strict or exc.code in _MODERN_ERROR_CODES:
                raise
            return False
        except RequestTimeoutError:
            if strict:
                raise
            return False
        self._conn.accept_discover(result, (version,))
        return True

    async def _initialize(self) -> None:
        assert self._session is not None
        version = self._version_wanted or LEGACY_VERSIONS[-1]
        result = await self._session.request("initialize", self._conn.initialize_params(version), timeout=self.timeout)
        self._conn.accept_initialize(result)  # L-06: a version we cannot speak ends the connection
        await self._session.notify("notifications/initialized")  # L-08
        if self._conn.log_level is not None:
            await self._session.request("logging/setLevel", {"level": self._conn.log_level}, timeout=self.timeout)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.aclose()
        if self._server_task is not None:
            self._server_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._server_task

    # -- server -> client ------------------------------------------------------------------------------

    async def _handle_elicit(self, params: dict[str, Any]) -> Any:
        if self._on_elicit is None:
            raise JSONRPCError("this client does not handle elicitation", code=-32601)
        result = await _call(self._on_elicit, params)
        return _plain(result)

    async def _handle_sample(self, params: dict[str, Any]) -> Any:
        if self._on_sample is None:
            raise JSONRPCError("this client does not handle sampling", code=-32601)
        return _plain(await _call(self._on_sample, params))

    async def _handle_roots(self, params: dict[str, Any]) -> Any:
        if self._on_list_roots is None:
            raise JSONRPCError("this client has no roots", code=-32601)
        roots = await _call(self._on_list_roots)
        return {"roots": [{"uri": r} if isinstance(r, str) else dict(r) for r in roots]}

    def _notified(self, method: str, params: dict[str, Any]) -> Any:
        if method == "notifications/message" and self._on_log is not None:
            return self._on_log(params)
        if self._on_notification is not None:
            return self._on_notification(method, params)
        return None

    # -- requests ------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Send any request; on 2026-07-28 the ``_meta`` is added and MRTR rounds are answered."""
        session = self._session
        if session is None:
            raise LocalProtocolError("the client is not connected")
        rev = self.revision
        params = dict(params or {})
        if rev.modern:
            meta = dict(params.get("_meta") or {})
            meta.update(self._conn.modern_meta())
            params["_meta"] = meta
        t = self.timeout if timeout is None else timeout
        for _ in range(_MAX_INPUT_ROUNDS):
            result = await session.request(method, params, timeout=t, on_progress=on_progress)
            if not isinstance(result, dict):
                raise RemoteProtocolError(f"{method}: the result is not an object")
            kind = result.get("resultType", "complete")
            if kind == "complete" or not rev.modern:
                return result
            if kind != "input_required":
                raise RemoteProtocolError(f"{method}: unknown resultType {kind!r}")  # J-16
            params = await self._next_round(params, result)
        raise RemoteProtocolError(f"{method}: the server kept asking for input ({_MAX_INPUT_ROUNDS} rounds)")

    async def _next_round(self, params: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """Answer every input request, then retry with a new id (M-18)."""
        asked = result.get("inputRequests") or {}
        if not isinstance(asked, dict):
            raise RemoteProtocolError("inputRequests is not an object")
        answers: dict[str, Any] = {}
        for key, req in asked.items():
            if not isinstance(req, dict):
                raise RemoteProtocolError(f"input request {key!r} is not an object")
            method = req.get("method")
            raw = req.get("params")
            sub: dict[str, Any] = raw if isinstance(raw, dict) else {}
            if method == "elicitation/create":
                answers[key] = await self._handle_elicit(sub)
            elif method == "sampling/createMessage":
                answers[key] = await self._handle_sample(sub)
            elif method == "roots/list":
                answers[key] = await self._handle_roots(sub)
            else:
                raise RemoteProtocolError(f"unknown input request method {method!r}")
        retry = {k: v for k, v in params.items() if k not in ("inputResponses", "requestState")}
        retry["inputResponses"] = answers
        if "requestState" in result:
            retry["requestState"] = result["requestState"]  # echoed byte for byte
        return retry

    async def _all_pages(self, method: str, key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: Any = None
        for _ in range(10_000):
            p = dict(params or {})
            if cursor is not None:
                p["cursor"] = cursor
            result = await self.request(method, p)
            page = result.get(key)
            if isinstance(page, list):
                items.extend(x for x in page if isinstance(x, dict))
            cursor = result.get("nextCursor")
            if cursor is None:  # U-14: any non-null value, even "", is a cursor
                return items
        raise RemoteProtocolError(f"{method}: pagination did not end")

    async def ping(self) -> None:
        if self.revision.modern:
            await self.request("server/discover")  # 2026-07-28 has no ping
        else:
            await self.request("ping")

    async def list_tools(self) -> list[Tool]:
        return [Tool.from_raw(t) for t in await self._all_pages("tools/list", "tools")]

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> CallToolResult:
        """Call a tool. A failing tool gives ``is_error=True`` (not an exception); protocol errors raise."""
        result = await self.request(
            "tools/call", {"name": name, "arguments": dict(arguments or {})}, timeout=timeout, on_progress=on_progress
        )
        return CallToolResult.from_raw(result)

    async def list_resources(self) -> list[Resource]:
        return [Resource.from_raw(r) for r in await self._all_pages("resources/list", "resources")]

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        return [ResourceTemplate.from_raw(r) for r in await self._all_pages("resources/templates/list", "resourceTemplates")]

    async def read_resource(self, uri: str, *, timeout: float | None = None) -> ReadResourceResult:
        result = await self.request("resources/read", {"uri": uri}, timeout=timeout)
        contents = result.get("contents")
        return ReadResourceResult(contents if isinstance(contents, list) else [], result)

    async def list_prompts(self) -> list[Prompt]:
        return [Prompt.from_raw(p) for p in await self._all_pages("prompts/list", "prompts")]

    async def get_prompt(self, name: str, arguments: Mapping[str, str] | None = None) -> GetPromptResult:
        result = await self.request("prompts/get", {"name": name, "arguments": dict(arguments or {})})
        messages = result.get("messages")
        return GetPromptResult(messages if isinstance(messages, list) else [], result.get("description"), result)

    async def complete(
        self,
        ref: Mapping[str, Any],
        argument: str,
        value: str,
        context: Mapping[str, str] | None = None,
    ) -> CompletionResult:
        """``completion/complete``; ``ref`` is ``{"type": "ref/prompt", "name": ...}`` or ``{"type": "ref/resource", "uri": ...}``."""
        params: dict[str, Any] = {"ref": dict(ref), "argument": {"name": argument, "value": value}}
        if context:
            params["context"] = {"arguments": dict(context)}
        result = await self.request("completion/complete", params)
        raw = result.get("completion")
        comp: dict[str, Any] = raw if isinstance(raw, dict) else {}
        raw_values = comp.get("values")
        values: list[Any] = raw_values if isinstance(raw_values, list) else []
        return CompletionResult([str(v) for v in values], comp.get("total"), bool(comp.get("hasMore", False)))

    async def set_logging_level(self, level: str) -> None:
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        self._conn.log_level = level
        if not self.revision.modern:
            await self.request("logging/setLevel", {"level": level})


def _plain(result: Any) -> Any:
    """Accept dataclass-like answers (``action``/``content`` attributes) as well as dicts."""
    if isinstance(result, dict):
        return result
    if hasattr(result, "action"):
        out: dict[str, Any] = {"action": result.action}
        content = getattr(result, "content", None)
        if content is not None:
            out["content"] = content.model_dump() if hasattr(content, "model_dump") else content
        return out
    return result
