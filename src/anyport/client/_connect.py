"""How a ``Client`` reaches its server: the transport, the era, the handshake, session renewal.

The target picks the transport: a command list spawns a stdio server, a ``Server`` in this
process is served over an in-memory pair, a ``MessageStream`` is used as is, and an
``http(s)://`` URL speaks Streamable HTTP, falling back to the 2024-11-05 HTTP+SSE transport
when the ``initialize`` POST is refused the way an old server refuses it (T-BC-02..05). The era
is detected with a ``server/discover`` probe (T-STDIO-15/16) before ``initialize``. A legacy
HTTP session the server forgot is replaced by a new one, once for all waiting requests (T-HTTP-40).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from anyport._exceptions import (
    JSONRPCError,
    NotAnSSEEndpointError,
    RequestTimeoutError,
    TransportError,
    UnsupportedProtocolVersionError,
)
from anyport.client._session import ClientSession, RequestHandler
from anyport.protocol import LEGACY_VERSIONS, MODERN_VERSIONS, ClientConnection
from anyport.runtime import MessageStream

if TYPE_CHECKING:
    import httpx

__all__ = ["Connector", "Servable"]

_MODERN_ERROR_CODES = frozenset({-32020, -32021, -32022})


@runtime_checkable
class Servable(Protocol):
    """A server in this process (``anyport.Server``): the client talks to it over a memory pair."""

    async def serve(self, stream: MessageStream) -> None: ...


class Connector:
    """The link of one ``Client`` to its server: it opens the transport and holds the session."""

    def __init__(
        self,
        target: str | Sequence[str] | Servable | MessageStream,
        conn: ClientConnection,
        request_handlers: Mapping[str, RequestHandler],
        notification_handler: Callable[[str, dict[str, Any]], Any],
        *,
        era: str,
        protocol_version: str | None,
        timeout: float | None,
        probe_timeout: float,
        env: Mapping[str, str] | None,
        cwd: str | None,
        transport: str,
        headers: Mapping[str, str] | None,
        httpx_client: httpx.AsyncClient | None,
        listen: bool | Literal["auto"],
        auth: httpx.Auth | None = None,
    ) -> None:
        self._target = target
        self._conn = conn
        self._request_handlers = request_handlers
        self._notification_handler = notification_handler
        self._era_wanted = era
        self._version_wanted = protocol_version
        #: Default seconds per request (the handshake's too); ``probe_timeout`` bounds the era probe.
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self._env = env
        self._cwd = cwd
        self._transport_wanted = transport
        self._http_headers = dict(headers or {})
        self._httpx_client = httpx_client
        self._listen: bool | Literal["auto"] = listen
        self._auth = auth
        self._renew_lock = asyncio.Lock()
        self._server_task: asyncio.Task[None] | None = None
        #: The session with the server (None before ``connect()``); replaced when renewed.
        self.session: ClientSession | None = None
        #: The transport in use for a URL target: "streamable-http" or "sse" (None otherwise).
        self.transport: str | None = None

    # -- transports -------------------------------------------------------------------------------

    async def _open_stream(self) -> MessageStream:
        target = self._target
        if isinstance(target, Servable):
            from anyport.transports.memory import memory_pair

            client_end, server_end = memory_pair()
            self._server_task = asyncio.get_running_loop().create_task(target.serve(server_end))
            return client_end
        if isinstance(target, str):
            if not target.lower().startswith(("http://", "https://")):
                raise ValueError(f"not an http:// or https:// URL: {target!r}; pass a command list for stdio")
            return self._streamable_stream(target)
        if isinstance(target, Sequence):
            from anyport.transports.stdio import StdioClientStream

            stream = StdioClientStream([str(p) for p in target], env=self._env, cwd=self._cwd)
            await stream.start()
            return stream
        if not all(callable(getattr(target, name, None)) for name in ("send", "receive", "aclose")):
            raise TypeError(
                f"Client() takes a server (anyport.Server), an http(s):// URL, a command list or a message stream, "
                f"not {type(target).__name__}" + (" (an ASGI app: serve it and pass its URL)" if callable(target) else "")
            )
        return target

    def _streamable_stream(self, url: str) -> MessageStream:
        from anyport.transports.http.client import StreamableHTTPClientStream

        self.transport = "streamable-http"
        return StreamableHTTPClientStream(
            url, headers=self._http_headers, httpx_client=self._httpx_client, listen=self._listen, auth=self._auth
        )

    async def _sse_stream(self, url: str) -> MessageStream:
        """GET ``url`` and read its ``endpoint`` event; raises ``NotAnSSEEndpointError`` when it is none."""
        from anyport.transports.http.sse_client import LegacySSEClientStream

        stream = LegacySSEClientStream(
            url, headers=self._http_headers, httpx_client=self._httpx_client, endpoint_timeout=self.probe_timeout,
            auth=self._auth,
        )
        await stream.start()
        self.transport = "sse"
        return stream

    def _start_session(self, stream: MessageStream) -> None:
        self.session = ClientSession(
            stream, self._conn, request_handlers=self._request_handlers, notification_handler=self._notification_handler
        )
        self.session.start()

    # -- connecting -------------------------------------------------------------------------------

    async def connect(self) -> None:
        target = self._target
        try:
            if isinstance(target, str) and target.lower().startswith(("http://", "https://")):
                await self._connect_http(target)
                return
            self._start_session(await self._open_stream())
            await self._handshake()
        except BaseException:
            await self.aclose()
            raise

    async def _connect_http(self, url: str) -> None:
        """Streamable HTTP, or the 2024-11-05 HTTP+SSE transport (T-BC-02..05)."""
        prepare = getattr(self._auth, "prepare", None)  # e.g. anyport.oauth: a browser login before any request
        if prepare is not None:
            await prepare(url)
        wanted = self._transport_wanted
        hinted = wanted == "auto" and self._era_wanted != "modern" and urlsplit(url).path.rstrip("/").endswith("/sse")
        if wanted == "sse" or hinted:
            try:
                self._start_session(await self._sse_stream(url))
            except NotAnSSEEndpointError:
                if wanted == "sse":
                    raise
            else:
                await self._initialize()  # HTTP+SSE predates the 2026-07-28 era
                return
        self._start_session(self._streamable_stream(url))
        try:
            await self._handshake()
        except (JSONRPCError, TransportError) as exc:
            if wanted != "auto" or self._era_wanted == "modern" or not self._refused_like_an_old_server():
                raise
            try:
                sse = await self._sse_stream(url)
            except TransportError:
                raise exc from None  # not an HTTP+SSE server either: the first answer is the useful one
            assert self.session is not None
            await self.session.aclose()
            self._start_session(sse)
            await self._initialize()

    def _refused_like_an_old_server(self) -> bool:
        from anyport.transports.http.client import StreamableHTTPClientStream

        stream = self.session.stream if self.session is not None else None
        if not isinstance(stream, StreamableHTTPClientStream) or stream.initialize_refusal is None:
            return False
        return stream.initialize_refusal.suggests_sse(self._version_wanted or LEGACY_VERSIONS[-1])

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
        assert self.session is not None
        version = self._version_wanted or MODERN_VERSIONS[-1]
        params = {"_meta": self._conn.modern_meta(version)}
        try:
            result = await self.session.request(
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
        assert self.session is not None
        version = self._version_wanted or LEGACY_VERSIONS[-1]
        result = await self.session.request("initialize", self._conn.initialize_params(version), timeout=self.timeout)
        self._conn.accept_initialize(result)  # L-06: a version we cannot speak ends the connection
        await self.session.notify("notifications/initialized")  # L-08
        if self._conn.log_level is not None:
            await self.session.request("logging/setLevel", {"level": self._conn.log_level}, timeout=self.timeout)

    async def renew(self, old: ClientSession) -> ClientSession:
        """T-HTTP-40: the server forgot our session: ``initialize`` anew (once for all waiters)."""
        async with self._renew_lock:
            if self.session is not old and self.session is not None:
                return self.session  # another request already renewed it
            assert isinstance(self._target, str)
            await old.aclose()
            self._start_session(self._streamable_stream(self._target))
            await self._initialize()
            assert self.session is not None
            return self.session

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.aclose()
        if self._server_task is not None:
            self._server_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._server_task
