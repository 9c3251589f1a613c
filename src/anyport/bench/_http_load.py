"""The HTTP load generator: a separate process, driven one JSON job per line.

``LoadClient`` (the parent side, used by ``bench/http.py`` and ``anyport bench URL``) starts
``python -m anyport.bench._http_load`` and writes one JSON job per line to its stdin; the process
answers one JSON result per line on stdout, so one long-lived process serves every slice of a
run (no interpreter start-up per slice, and the harness can pin it to a CPU once). Nothing here
uses an MCP SDK or an HTTP library: a minimal HTTP/1.1 client on ``asyncio.Protocol``
(keep-alive connections, Content-Length and chunked bodies, SSE events parsed from the body or,
for the 2024-11-05 transport, from a long-lived GET stream; TLS for ``https://``) writes
requests built from byte templates and parses answers with orjson. The client-side cost is
therefore the same, and small, for every server.

Jobs:

- ``run``: ``concurrency`` workers, each with its own keep-alive connection (and, for stateful
  kinds, its own session), call one tool back to back: a warm-up, then the measured phase,
  bounded by a count and by seconds. With ``server_pid`` the server's CPU (``/proc/PID/stat``,
  the process and its children) is read right before and after the measured phase. Kinds:
  ``stateless`` (2025-11-25, no handshake), ``stateful`` (initialize + initialized, then
  ``Mcp-Session-Id``; DELETE at the end), ``modern`` (2026-07-28: ``_meta`` envelope plus
  ``MCP-Protocol-Version`` / ``Mcp-Method`` / ``Mcp-Name`` headers), ``sse`` (the 2024-11-05
  HTTP+SSE transport: GET /sse, POST to the endpoint it names, answers on the stream).
- ``sessions``: open ``count`` legacy sessions (initialize + initialized) and DELETE them all,
  reading the server's VmRSS (``/proc/PID/status``) before, in between, and after.
- ``probe``: what an unknown server speaks: a 2026-07-28 ``tools/list``, then a 2025-11-25
  ``initialize`` (a session id in the answer means stateful) and ``tools/list``.

Every wait is bounded: no completed request for ``timeout`` seconds, or requests still running
``timeout`` seconds after the time budget, ends the job as "hung".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import select
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from anyport.bench._stdio import (
    CLIENT_INFO,
    LEGACY_VERSION,
    MODERN_META,
    MODERN_VERSION,
    ServerDied,
    ServerFailure,
    ServerHung,
    ToolCall,
    WrongAnswer,
    short,
)
from anyport.bench._system import file_tail, percentile, rss_kib, tree_cpu

__all__ = ["Cell", "LoadClient", "parse_url"]

_HEAD, _LEN, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _CHUNK_END, _UNTIL_CLOSE = range(7)


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Conn(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; one request at a time.

    ``request`` returns a future for the whole response. With ``sink`` the body is handed to the
    sink as it arrives instead (a long-lived SSE stream); ``head`` then resolves once the status
    line and headers are in.
    """

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport
        self.buf = bytearray()
        self.state = _HEAD
        self.remaining = 0
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.fut: asyncio.Future[Response] | None = None
        self.head: asyncio.Future[Response] | None = None
        self.sink: Callable[[bytes], None] | None = None
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.state == _UNTIL_CLOSE:
            self._complete()
        for fut in (self.head, self.fut):
            if fut is not None and not fut.done():
                fut.set_exception(ServerDied("the server closed the connection"))

    def request(self, data: bytes, sink: Callable[[bytes], None] | None = None) -> asyncio.Future[Response]:
        if self.closed or self.transport is None:
            raise ServerDied("connection already closed by the server")
        loop = asyncio.get_running_loop()
        self.fut = loop.create_future()
        self.sink = sink
        if sink is not None:
            self.head = loop.create_future()
            self.fut.add_done_callback(_retrieve)  # a stream that ends when we close it is no error
        self.transport.write(data)
        return self.fut

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            fut = self.fut
            if fut is not None and not fut.done():
                fut.set_exception(WrongAnswer(f"malformed HTTP response: {exc}"))
            self.close()

    def _feed(self, part: bytes) -> None:
        if self.sink is not None:
            self.sink(part)
        else:
            self.body += part

    def _complete(self) -> None:
        self.state = _HEAD
        fut, self.fut = self.fut, None
        self.sink = None
        if fut is not None and not fut.done():
            fut.set_result(Response(self.status, self.headers, bytes(self.body)))

    def _parse(self) -> None:
        buf = self.buf
        while buf or (self.state == _LEN and self.remaining == 0):
            state = self.state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = bytes(buf[:end]).split(b"\r\n")
                del buf[: end + 4]
                self.status = status = int(lines[0].split(b" ", 2)[1])
                headers: dict[bytes, bytes] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                self.headers = headers
                self.body = bytearray()
                if self.head is not None and not self.head.done():
                    self.head.set_result(Response(status, headers, b""))
                if status < 200:
                    continue  # 1xx: the real response follows
                if status in (204, 304):
                    self._complete()
                elif b"content-length" in headers:
                    self.remaining = int(headers[b"content-length"])
                    self.state = _LEN
                    if self.remaining == 0:
                        self._complete()
                elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                    self.state = _CHUNK_SIZE
                else:
                    self.state = _UNTIL_CLOSE
            elif state == _LEN or state == _CHUNK_DATA:
                n = min(len(buf), self.remaining)
                self._feed(bytes(buf[:n]))
                del buf[:n]
                self.remaining -= n
                if self.remaining:
                    return
                if state == _LEN:
                    self._complete()
                else:
                    self.state = _CHUNK_CRLF
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";")[0], 16)
                del buf[: end + 2]
                if size:
                    self.remaining, self.state = size, _CHUNK_DATA
                else:
                    self.state = _CHUNK_END
            elif state == _CHUNK_CRLF:
                if len(buf) < 2:
                    return
                del buf[:2]
                self.state = _CHUNK_SIZE
            elif state == _CHUNK_END:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                trailer = bytes(buf[:end])
                del buf[: end + 2]
                if not trailer:
                    self._complete()
            else:  # _UNTIL_CLOSE
                self._feed(bytes(buf))
                buf.clear()


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def sse_events(text: bytes) -> list[tuple[str, bytes]]:
    """(event name, data) of each complete event in an SSE body."""
    out = []
    for block in text.replace(b"\r\n", b"\n").split(b"\n\n"):
        name = "message"
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode()
        if data:
            out.append((name, b"\n".join(data)))
    return out


class SSEStream:
    """The incremental SSE parser of a long-lived GET stream: endpoint event + answers by id."""

    def __init__(self) -> None:
        self.buf = b""
        self.endpoint: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting: dict[Any, asyncio.Future[Any]] = {}

    def feed(self, part: bytes) -> None:
        self.buf += part.replace(b"\r\n", b"\n")
        if b"\n\n" not in self.buf:
            return
        complete, _, self.buf = self.buf.rpartition(b"\n\n")
        for name, data in sse_events(complete):
            if name == "endpoint":
                if not self.endpoint.done():
                    self.endpoint.set_result(data.decode())
                continue
            if name != "message" or not data.strip():
                continue
            msg = orjson.loads(data)
            if isinstance(msg, dict) and "method" not in msg:
                fut = self.waiting.pop(msg.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)


def answer_of(resp: Response, request_id: int, what: str) -> tuple[Any, str]:
    """The JSON-RPC answer to ``request_id`` in a 200 response (JSON or SSE) and its media type."""
    if resp.status != 200:
        raise WrongAnswer(f"{what}: HTTP {resp.status}: {short(resp.body)}")
    ctype = resp.headers.get(b"content-type", b"").split(b";")[0].strip().decode()
    if ctype == "application/json":
        msg = orjson.loads(resp.body)
        if isinstance(msg, dict) and msg.get("id") == request_id:
            return msg, "json"
        raise WrongAnswer(f"{what}: answer to another id: {short(resp.body)}")
    if ctype == "text/event-stream":
        for _name, data in sse_events(resp.body):
            if not data.strip():
                continue
            msg = orjson.loads(data)
            if isinstance(msg, dict) and "method" not in msg and msg.get("id") == request_id:
                return msg, "sse"
        raise WrongAnswer(f"{what}: no answer to id {request_id} in the event stream: {short(resp.body)}")
    raise WrongAnswer(f"{what}: unexpected Content-Type {ctype!r}: {short(resp.body)}")


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


class Progress:
    """Shared by the workers of one phase: what is left, and when the last answer came."""

    def __init__(self, count: int, seconds: float) -> None:
        self.left = count
        self.stop_at = time.perf_counter() + seconds
        self.done = 0
        self.last = time.perf_counter()


async def watched(coros: list[Coroutine[Any, Any, Any]], progress: Progress | None, timeout: float, what: str) -> list[Any]:
    """Run ``coros`` concurrently; "hung" when nothing progresses for ``timeout`` s.

    With ``progress`` the watchdog also ends the phase when requests are still running
    ``timeout`` s after its time budget; without it the whole group gets ``timeout`` s.
    """
    tasks = [asyncio.ensure_future(c) for c in coros]
    start = time.perf_counter()
    try:
        while True:
            done, pending = await asyncio.wait(tasks, timeout=0.2, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                exc = task.exception()
                if exc is not None:
                    raise exc
            if not pending:
                return [t.result() for t in tasks]
            now = time.perf_counter()
            if progress is None:
                if now - start > timeout:
                    raise ServerHung(f"{what}: not finished within {timeout:.0f} s")
            elif now - progress.last > timeout:
                raise ServerHung(f"{what}: no answer for {timeout:.0f} s ({len(pending)} requests in flight)")
            elif now > progress.stop_at + timeout:
                raise ServerHung(f"{what}: {len(pending)} requests still running {timeout:.0f} s after the time budget")
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def drive(worker: Worker, progress: Progress, latencies: list[float] | None) -> None:
    clock = time.perf_counter_ns
    while progress.left > 0 and time.perf_counter() < progress.stop_at:
        progress.left -= 1
        t0 = clock()
        await worker.echo()
        t1 = clock()
        progress.done += 1
        progress.last = time.perf_counter()
        if latencies is not None:
            latencies.append((t1 - t0) / 1000.0)


def _cpu(pid: int | None) -> list[float] | None:
    c = tree_cpu(pid) if pid else None
    return None if c is None else [c.user, c.system]


def _failure(out: dict[str, Any], exc: BaseException) -> None:
    if isinstance(exc, ServerFailure):
        out.update(ok=False, kind=exc.kind, error=str(exc))
    else:
        out.update(ok=False, kind="wrong answer", error=f"{type(exc).__name__}: {exc}")


_EXPECTED = (ServerFailure, OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError)


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    timeout = float(job["timeout"])
    concurrency = int(job["concurrency"])
    workers = [Worker(job, i) for i in range(concurrency)]
    out: dict[str, Any] = {"ok": True, "phase": "setup"}
    latencies: list[float] = []
    try:
        await watched([w.setup() for w in workers], None, timeout, "setup")
        out["phase"] = "warm-up"
        warm = Progress(int(job["warmup_count"]), float(job["warmup_seconds"]))
        await watched([drive(w, warm, None) for w in workers], warm, timeout, "warm-up")
        out["phase"] = "measure"
        pid = job.get("server_pid")
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = _cpu(pid)
        progress = Progress(int(job["count"]), float(job["seconds"]))
        t0 = time.perf_counter()
        await watched([drive(w, progress, latencies) for w in workers], progress, timeout, "measure")
        t1 = time.perf_counter()
        cpu1 = _cpu(pid)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        out.update(
            seconds=t1 - t0, done=progress.done, latencies_us=[round(x, 1) for x in latencies],
            server_cpu=None if cpu0 is None or cpu1 is None else [cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]],
            client_cpu=(ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        )
        out["phase"] = "teardown"
        statuses = await watched([w.teardown() for w in workers], None, timeout, "teardown")
        out["delete_statuses"] = _merge(statuses)
        out["phase"] = "done"
    except _EXPECTED as exc:
        _failure(out, exc)
    finally:
        for w in workers:
            w.close()
    replies: dict[str, int] = {}
    for w in workers:
        for k, v in w.reply_kinds.items():
            replies[k] = replies.get(k, 0) + v
    out["replies"] = replies
    if not out["ok"] and latencies:
        out["done_before_failure"] = len(latencies)
    return out


def _merge(dicts: list[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            merged[k] = merged.get(k, 0) + v
    return merged


async def sessions_job(job: dict[str, Any]) -> dict[str, Any]:
    """Open ``count`` idle legacy sessions, DELETE them all; the server's RSS before, during, after."""
    timeout = float(job["timeout"])
    pid = int(job["server_pid"])
    count = int(job["count"])
    settle = float(job.get("settle_seconds", 1.0))
    workers = [Worker({**job, "kind": "stateless"}, i) for i in range(int(job["concurrency"]))]
    out: dict[str, Any] = {"ok": True, "phase": "connect"}
    sids: list[str] = []

    async def opener(w: Worker, progress: Progress, into: list[str]) -> None:
        while progress.left > 0 and time.perf_counter() < progress.stop_at:
            progress.left -= 1
            into.append(await w.open_session())
            progress.done += 1
            progress.last = time.perf_counter()

    async def closer(w: Worker, todo: list[str], progress: Progress, statuses: dict[str, int]) -> None:
        while todo and time.perf_counter() < progress.stop_at:
            status = str(await w.delete_session(todo.pop()))
            statuses[status] = statuses.get(status, 0) + 1
            progress.last = time.perf_counter()

    try:
        await watched([w.setup() for w in workers], None, timeout, "connect")
        # Warm-up: open and delete a few sessions so one-time allocations are not counted per session.
        out["phase"] = "warm-up"
        warm: list[str] = []
        progress = Progress(int(job.get("warmup", 50)), timeout)
        await watched([opener(w, progress, warm) for w in workers], progress, timeout, "warm-up open")
        progress = Progress(len(warm), timeout)
        await watched([closer(w, warm, progress, {}) for w in workers], progress, timeout, "warm-up delete")
        await asyncio.sleep(settle)
        out["rss_before_kib"] = rss_kib(pid)
        out["phase"] = "open"
        t0 = time.perf_counter()
        progress = Progress(count, float(job["seconds"]))
        await watched([opener(w, progress, sids) for w in workers], progress, timeout, "open sessions")
        out["open_seconds"] = time.perf_counter() - t0
        out["opened"] = len(sids)
        await asyncio.sleep(settle)
        out["rss_open_kib"] = rss_kib(pid)
        out["phase"] = "delete"
        statuses: dict[str, int] = {}
        progress = Progress(len(sids), float(job["seconds"]))
        await watched([closer(w, sids, progress, statuses) for w in workers], progress, timeout, "delete sessions")
        out["delete_statuses"] = statuses
        out["not_deleted"] = len(sids)
        for w in workers:  # departing clients hang up: per-connection state is not session memory
            w.close()
        await asyncio.sleep(settle)
        out["rss_after_kib"] = rss_kib(pid)
        await watched([w.setup() for w in workers], None, timeout, "reconnect")
        # Open as many again: memory the server kept but reuses shows here as no growth; a leak grows.
        out["phase"] = "reopen"
        again: list[str] = []
        progress = Progress(count, float(job["seconds"]))
        await watched([opener(w, progress, again) for w in workers], progress, timeout, "reopen sessions")
        await asyncio.sleep(settle)
        out["rss_reopen_kib"] = rss_kib(pid)
        progress = Progress(len(again), float(job["seconds"]))
        await watched([closer(w, again, progress, {}) for w in workers], progress, timeout, "delete reopened sessions")
        out["phase"] = "done"
    except _EXPECTED as exc:
        _failure(out, exc)
    finally:
        for w in workers:
            w.close()
    return out


async def probe_job(job: dict[str, Any]) -> dict[str, Any]:
    """What the server at ``host:port/path`` speaks, and its tools; every step bounded by ``timeout``.

    ``modern``: a 2026-07-28 ``tools/list`` (no handshake). ``legacy``: ``initialize``
    (2025-11-25) + ``notifications/initialized`` + ``tools/list``; a ``Mcp-Session-Id`` in the
    answer means the server keeps sessions (``stateful``), and that session is DELETE-d again.
    Each step gets a fresh connection (a server may close one after an error). ``ok`` is false
    only when no step could even connect.
    """
    timeout = float(job["timeout"])
    out: dict[str, Any] = {"ok": True}

    async def modern(w: Worker) -> dict[str, Any]:
        w.conn = await w._connect()
        tools, reply = await w.list_tools(modern=True)
        return {"ok": True, "tools": tools, "reply": reply}

    async def legacy(w: Worker) -> dict[str, Any]:
        w.conn = await w._connect()
        sid = await w.initialize()
        tools, reply = await w.list_tools(modern=False)
        if sid is not None:
            with contextlib.suppress(*_EXPECTED):
                await w.delete_session(sid)
        return {"ok": True, "stateful": sid is not None, "protocol_version": w.version, "tools": tools, "reply": reply}

    connect_errors = 0
    for name, step in (("modern", modern), ("legacy", legacy)):
        w = Worker({**job, "kind": "stateless"}, 0)
        try:
            out[name] = (await watched([step(w)], None, timeout, f"{name} probe"))[0]
        except _EXPECTED as exc:
            failed: dict[str, Any] = {}
            _failure(failed, exc)
            out[name] = failed
            connect_errors += "connect to" in str(exc)
        finally:
            w.close()
    if connect_errors == 2:
        out.update(ok=False, kind="died", error=out["legacy"]["error"])
    return out


async def serve_jobs() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    jobs = {"run": run_job, "sessions": sessions_job, "probe": probe_job}
    while True:
        line = await reader.readline()
        if not line:
            return
        job = orjson.loads(line)
        handler = jobs.get(job.get("job"))
        if handler is None:
            result: dict[str, Any] = {"ok": False, "kind": "failed", "error": f"unknown job {job.get('job')!r}"}
        else:
            result = await handler(job)
        sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
        sys.stdout.buffer.flush()


def main() -> None:
    try:
        import uvloop  # the client's own loop: the same for every server, and cheaper per request
    except ImportError:
        asyncio.run(serve_jobs())
    else:
        uvloop.run(serve_jobs())


# -- the parent side -----------------------------------------------------------------------------


def parse_url(url: str) -> dict[str, Any]:
    """``http[s]://host[:port]/path[?query]`` as job fields: host, port, path, tls."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http:// or https:// URL: {url!r}")
    tls = parts.scheme == "https"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return {"host": parts.hostname, "port": parts.port or (443 if tls else 80), "path": path, "tls": tls}


class LoadClient:
    """The load-generator process: one JSON job in, one JSON result out (``run``)."""

    def __init__(self, python: str = sys.executable, env: dict[str, str] | None = None) -> None:
        self.python = python
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()
        self._buf = b""

    @property
    def command(self) -> list[str]:
        return [self.python, "-m", "anyport.bench._http_load"]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, close_fds=True,
            bufsize=0, env=self.env,
        )
        self._buf = b""

    @property
    def pid(self) -> int:
        if self.proc is None:
            self.start()
        assert self.proc is not None
        return self.proc.pid

    def run(self, job: dict[str, Any], limit: float) -> dict[str, Any]:
        """Send ``job``; its result, or a failure when none arrives within ``limit`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(orjson.dumps(job) + b"\n")
        except BrokenPipeError:
            return self._restart("the load client died")
        deadline = time.monotonic() + limit
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return self._restart(f"the load client gave no result within {limit:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return self._restart("the load client died")
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        result: dict[str, Any] = orjson.loads(line)
        return result

    def _restart(self, why: str) -> dict[str, Any]:
        tail = self.stderr_tail()
        self.stop()
        return {"ok": False, "kind": "hung", "error": f"{why}; client stderr: {tail}"}

    def stderr_tail(self, limit: int = 600) -> str:
        return file_tail(self._stderr, limit).strip()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)
        assert proc.stdout is not None
        proc.stdout.close()

    def dispose(self) -> None:
        self.stop()
        self._stderr.close()


@dataclass(slots=True)
class Cell:
    """One server in one mode at one concurrency, accumulated over its slices (``run`` results)."""

    server: str
    mode: str
    concurrency: int
    status: str = "ok"
    detail: str = ""
    requests: int = 0
    seconds: float = 0.0
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    cpu_known: bool = True
    client_cpu: float = 0.0
    slices: int = 0
    replies: dict[str, int] = field(default_factory=dict)
    latencies_us: list[float] = field(default_factory=list)
    # Folded statistics (``finish``).
    rps: float | None = None
    p50_us: float | None = None
    p90_us: float | None = None
    p99_us: float | None = None
    mean_us: float | None = None
    cpu_us_per_req: float | None = None
    client_cpu_us_per_req: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def reply(self) -> str:
        return "/".join(sorted(self.replies)) or "—"

    def add(self, result: dict[str, Any]) -> None:
        self.slices += 1
        self.requests += int(result["done"])
        self.seconds += float(result["seconds"])
        self.latencies_us.extend(result["latencies_us"])
        cpu = result.get("server_cpu")
        if cpu is None:
            self.cpu_known = False
        else:
            self.cpu_user += cpu[0]
            self.cpu_sys += cpu[1]
        self.client_cpu += float(result["client_cpu"])
        for k, v in result.get("replies", {}).items():
            self.replies[k] = self.replies.get(k, 0) + v

    def fail(self, result: dict[str, Any]) -> None:
        self.status = f"{result.get('kind', 'failed')} during {result.get('phase', '?')}"
        self.detail = str(result.get("error", ""))

    def finish(self) -> None:
        if not self.requests or not self.seconds:
            return
        self.rps = self.requests / self.seconds
        ordered = sorted(self.latencies_us)
        self.p50_us, self.p90_us, self.p99_us = (percentile(ordered, q) for q in (50, 90, 99))
        self.mean_us = statistics.fmean(ordered)
        if self.cpu_known:
            self.cpu_us_per_req = (self.cpu_user + self.cpu_sys) / self.requests * 1e6
        self.client_cpu_us_per_req = self.client_cpu / self.requests * 1e6


def run_job_fields(
    *, kind: str, target: dict[str, Any], concurrency: int, warmup_count: int, warmup_seconds: float, count: int,
    seconds: float, timeout: float, server_pid: int | None, call: ToolCall | None = None,
    protocol_version: str | None = None,
) -> dict[str, Any]:
    """A ``run`` job for ``LoadClient.run``; ``target`` holds host, port, path (and tls, insecure)."""
    job: dict[str, Any] = {
        "job": "run", "kind": kind, **target, "concurrency": concurrency, "warmup_count": warmup_count,
        "warmup_seconds": warmup_seconds, "count": count, "seconds": seconds, "timeout": timeout,
        "server_pid": server_pid,
    }
    if protocol_version is not None:
        job["protocol_version"] = protocol_version
    if call is not None:
        job.update(tool=call.name, arguments=dict(call.arguments), expect_text=call.expect_text)
    return job


def run_limit(job: dict[str, Any]) -> float:
    """How long the parent waits for a ``run`` job's result before giving up on the client."""
    return 4 * float(job["timeout"]) + float(job["seconds"]) + float(job["warmup_seconds"]) + 10


def concurrencies(text: str) -> Sequence[int]:
    """``"1,16,64"`` -> (1, 16, 64); raises ValueError on anything but positive integers."""
    values = tuple(int(x) for x in text.split(",") if x.strip())
    if not values or min(values) < 1:
        raise ValueError(f"concurrency levels are positive integers: {text!r}")
    return values


if __name__ == "__main__":
    main()
