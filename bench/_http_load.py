"""Load generator of the HTTP benchmark: a separate process driven by ``bench/http.py``.

It reads one JSON job per line on stdin and writes one JSON result per line on stdout, so one
long-lived process serves every slice of a run (no interpreter start-up per slice, and the
harness can pin it to a CPU once). Nothing here uses an MCP SDK or an HTTP library: a minimal
HTTP/1.1 client on ``asyncio.Protocol`` (keep-alive connections, Content-Length and chunked
bodies, SSE events parsed from the body or, for the 2024-11-05 transport, from a long-lived
GET stream) writes requests built from byte templates and parses answers with orjson. The
client-side cost is therefore the same, and small, for every server.

Jobs:

- ``run``: ``concurrency`` workers, each with its own keep-alive connection (and, for stateful
  kinds, its own session), call ``tools/call echo`` back to back: a warm-up, then the measured
  phase, bounded by a count and by seconds. The server's CPU (``/proc/PID/stat``, all threads)
  is read right before and after the measured phase. Kinds: ``stateless`` (legacy era, no
  handshake), ``stateful`` (initialize + initialized, then ``Mcp-Session-Id``; DELETE at the
  end), ``modern`` (2026-07-28: ``_meta`` envelope plus ``MCP-Protocol-Version`` /
  ``Mcp-Method`` / ``Mcp-Name`` headers), ``sse`` (the 2024-11-05 HTTP+SSE transport: GET /sse,
  POST /messages/, answers on the stream).
- ``sessions``: open ``count`` legacy sessions (initialize + initialized) and DELETE them all,
  reading the server's VmRSS (``/proc/PID/status``) before, in between, and after.

Every wait is bounded: no completed request for ``timeout`` seconds, or requests still running
``timeout`` seconds after the time budget, ends the job as "hung".
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from _common import (
    CLIENT_INFO,
    ECHO_TEXT,
    LEGACY_VERSION,
    MODERN_META,
    MODERN_VERSION,
    ServerDied,
    ServerFailure,
    ServerHung,
    WrongAnswer,
    check_echo,
    process_cpu,
)

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
        self.transport: Any = None
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

    def connection_made(self, transport: Any) -> None:  # uvloop's transports are not asyncio.Transport
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


def _short(value: Any, limit: int = 300) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def answer_of(resp: Response, request_id: int, what: str) -> tuple[Any, str]:
    """The JSON-RPC answer to ``request_id`` in a 200 response (JSON or SSE) and its media type."""
    if resp.status != 200:
        raise WrongAnswer(f"{what}: HTTP {resp.status}: {_short(resp.body)}")
    ctype = resp.headers.get(b"content-type", b"").split(b";")[0].strip().decode()
    if ctype == "application/json":
        msg = orjson.loads(resp.body)
        if isinstance(msg, dict) and msg.get("id") == request_id:
            return msg, "json"
        raise WrongAnswer(f"{what}: answer to another id: {_short(resp.body)}")
    if ctype == "text/event-stream":
        for _name, data in sse_events(resp.body):
            if not data.strip():
                continue
            msg = orjson.loads(data)
            if isinstance(msg, dict) and "method" not in msg and msg.get("id") == request_id:
                return msg, "sse"
        raise WrongAnswer(f"{what}: no answer to id {request_id} in the event stream: {_short(resp.body)}")
    raise WrongAnswer(f"{what}: unexpected Content-Type {ctype!r}: {_short(resp.body)}")


def _message(request_id: int | None, method: str, params: dict[str, Any] | None) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        msg["id"] = request_id
    if params is not None:
        msg["params"] = params
    return orjson.dumps(msg)


_ECHO_PARAMS = {"name": "echo", "arguments": {"text": ECHO_TEXT}}
_MODERN_ECHO_PARAMS = {**_ECHO_PARAMS, "_meta": MODERN_META}
_INIT_PARAMS = {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}


class Worker:
    """One simulated client: its own connection(s) and, for stateful kinds, its own session."""

    def __init__(self, job: dict[str, Any], index: int) -> None:
        self.kind: str = job["kind"]
        self.host: str = job["host"]
        self.port: int = job["port"]
        self.path: str = job.get("path", "/mcp")
        self.next_id = index * 10_000_000 + 1
        self.conn: Conn | None = None
        self.stream_conn: Conn | None = None
        self.stream: SSEStream | None = None
        self.session: str | None = None
        self.post_path = self.path
        self.reply_kinds: dict[str, int] = {}
        self._host_line = f"Host: {self.host}:{self.port}\r\n".encode()

    async def _connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        try:
            _transport, conn = await loop.create_connection(Conn, self.host, self.port)
        except OSError as exc:
            raise ServerDied(f"connect failed: {exc}") from None
        return conn

    def _post(self, body: bytes, extra: bytes = b"", path: str | None = None) -> bytes:
        return b"".join((
            b"POST ", (path or self.post_path).encode(), b" HTTP/1.1\r\n", self._host_line,
            b"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n",
            b"Content-Length: ", str(len(body)).encode(), b"\r\n", extra, b"\r\n", body,
        ))

    def _legacy_headers(self) -> bytes:
        extra = b"MCP-Protocol-Version: " + LEGACY_VERSION.encode() + b"\r\n"
        if self.session is not None:
            extra += b"Mcp-Session-Id: " + self.session.encode() + b"\r\n"
        return extra

    async def setup(self) -> None:
        self.conn = await self._connect()
        if self.kind == "stateful":
            await self.open_session()
        elif self.kind == "sse":
            await self._open_sse()
        self._echo_extra = (
            b"MCP-Protocol-Version: " + MODERN_VERSION.encode() + b"\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n"
            if self.kind == "modern" else self._legacy_headers()
        )

    async def open_session(self) -> str:
        """initialize (2025-11-25) + notifications/initialized; returns the Mcp-Session-Id."""
        assert self.conn is not None
        self.session = None
        rid = self._id()
        resp = await self.conn.request(self._post(_message(rid, "initialize", _INIT_PARAMS)))
        msg, _ = answer_of(resp, rid, "initialize")
        if "result" not in msg:
            raise WrongAnswer(f"initialize failed: {_short(orjson.dumps(msg))}")
        sid = resp.headers.get(b"mcp-session-id")
        if not sid:
            raise WrongAnswer("initialize answered without an Mcp-Session-Id header")
        self.session = sid.decode()
        resp = await self.conn.request(self._post(_message(None, "notifications/initialized", None), self._legacy_headers()))
        if resp.status not in (200, 202, 204):
            raise WrongAnswer(f"notifications/initialized: HTTP {resp.status}: {_short(resp.body)}")
        return self.session

    async def delete_session(self, sid: str) -> int:
        assert self.conn is not None
        data = b"".join((
            b"DELETE ", self.path.encode(), b" HTTP/1.1\r\n", self._host_line,
            b"MCP-Protocol-Version: ", LEGACY_VERSION.encode(), b"\r\nMcp-Session-Id: ", sid.encode(), b"\r\n\r\n",
        ))
        resp = await self.conn.request(data)
        return resp.status

    async def _open_sse(self) -> None:
        self.stream_conn = await self._connect()
        self.stream = stream = SSEStream()
        get = b"".join((
            b"GET ", self.path.encode(), b" HTTP/1.1\r\n", self._host_line, b"Accept: text/event-stream\r\n\r\n",
        ))
        done = self.stream_conn.request(get, sink=stream.feed)
        await asyncio.wait([stream.endpoint, done], return_when=asyncio.FIRST_COMPLETED)
        if not stream.endpoint.done():
            resp = done.result()
            raise WrongAnswer(f"GET {self.path}: HTTP {resp.status} without an endpoint event: {_short(resp.body)}")
        endpoint = stream.endpoint.result().strip()
        if "://" in endpoint:
            endpoint = "/" + endpoint.split("://", 1)[1].split("/", 1)[1]
        self.post_path = endpoint
        msg = await self._sse_call(self._id(), "initialize", _INIT_PARAMS)
        if "result" not in msg:
            raise WrongAnswer(f"initialize failed: {_short(orjson.dumps(msg))}")
        resp = await self.conn.request(self._post(_message(None, "notifications/initialized", None)))  # type: ignore[union-attr]
        if resp.status not in (200, 202, 204):
            raise WrongAnswer(f"notifications/initialized: HTTP {resp.status}: {_short(resp.body)}")

    async def _sse_call(self, rid: int, method: str, params: dict[str, Any], extra: bytes = b"") -> Any:
        assert self.conn is not None and self.stream is not None
        answer = asyncio.get_running_loop().create_future()
        self.stream.waiting[rid] = answer
        resp = await self.conn.request(self._post(_message(rid, method, params), extra))
        if resp.status not in (200, 202):
            raise WrongAnswer(f"POST {self.post_path}: HTTP {resp.status}: {_short(resp.body)}")
        return await answer

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def echo(self) -> None:
        """One ``tools/call echo``: request written, answer parsed and checked."""
        rid = self._id()
        if self.kind == "sse":
            msg = await self._sse_call(rid, "tools/call", _ECHO_PARAMS)
            reply = "sse-stream"
        else:
            params = _MODERN_ECHO_PARAMS if self.kind == "modern" else _ECHO_PARAMS
            assert self.conn is not None
            resp = await self.conn.request(self._post(_message(rid, "tools/call", params), self._echo_extra))
            msg, reply = answer_of(resp, rid, "tools/call echo")
        check_echo(msg)
        self.reply_kinds[reply] = self.reply_kinds.get(reply, 0) + 1

    async def teardown(self) -> dict[str, int]:
        """DELETE the session (stateful), close the connections. Returns DELETE statuses."""
        statuses: dict[str, int] = {}
        try:
            if self.kind == "stateful" and self.session is not None and self.conn is not None and not self.conn.closed:
                status = await self.delete_session(self.session)
                statuses[str(status)] = 1
        finally:
            for conn in (self.conn, self.stream_conn):
                if conn is not None:
                    conn.close()
        return statuses


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
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
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


def _cpu(pid: int) -> list[float] | None:
    c = process_cpu(pid)
    return None if c is None else [c.user, c.system]


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
        pid = int(job["server_pid"])
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
    except ServerFailure as exc:
        out.update(ok=False, kind=exc.kind, error=str(exc))
    except (OSError, ValueError, orjson.JSONDecodeError) as exc:
        out.update(ok=False, kind="wrong answer", error=f"{type(exc).__name__}: {exc}")
    finally:
        for w in workers:
            for conn in (w.conn, w.stream_conn):
                if conn is not None:
                    conn.close()
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


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB (/proc/PID/status), None where unavailable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


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
        await asyncio.sleep(settle)
        out["rss_after_kib"] = rss_kib(pid)
        out["phase"] = "done"
    except ServerFailure as exc:
        out.update(ok=False, kind=exc.kind, error=str(exc))
    except (OSError, ValueError, orjson.JSONDecodeError) as exc:
        out.update(ok=False, kind="wrong answer", error=f"{type(exc).__name__}: {exc}")
    finally:
        for w in workers:
            if w.conn is not None:
                w.conn.close()
    return out


async def serve_jobs() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        job = orjson.loads(line)
        if job["job"] == "run":
            result = await run_job(job)
        elif job["job"] == "sessions":
            result = await sessions_job(job)
        else:
            result = {"ok": False, "kind": "failed", "error": f"unknown job {job['job']!r}"}
        sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
        sys.stdout.buffer.flush()


def main() -> None:
    try:
        import uvloop  # the client's own loop: the same for every server, and cheaper per request
    except ImportError:
        asyncio.run(serve_jobs())
    else:
        uvloop.run(serve_jobs())


if __name__ == "__main__":
    main()
