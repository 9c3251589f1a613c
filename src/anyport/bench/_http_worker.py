"""One simulated MCP client over HTTP (``Worker``): its connection(s), its session, and the
requests of each kind (``stateless``, ``stateful``, ``modern``, ``sse``) built from byte templates.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import orjson

from anyport.bench._http_conn import Conn, SSEStream, answer_of
from anyport.bench._mcp import (
    CLIENT_INFO,
    LEGACY_VERSION,
    MODERN_META,
    MODERN_VERSION,
    ServerDied,
    ToolCall,
    WrongAnswer,
    short,
)

__all__ = ["Worker"]


def _message(request_id: int | None, method: str, params: dict[str, Any] | None) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        msg["id"] = request_id
    if params is not None:
        msg["params"] = params
    return orjson.dumps(msg)


_INIT_PARAMS = {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}


def _tool_call(job: dict[str, Any]) -> ToolCall:
    if "tool" not in job:
        return ToolCall()
    return ToolCall(job["tool"], job.get("arguments") or {}, job.get("expect_text"))


class Worker:
    """One simulated client: its own connection(s) and, for stateful kinds, its own session."""

    def __init__(self, job: dict[str, Any], index: int) -> None:
        self.kind: str = job["kind"]
        self.host: str = job["host"]
        self.port: int = int(job["port"])
        self.path: str = job.get("path", "/mcp")
        self.ssl: ssl.SSLContext | None = None
        if job.get("tls"):
            self.ssl = ssl.create_default_context()
            if job.get("insecure"):
                self.ssl.check_hostname = False
                self.ssl.verify_mode = ssl.CERT_NONE
        self.call = _tool_call(job)
        #: The 2025-era revision in MCP-Protocol-Version headers: what initialize agreed on.
        self.version: str = job.get("protocol_version") or LEGACY_VERSION
        self.next_id = index * 10_000_000 + 1
        self.conn: Conn | None = None
        self.stream_conn: Conn | None = None
        self.stream: SSEStream | None = None
        self.session: str | None = None
        self.post_path = self.path
        self.reply_kinds: dict[str, int] = {}
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self._host_line = f"Host: {shown}:{self.port}\r\n".encode()
        self._legacy_params = self.call.params("legacy")
        self._modern_params = self.call.params("modern")
        self._echo_extra = b""

    async def _connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        try:
            _transport, conn = await loop.create_connection(
                Conn, self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise ServerDied(f"connect to {self.host}:{self.port} failed: {exc}") from None
        return conn

    def _post(self, body: bytes, extra: bytes = b"", path: str | None = None) -> bytes:
        return b"".join((
            b"POST ", (path or self.post_path).encode(), b" HTTP/1.1\r\n", self._host_line,
            b"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n",
            b"Content-Length: ", str(len(body)).encode(), b"\r\n", extra, b"\r\n", body,
        ))

    def _legacy_headers(self) -> bytes:
        extra = b"MCP-Protocol-Version: " + self.version.encode() + b"\r\n"
        if self.session is not None:
            extra += b"Mcp-Session-Id: " + self.session.encode() + b"\r\n"
        return extra

    @staticmethod
    def _modern_headers(method: str, name: str | None) -> bytes:
        extra = b"MCP-Protocol-Version: " + MODERN_VERSION.encode() + b"\r\nMcp-Method: " + method.encode() + b"\r\n"
        if name is not None:
            extra += b"Mcp-Name: " + name.encode() + b"\r\n"
        return extra

    async def setup(self) -> None:
        self.conn = await self._connect()
        if self.kind == "stateful":
            await self.open_session()
        elif self.kind == "sse":
            await self._open_sse()
        self._echo_extra = (
            self._modern_headers("tools/call", self.call.name) if self.kind == "modern" else self._legacy_headers()
        )

    async def open_session(self) -> str:
        """initialize (2025-11-25) + notifications/initialized; returns the Mcp-Session-Id."""
        sid = await self.initialize()
        if sid is None:
            raise WrongAnswer("initialize answered without an Mcp-Session-Id header")
        return sid

    async def initialize(self) -> str | None:
        """initialize (2025-11-25) + notifications/initialized; the session id, None when stateless."""
        assert self.conn is not None
        self.session = None
        rid = self._id()
        resp = await self.conn.request(self._post(_message(rid, "initialize", _INIT_PARAMS)))
        msg, _ = answer_of(resp, rid, "initialize")
        result = msg.get("result")
        if not isinstance(result, dict):
            raise WrongAnswer(f"initialize failed: {short(msg)}")
        if isinstance(result.get("protocolVersion"), str):
            self.version = result["protocolVersion"]
        sid = resp.headers.get(b"mcp-session-id")
        self.session = sid.decode() if sid else None
        resp = await self.conn.request(self._post(_message(None, "notifications/initialized", None), self._legacy_headers()))
        if resp.status not in (200, 202, 204):
            raise WrongAnswer(f"notifications/initialized: HTTP {resp.status}: {short(resp.body)}")
        return self.session

    async def delete_session(self, sid: str) -> int:
        assert self.conn is not None
        data = b"".join((
            b"DELETE ", self.path.encode(), b" HTTP/1.1\r\n", self._host_line,
            b"MCP-Protocol-Version: ", self.version.encode(), b"\r\nMcp-Session-Id: ", sid.encode(), b"\r\n\r\n",
        ))
        resp = await self.conn.request(data)
        return resp.status

    async def list_tools(self, modern: bool, max_pages: int = 50) -> tuple[list[Any], str]:
        """Every listed tool (following ``nextCursor``) and the reply kind of the first page."""
        assert self.conn is not None
        tools: list[Any] = []
        cursor: str | None = None
        reply = ""
        for _ in range(max_pages):
            params: dict[str, Any] = {} if cursor is None else {"cursor": cursor}
            if modern:
                params["_meta"] = MODERN_META
            extra = self._modern_headers("tools/list", None) if modern else self._legacy_headers()
            rid = self._id()
            resp = await self.conn.request(self._post(_message(rid, "tools/list", params), extra))
            msg, kind = answer_of(resp, rid, "tools/list")
            reply = reply or kind
            result = msg.get("result")
            if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
                raise WrongAnswer(f"tools/list: {short(msg)}")
            tools.extend(result["tools"])
            cursor = result.get("nextCursor")
            if not cursor:
                break
        return tools, reply

    async def _open_sse(self) -> None:
        self.stream_conn = await self._connect()
        self.stream = stream = SSEStream()
        get = b"".join((
            b"GET ", self.path.encode(), b" HTTP/1.1\r\n", self._host_line, b"Accept: text/event-stream\r\n\r\n",
        ))
        done = self.stream_conn.request(get, sink=stream.feed)
        either: list[asyncio.Future[Any]] = [stream.endpoint, done]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not stream.endpoint.done():
            resp = done.result()
            raise WrongAnswer(f"GET {self.path}: HTTP {resp.status} without an endpoint event: {short(resp.body)}")
        endpoint = stream.endpoint.result().strip()
        if "://" in endpoint:
            endpoint = "/" + endpoint.split("://", 1)[1].split("/", 1)[1]
        self.post_path = endpoint
        msg = await self._sse_call(self._id(), "initialize", _INIT_PARAMS)
        if "result" not in msg:
            raise WrongAnswer(f"initialize failed: {short(msg)}")
        assert self.conn is not None
        resp = await self.conn.request(self._post(_message(None, "notifications/initialized", None)))
        if resp.status not in (200, 202, 204):
            raise WrongAnswer(f"notifications/initialized: HTTP {resp.status}: {short(resp.body)}")

    async def _sse_call(self, rid: int, method: str, params: dict[str, Any], extra: bytes = b"") -> Any:
        assert self.conn is not None and self.stream is not None
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.stream.waiting[rid] = answer
        resp = await self.conn.request(self._post(_message(rid, method, params), extra))
        if resp.status not in (200, 202):
            raise WrongAnswer(f"POST {self.post_path}: HTTP {resp.status}: {short(resp.body)}")
        return await answer

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def echo(self) -> None:
        """One ``tools/call``: request written, answer parsed and checked."""
        rid = self._id()
        if self.kind == "sse":
            msg = await self._sse_call(rid, "tools/call", self._legacy_params)
            reply = "sse-stream"
        else:
            params = self._modern_params if self.kind == "modern" else self._legacy_params
            assert self.conn is not None
            resp = await self.conn.request(self._post(_message(rid, "tools/call", params), self._echo_extra))
            msg, reply = answer_of(resp, rid, f"tools/call {self.call.name}")
        self.call.check(msg)
        self.reply_kinds[reply] = self.reply_kinds.get(reply, 0) + 1

    async def teardown(self) -> dict[str, int]:
        """DELETE the session (stateful), close the connections. Returns DELETE statuses."""
        statuses: dict[str, int] = {}
        try:
            if self.kind == "stateful" and self.session is not None and self.conn is not None and not self.conn.closed:
                status = await self.delete_session(self.session)
                statuses[str(status)] = 1
        finally:
            self.close()
        return statuses

    def close(self) -> None:
        for conn in (self.conn, self.stream_conn):
            if conn is not None:
                conn.close()
