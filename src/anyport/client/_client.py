"""``Client``: one object for every server, transport and revision.

``Client(["python", "server.py"])`` spawns a stdio server; ``Client(app)`` connects to a
``Server`` in this process; ``Client(stream)`` uses any ``MessageStream``. On connect the client
detects the era (T-STDIO-15): it probes ``server/discover`` with 2026-07-28 ``_meta``; a discover
result, or a recognised modern error, means modern; any other answer or silence means legacy,
and it falls back to ``initialize`` (never keyed to one error code: T-STDIO-16).

Over HTTP (``Client("http://...")``) the same probe runs over Streamable HTTP; a legacy session
also listens on the standalone GET stream (``listen``, T-HTTP-19..22). When the
``initialize`` POST is refused the way an old server refuses it (T-BC-03: 400/404/405 for
2025-11-25, any 4xx but 401/403 before; never with a modern JSON-RPC error body, T-BC-05), or
answered with an ``endpoint`` event (T-BC-04), the client GETs the same URL and, if the stream
opens with an ``endpoint`` event, speaks the 2024-11-05 HTTP+SSE transport from then on.
``transport="sse"`` goes there directly, and a URL ending in ``/sse`` tries it first.

A legacy session the server forgot (404 to a request carrying its id) is replaced once: a new
``initialize`` without the session id, then the failed request is sent again (T-HTTP-40). A
``tools/call`` refused with -32020 re-reads ``tools/list`` (so the ``Mcp-Param-*`` headers follow
the current schemas) and is sent once more (T-H26-19).

``Client`` holds the request API; connecting (transport, era, handshake, renewal) is its
``Connector`` (``_connect``), the answers to the server's questions its ``Callbacks`` (``_callbacks``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from anyport._exceptions import (
    HeaderMismatchError,
    LocalProtocolError,
    RemoteProtocolError,
    SessionTerminatedError,
    TransportError,
)
from anyport.client._callbacks import Callbacks
from anyport.client._connect import Connector, Servable
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
from anyport.observe._tracing import inject_meta
from anyport.protocol import (
    LEGACY_VERSIONS,
    LOG_LEVELS,
    MODERN_VERSIONS,
    ClientConnection,
    Revision,
)
from anyport.runtime import MessageStream

if TYPE_CHECKING:
    import httpx

__all__ = ["Client"]

_TRANSPORTS = ("auto", "streamable-http", "sse")

_MAX_INPUT_ROUNDS = 16


def _version() -> str:
    import importlib.metadata  # here, not at the top: it costs ~25 ms of every import of anyport

    try:
        return importlib.metadata.version("anyport")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "0"


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
        transport: for a URL: ``"auto"`` (Streamable HTTP, falling back to the 2024-11-05
            HTTP+SSE transport; a URL ending in ``/sse`` tries HTTP+SSE first),
            ``"streamable-http"`` or ``"sse"``.
        headers: extra HTTP headers for every request to a URL (e.g. ``Authorization``).
        httpx_client: an ``httpx.AsyncClient`` to send them with (not closed by the client).
        auth: an ``httpx.Auth`` for every HTTP request to the server (POSTs, SSE GET streams,
            DELETE, both HTTP transports), e.g. ``anyport.oauth.OAuth()`` (OAuth 2.1, docs/oauth-client.md).
            Without it a 401 raises ``AuthRequiredError``. Not with ``httpx_client`` (give that
            client its ``auth`` instead).
        listen: Streamable HTTP, legacy era: the standalone GET stream on which the server sends
            requests and notifications nobody asked for (T-HTTP-19..22); they reach the handlers
            above like those on a request's stream. ``"auto"`` opens it after the handshake when
            the capabilities exchanged allow such messages, ``True`` always, ``False`` never. A
            server without one (405) costs one GET; a dropped stream is resumed with
            ``Last-Event-ID``; ``aclose()`` ends it. Never on 2026-07-28 (``subscriptions/listen``
            plays that role) nor on the 2024-11-05 HTTP+SSE transport (its one GET is the stream).

    Example:
        async with Client(["python", "server.py"]) as c:
            print(await c.list_tools())
            result = await c.call_tool("add", {"a": 1, "b": 2})
    """

    def __init__(
        self,
        target: str | Sequence[str] | Servable | MessageStream,
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
        transport: str = "auto",
        headers: Mapping[str, str] | None = None,
        httpx_client: httpx.AsyncClient | None = None,
        listen: bool | Literal["auto"] = "auto",
        auth: httpx.Auth | None = None,
    ) -> None:
        if era not in ("auto", "modern", "legacy"):
            raise ValueError("era is 'auto', 'modern' or 'legacy'")
        if listen not in (True, False, "auto"):
            raise ValueError("listen is True, False or 'auto'")
        if transport not in _TRANSPORTS:
            raise ValueError(f"transport is one of {', '.join(map(repr, _TRANSPORTS))}")
        if transport == "sse" and era == "modern":
            raise ValueError("the 2024-11-05 HTTP+SSE transport has no 2026-07-28 era; use era='legacy' or 'auto'")
        if auth is not None and httpx_client is not None:
            raise ValueError("pass auth= or httpx_client=, not both (an httpx client carries its own auth)")
        if auth is not None and not (isinstance(target, str) and target.lower().startswith(("http://", "https://"))):
            raise ValueError("auth= applies to http(s):// URLs only (stdio servers take credentials from their environment)")
        if log_level is not None and log_level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {log_level!r}")
        if protocol_version is not None and protocol_version not in (*LEGACY_VERSIONS, *MODERN_VERSIONS):
            raise ValueError(f"unknown protocol version {protocol_version!r}")
        self._callbacks = Callbacks(
            on_elicit=on_elicit, on_sample=on_sample, on_list_roots=on_list_roots, roots=roots,
            on_log=on_log, on_notification=on_notification,
        )
        info = dict(client_info) if client_info else {"name": "anyport", "version": _version()}
        self._conn = ClientConnection(client_info=info, capabilities=self._callbacks.capabilities, log_level=log_level)
        self._link = Connector(
            target, self._conn, self._callbacks.requests, self._callbacks.notified,
            era=era, protocol_version=protocol_version, timeout=timeout, probe_timeout=probe_timeout,
            env=env, cwd=cwd, transport=transport, headers=headers, httpx_client=httpx_client, listen=listen,
            auth=auth,
        )

    # -- connection -------------------------------------------------------------------------------

    @property
    def timeout(self) -> float | None:
        """Default seconds per request (``timeout=`` of the constructor)."""
        return self._link.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._link.timeout = value

    @property
    def probe_timeout(self) -> float:
        """Seconds the era probe (``server/discover``) and an HTTP+SSE ``endpoint`` event are waited for."""
        return self._link.probe_timeout

    @probe_timeout.setter
    def probe_timeout(self, value: float) -> None:
        self._link.probe_timeout = value

    @property
    def transport(self) -> str | None:
        """The transport in use for a URL target: "streamable-http" or "sse" (None otherwise)."""
        return self._link.transport

    @property
    def _session(self) -> ClientSession | None:
        """The current session (the raw JSON-RPC session, e.g. for tests that play a misbehaving client)."""
        return self._link.session

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

    async def connect(self) -> None:
        await self._link.connect()

    async def aclose(self) -> None:
        await self._link.aclose()

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
        link = self._link
        session = link.session
        if session is None:
            raise LocalProtocolError("the client is not connected")
        rev = self.revision
        params = inject_meta(dict(params or {}))  # an active OTel span is the server span's parent (SEP-414)
        if rev.modern:
            meta = dict(params.get("_meta") or {})
            meta.update(self._conn.modern_meta())
            params["_meta"] = meta
        t = link.timeout if timeout is None else timeout
        renewed = False
        for _ in range(_MAX_INPUT_ROUNDS):
            try:
                result = await session.request(method, params, timeout=t, on_progress=on_progress)
            except TransportError as exc:
                if renewed:
                    raise
                renewed = True
                if link.session is not None and session is not link.session:
                    session = link.session  # another request already replaced the session
                    continue
                if not isinstance(exc, SessionTerminatedError):  # T-HTTP-40: the server forgot the session
                    raise
                session = await link.renew(session)
                continue
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
            handler = self._callbacks.requests.get(method) if isinstance(method, str) else None
            if handler is None:
                raise RemoteProtocolError(f"unknown input request method {method!r}")
            answers[key] = await handler(sub)
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
        params = {"name": name, "arguments": dict(arguments or {})}
        try:
            result = await self.request("tools/call", params, timeout=timeout, on_progress=on_progress)
        except HeaderMismatchError:
            if self.transport != "streamable-http" or not self.revision.modern:
                raise
            # T-H26-19: our Mcp-Param-* headers may follow an old schema: re-read tools/list, retry once.
            await self.list_tools()
            result = await self.request("tools/call", params, timeout=timeout, on_progress=on_progress)
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
