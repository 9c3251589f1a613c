"""Hostile and heavy input against real servers: regression tests for six defects found at 11def3e.

Every test runs a real server: ``anyport serve tests/transports/hardening_app.py`` as a subprocess
(stdio; or ``--http`` where the process matters: its RSS, its event loop), or the ASGI app from
``create_app`` under a real uvicorn on a free loopback port. Every read is bounded by a timeout.

1. A ``logLevel`` that is a list or an object (``_meta`` on 2026-07-28, ``logging/setLevel`` on
   legacy sessions) is -32602, on every transport, and nothing else that arrived with it is lost
   (M-19, U-11, M-04, L-19, T-STDIO-02, T-SSE-04, T-SSE-06).
2./3. Client values echoed into errors (a non-string ``initialize`` protocolVersion, a ``_meta``
   protocolVersion, a ``params.name`` that ``Mcp-Name`` must mirror), nested 300 / 1000 / 1020
   levels deep or 1 MB long, still give a JSON-RPC error with the request's id, of bounded size,
   and the server goes on (J-06, J-07, L-07, M-08, T-H26-12, T-H26-17, T-STDIO-02).
4. A handler reporting progress as fast as it can neither starves the event loop nor grows memory
   without bound: the client gets progress while connected (T-H26-06, U-07, U-09), other clients
   are answered within 1 s, a 2026-07-28 client hanging up cancels the handler (T-H26-11), a legacy
   one does not (T-HTTP-18) but costs bounded memory, and on stdio ping / requests are still
   answered (L-19, T-STDIO-14, U-04).
5. Idle legacy sessions expire without a later request to trigger the sweep; ``anyport serve
   --session-idle-timeout`` / ``ANYPORT_SESSION_IDLE_TIMEOUT`` set the timeout (T-HTTP-39, T-SSE-07).
6. An oversized stdio line is refused with the id read from its first bytes (T-STDIO-02, J-03,
   J-06, J-08); an ``"id"`` nested inside params is never taken for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from anyport.transports.http import create_app
from tests.transports._http_helpers import (
    META_CAPS,
    META_VERSION,
    MODERN,
    POST_HEADERS,
    client,
    initialize,
    modern_body,
    modern_headers,
    running,
    sse_messages,
)
from tests.transports.hardening_app import app as hardening_app
from tests.transports.test_http_legacy_sse import Events as SSEEvents
from tests.transports.test_stdio_bad_input import Proc, line

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parent / "hardening_app.py"
READ_TIMEOUT = 5.0  # one stdio line / one HTTP read
MAX_REPLY = 64 * 1024  # an error about a client value stays below this, whatever the value
MB = 1024 * 1024
RSS_HEADROOM_KB = 150 * 1024  # a heavy request may cost this much RSS above the warmed-up baseline
HEALTHY_WITHIN = 1.0  # /healthz (another connection) answers within this while a heavy request runs
LOG_LEVEL_META = "io.modelcontextprotocol/logLevel"
MISSING = object()


# -- helpers ---------------------------------------------------------------------------------------


def deep(n: int) -> str:
    """JSON text of ``n`` nested arrays: ``[[[...]]]``."""
    return "[" * n + "]" * n


def raw_body(obj: Any, placeholder: str, value_json: str) -> bytes:
    """``obj`` serialised with the string ``placeholder`` replaced by raw JSON text (Python's json
    cannot write 1000 nested levels itself). The body must still parse: these tests are about
    values the server reads, not about -32700."""
    text = json.dumps(obj, separators=(",", ":"))
    quoted = json.dumps(placeholder)
    assert text.count(quoted) == 1
    body = text.replace(quoted, value_json).encode()
    orjson.loads(body)  # orjson reads up to 1024 levels: 1020 + the envelope fits
    return body


#: Client values the server may put into an error: deep nesting (orjson writes at most 254 levels;
#: Python's repr recurses ~1000 deep) and sheer size.
HOSTILE = {
    "nested300": deep(300),
    "nested1000": deep(1000),
    "nested1020": deep(1020),
    "list_with_1MB_string": '["' + "x" * MB + '"]',
}
HOSTILE_VERSIONS = {**{k: v for k, v in HOSTILE.items() if k != "list_with_1MB_string"}, "1MB_string": '"' + "v" * MB + '"'}


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for row in f:
            if row.startswith("VmRSS:"):
                return int(row.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reply_of(r: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer in a response: a JSON body or the last message of an SSE body."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        msgs = [m for m in sse_messages(r.text) if "id" in m and "method" not in m]
        assert msgs, r.text[:500]
        return msgs[-1]
    assert r.headers.get("content-type", "").startswith("application/json"), (r.status_code, r.headers, r.text[:500])
    out = orjson.loads(r.content)
    assert isinstance(out, dict)
    return out


def check_error(msg: Any, code: int | tuple[int, ...], id_: Any) -> dict[str, Any]:
    """An exact JSON-RPC error answering ``id_`` (J-06, J-07)."""
    codes = code if isinstance(code, tuple) else (code,)
    assert isinstance(msg, dict), msg
    assert msg.get("jsonrpc") == "2.0", msg
    assert "result" not in msg, msg
    assert msg.get("id", MISSING) == id_, str(msg)[:500]
    err = msg["error"]
    assert err["code"] in codes, str(msg)[:500]
    assert isinstance(err["message"], str) and err["message"], str(msg)[:500]
    return err  # type: ignore[no-any-return]


class HProc(Proc):
    """``Proc`` with reads bounded by READ_TIMEOUT, read with orjson (deep values parse)."""

    async def read_line(self, timeout: float = READ_TIMEOUT) -> bytes:
        assert self.proc.stdout is not None
        try:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise AssertionError(f"no line within {timeout} s; stderr:\n{self.stderr.decode(errors='replace')[-3000:]}") from None
        assert raw, f"server closed stdout; stderr:\n{self.stderr.decode(errors='replace')[-3000:]}"
        assert raw.endswith(b"\n")
        return raw

    async def read(self) -> Any:
        return orjson.loads(await self.read_line())

    async def read_by_id(self, ids: set[Any]) -> dict[Any, tuple[dict[str, Any], int]]:
        """The answers to ``ids`` in whatever order they come, each with its line's size."""
        got: dict[Any, tuple[dict[str, Any], int]] = {}
        while set(got) != ids:
            raw = await self.read_line()
            msg = orjson.loads(raw)
            assert isinstance(msg, dict), msg
            if "method" in msg and "id" not in msg:
                continue
            assert msg.get("id", MISSING) in ids - set(got), f"unexpected {str(msg)[:300]}"
            got[msg["id"]] = (msg, len(raw))
        return got


async def spawn_stdio(*args: str, env: dict[str, str] | None = None) -> HProc:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anyport", "serve", str(APP), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT), env={**os.environ, **(env or {})}, limit=64 * MB,
    )
    return HProc(proc)


async def stop_stdio(p: HProc) -> None:
    if p.proc.returncode is None:
        with contextlib.suppress(Exception):
            await p.close(timeout=3)
    if p.proc.returncode is None:
        p.proc.kill()
        await p.proc.wait()


@pytest.fixture
async def stdio() -> AsyncIterator[HProc]:
    p = await spawn_stdio()
    try:
        yield p
    finally:
        await stop_stdio(p)


class HTTPServer:
    """``anyport serve hardening_app.py --http`` on a free loopback port."""

    def __init__(self, proc: subprocess.Popen[bytes], base: str, errors: Any) -> None:
        self.proc = proc
        self.base = base
        self._errors = errors

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        self._errors.seek(0)
        return bytes(self._errors.read()[-4000:]).decode(errors="replace")


def launch_http(*args: str, env: dict[str, str] | None = None) -> HTTPServer:
    port = free_port()
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyport", "serve", str(APP), "--http", "--port", str(port), "--log-level", "warning", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, cwd=str(ROOT), env={**os.environ, **(env or {})},
    )
    return HTTPServer(proc, f"http://127.0.0.1:{port}", errors)


def await_up(server: HTTPServer, start_timeout: float = 15.0) -> None:
    deadline = time.monotonic() + start_timeout
    with httpx.Client(timeout=1.0) as c:
        while True:
            if server.proc.poll() is not None:
                raise AssertionError(f"server exited with {server.proc.returncode}:\n{server.stderr()}")
            with contextlib.suppress(httpx.HTTPError):
                if c.get(server.base + "/healthz").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{server.stderr()}")
            time.sleep(0.05)


def stop_http(server: HTTPServer) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGKILL)  # its state does not matter any more; no graceful drain
    server.proc.wait(timeout=10)
    server._errors.close()


@contextlib.contextmanager
def http_servers(*specs: tuple[tuple[str, ...], dict[str, str] | None]) -> Iterator[list[HTTPServer]]:
    """``anyport serve hardening_app.py --http`` processes, started together, on free loopback ports."""
    servers: list[HTTPServer] = []
    try:
        for args, env in specs:
            servers.append(launch_http(*args, env=env))
        for server in servers:
            await_up(server)
        yield servers
    finally:
        for server in servers:
            stop_http(server)


@contextlib.contextmanager
def http_server(*args: str, env: dict[str, str] | None = None) -> Iterator[HTTPServer]:
    with http_servers((args, env)) as servers:
        yield servers[0]


def healthz_latency(base: str) -> float:
    """Seconds /healthz took on a new connection; inf when it did not answer within HEALTHY_WITHIN."""
    start = time.monotonic()
    try:
        r = httpx.get(base + "/healthz", timeout=HEALTHY_WITHIN)
    except httpx.HTTPError:
        return float("inf")
    return time.monotonic() - start if r.status_code == 200 else float("inf")


def modern_call(base: str, id_: int | str, name: str, arguments: dict[str, Any], *, timeout: float = 2.0) -> dict[str, Any] | None:
    """A 2026-07-28 tools/call on a new connection; None when it got no answer in time."""
    body = modern_body(id_, "tools/call", {"name": name, "arguments": arguments})
    try:
        r = httpx.post(base + "/mcp", headers=modern_headers("tools/call", name=name), json=body, timeout=timeout)
    except httpx.HTTPError:
        return None
    return reply_of(r)


def spin_state(base: str) -> dict[str, int] | None:
    """The fixture's STATE (how many spin handlers run), or None when the server did not answer."""
    msg = modern_call(base, "stats", "stats", {})
    if msg is None or "result" not in msg:
        return None
    return json.loads(msg["result"]["content"][0]["text"])  # type: ignore[no-any-return]


def wait_state(base: str, predicate: Any, timeout: float) -> dict[str, int] | None:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = spin_state(base)
        if state is not None and predicate(state):
            return state
        time.sleep(0.1)
    return state


def assert_http_alive(base: str) -> None:
    assert healthz_latency(base) < HEALTHY_WITHIN
    msg = modern_call(base, "alive", "echo", {"text": "still here"})
    assert msg is not None and msg["result"]["content"] == [{"type": "text", "text": "still here"}], msg


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running(create_app(hardening_app)) as url:
        yield url


# -- 1. logLevel that is a list or an object ---------------------------------------------------------

BAD_LEVELS: dict[str, Any] = {"list": [], "object": {}}


@pytest.mark.parametrize("level", BAD_LEVELS.values(), ids=BAD_LEVELS.keys())
async def test_stdio_meta_log_level_not_a_string_is_32602_and_same_read_lines_answered_M19_L19_T_STDIO_02(stdio: HProc, level: Any) -> None:
    """M-19 / M-04: a _meta logLevel of the wrong type is -32602 with the request's id; L-19 and
    T-STDIO-02: the ping that came in the same write is still answered (before initialize: {})."""
    bad = {
        "jsonrpc": "2.0", "id": 3, "method": "tools/list",
        "params": {"_meta": {META_VERSION: MODERN, META_CAPS: {}, LOG_LEVEL_META: level}},
    }
    await stdio.write(line(bad) + line({"jsonrpc": "2.0", "id": "after", "method": "ping"}))
    got = await stdio.read_by_id({3, "after"})
    check_error(got[3][0], -32602, 3)
    assert got["after"][0] == {"jsonrpc": "2.0", "id": "after", "result": {}}
    await stdio.assert_alive()


@pytest.mark.parametrize("level", BAD_LEVELS.values(), ids=BAD_LEVELS.keys())
async def test_stdio_legacy_set_level_not_a_string_is_32602_U11(stdio: HProc, level: Any) -> None:
    """U-11: logging/setLevel with a level that is not one of the syslog names (here not even a string) is -32602."""
    await stdio.initialize("2025-11-25")
    await stdio.write(line({"jsonrpc": "2.0", "id": 9, "method": "logging/setLevel", "params": {"level": level}})
                      + line({"jsonrpc": "2.0", "id": 10, "method": "ping"}))
    got = await stdio.read_by_id({9, 10})
    check_error(got[9][0], -32602, 9)
    assert got[10][0] == {"jsonrpc": "2.0", "id": 10, "result": {}}
    await stdio.assert_alive()


@pytest.mark.parametrize("level", BAD_LEVELS.values(), ids=BAD_LEVELS.keys())
def test_http_meta_log_level_not_a_string_is_400_32602_M19_M04(base: str, level: Any) -> None:
    """M-19 / M-04 (DIGEST §15): on Streamable HTTP 2026-07-28 the bad level is HTTP 400 + -32602, id 3."""
    body = modern_body(3, "tools/list")
    body["params"]["_meta"][LOG_LEVEL_META] = level
    with client(base) as c:
        r = c.post("/mcp", headers=modern_headers("tools/list"), json=body)
        assert r.status_code == 400, (r.status_code, r.text[:300])
        check_error(reply_of(r), -32602, 3)
    assert_http_alive(base)


@pytest.mark.parametrize("level", BAD_LEVELS.values(), ids=BAD_LEVELS.keys())
def test_http_legacy_set_level_not_a_string_is_32602_U11(base: str, level: Any) -> None:
    """U-11: logging/setLevel with [] / {} on a legacy Streamable HTTP session: a -32602 answer, and
    the session goes on."""
    with client(base) as c:
        h = initialize(c)
        r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 9, "method": "logging/setLevel", "params": {"level": level}})
        assert r.status_code in (200, 400), (r.status_code, r.text[:300])
        check_error(reply_of(r), -32602, 9)
        r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 10, "method": "ping"})
        assert r.status_code == 200 and reply_of(r) == {"jsonrpc": "2.0", "id": 10, "result": {}}


@pytest.mark.parametrize("level", BAD_LEVELS.values(), ids=BAD_LEVELS.keys())
def test_http_sse_meta_log_level_not_a_string_error_on_stream_and_later_posts_work_M19_T_SSE_04(base: str, level: Any) -> None:
    """M-19 over the 2024-11-05 HTTP+SSE transport: the -32602 arrives on the stream (T-SSE-04), the
    connection's message loop survives and later POSTs are accepted and answered (T-SSE-06)."""
    timeout = httpx.Timeout(READ_TIMEOUT)
    with httpx.Client(base_url=base, timeout=timeout) as sse, httpx.Client(base_url=base, timeout=timeout) as c:
        with sse.stream("GET", "/sse", headers={"accept": "text/event-stream"}) as r:
            assert r.status_code == 200
            events = SSEEvents(r)
            kind, endpoint = events.next()
            assert kind == "endpoint"
            body = modern_body(3, "tools/list")
            body["params"]["_meta"][LOG_LEVEL_META] = level
            p = c.post(endpoint, json=body)
            assert p.status_code == 202, (p.status_code, p.text[:300])
            check_error(events.message(), -32602, 3)
            p = c.post(endpoint, json={"jsonrpc": "2.0", "id": "after", "method": "ping"})
            assert p.status_code == 202, (p.status_code, p.text[:300])
            assert events.message() == {"jsonrpc": "2.0", "id": "after", "result": {}}
            p = c.post(endpoint, json=modern_body(4, "tools/call", {"name": "echo", "arguments": {"text": "ok"}}))
            assert p.status_code == 202
            msg = events.message()
            assert msg["id"] == 4 and msg["result"]["content"] == [{"type": "text", "text": "ok"}], msg


# -- 2./3. client values echoed into errors: deep nesting, 1 MB ------------------------------------------


def initialize_body(id_: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0", "id": id_, "method": "initialize",
        "params": {"protocolVersion": "__VALUE__", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }


def modern_list_body(id_: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/list", "params": {"_meta": {META_VERSION: "__VALUE__", META_CAPS: {}}}}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
async def test_stdio_initialize_hostile_protocol_version_is_32602_bounded_L07_J06(stdio: HProc, value: str) -> None:
    """L-07 / J-06 / J-07: initialize with a non-string protocolVersion nested 300, 1000, 1020 deep or
    1 MB long: -32602 with id 5, the whole line under 64 KiB; the server goes on (T-STDIO-02)."""
    await stdio.write(raw_body(initialize_body(5), "__VALUE__", value) + b"\n")
    got = await stdio.read_by_id({5})
    msg, size = got[5]
    check_error(msg, -32602, 5)
    assert size < MAX_REPLY, size
    await stdio.assert_alive()
    await stdio.initialize("2025-11-25")  # the refused initialize did not initialize anything


@pytest.mark.parametrize("value", HOSTILE_VERSIONS.values(), ids=HOSTILE_VERSIONS.keys())
async def test_stdio_modern_hostile_protocol_version_is_32022_bounded_M08(stdio: HProc, value: str) -> None:
    """M-08: a _meta protocolVersion nested 300 / 1000 / 1020 deep or a 1 MB string: -32022 with id 6
    and data.supported, the line under 64 KiB; the server goes on."""
    await stdio.write(raw_body(modern_list_body(6), "__VALUE__", value) + b"\n")
    got = await stdio.read_by_id({6})
    msg, size = got[6]
    err = check_error(msg, -32022, 6)
    assert err["data"]["supported"] == [MODERN]
    assert size < MAX_REPLY, size
    await stdio.assert_alive()


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_http_initialize_hostile_protocol_version_is_32602_bounded_L07_J06(base: str, value: str) -> None:
    """L-07 / J-06: the same initialize over Streamable HTTP: a JSON-RPC -32602 for id 5 (not a 500),
    under 64 KiB, no session opened; the server goes on."""
    with client(base) as c:
        r = c.post("/mcp", headers=POST_HEADERS, content=raw_body(initialize_body(5), "__VALUE__", value))
        assert r.status_code in (200, 400), (r.status_code, r.text[:300])
        assert len(r.content) < MAX_REPLY, len(r.content)
        check_error(reply_of(r), -32602, 5)
        assert "mcp-session-id" not in r.headers
    assert_http_alive(base)


@pytest.mark.parametrize("value", HOSTILE_VERSIONS.values(), ids=HOSTILE_VERSIONS.keys())
def test_http_modern_hostile_protocol_version_is_400_bounded_T_H26_12_M08(base: str, value: str) -> None:
    """T-H26-12 / M-08: a 2026-07-28 tools/list whose _meta protocolVersion is deep or 1 MB: HTTP 400
    with -32020 (it differs from the MCP-Protocol-Version header) or -32022, id 6, under 64 KiB."""
    with client(base) as c:
        r = c.post("/mcp", headers=modern_headers("tools/list"), content=raw_body(modern_list_body(6), "__VALUE__", value))
        assert r.status_code == 400, (r.status_code, r.text[:300])
        assert len(r.content) < MAX_REPLY, len(r.content)
        check_error(reply_of(r), (-32020, -32022), 6)
    assert_http_alive(base)


@pytest.mark.parametrize("value", HOSTILE_VERSIONS.values(), ids=HOSTILE_VERSIONS.keys())
def test_http_mcp_name_mismatch_with_hostile_name_is_400_32020_bounded_T_H26_17(base: str, value: str) -> None:
    """T-H26-15 / T-H26-17: Mcp-Name "x" against a params.name nested deep or 1 MB long: HTTP 400 + -32020
    with the request's id 7, under 64 KiB; the server goes on."""
    body = modern_body(7, "tools/call", {"name": "__VALUE__", "arguments": {}})
    with client(base) as c:
        r = c.post("/mcp", headers=modern_headers("tools/call", name="x"), content=raw_body(body, "__VALUE__", value))
        assert r.status_code == 400, (r.status_code, r.text[:300])
        assert len(r.content) < MAX_REPLY, len(r.content)
        check_error(reply_of(r), -32020, 7)
    assert_http_alive(base)


# -- 4. one request must not starve the server ----------------------------------------------------------

SPIN_STEPS = 10**8


def spin_body(id_: int | str, token: str, *, modern: bool) -> dict[str, Any]:
    params = {"name": "spin", "arguments": {"steps": SPIN_STEPS}, "_meta": {"progressToken": token}}
    if modern:
        return modern_body(id_, "tools/call", params)
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params}


class StreamReader(threading.Thread):
    """POSTs a request and reads its SSE response for ``seconds``, then hangs up. Never raises."""

    def __init__(self, base: str, headers: dict[str, str], body: dict[str, Any], seconds: float) -> None:
        super().__init__(daemon=True)
        self.base, self.headers, self.body, self.seconds = base, headers, body, seconds
        self.status: int | None = None
        self.progress: list[dict[str, Any]] = []
        self.progress_events = 0
        self.final: dict[str, Any] | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            timeout = httpx.Timeout(connect=3.0, read=2.0, write=3.0, pool=3.0)
            with httpx.Client(base_url=self.base, timeout=timeout) as c, c.stream("POST", "/mcp", headers=self.headers, json=self.body) as r:
                self.status = r.status_code
                stop = time.monotonic() + self.seconds
                for text in r.iter_lines():
                    if text.startswith("data:") and "notifications/progress" in text:
                        self.progress_events += 1
                        if len(self.progress) < 20:
                            self.progress.append(json.loads(text[5:]))
                    elif text.startswith("data:") and text[5:].strip():
                        msg = json.loads(text[5:])
                        if "id" in msg and "method" not in msg:
                            self.final = msg
                            return
                    if time.monotonic() > stop:
                        return  # hang up: the response is closed unread
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"


def watch(server: HTTPServer, seconds: float, baseline_kb: int, every: float = 0.25) -> tuple[list[float], int]:
    """Probe /healthz and sample RSS for ``seconds``: (latencies, peak RSS in kB). Stops early when
    RSS is already over the limit (the test fails anyway)."""
    latencies: list[float] = []
    peak = rss_kb(server.pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        latencies.append(healthz_latency(server.base))
        peak = max(peak, rss_kb(server.pid))
        if peak > baseline_kb + RSS_HEADROOM_KB:
            break
        time.sleep(every)
    return latencies, peak


def warm_baseline(server: HTTPServer) -> int:
    """RSS after the code paths the test uses have run once (imports, first allocations)."""
    assert modern_call(server.base, "w1", "echo", {"text": "warm"}) is not None
    state = spin_state(server.base)
    assert state is not None and state["running"] == 0, state
    with client(server.base) as c:
        r = c.post("/mcp", headers=modern_headers("tools/call", name="spin"), json=modern_body("w2", "tools/call", {"name": "spin", "arguments": {"steps": 50}, "_meta": {"progressToken": "w"}}))
        assert reply_of(r)["result"]["content"][0]["text"] == "done"
    time.sleep(0.2)
    return rss_kb(server.pid)


def reader_problems(reader: StreamReader, token: str) -> list[str]:
    """What went wrong on the client's side of a spin request it read for a while, then left."""
    problems = []
    if reader.error is not None or reader.status != 200:
        problems.append(f"the stream: status {reader.status}, {reader.error}")
    if reader.progress_events < 1:
        problems.append("no progress reached the client while it was connected (T-H26-06, U-07)")
    if any(p["params"]["progressToken"] != token for p in reader.progress):
        problems.append(f"progress with a foreign token: {reader.progress[:3]}")
    values = [p["params"]["progress"] for p in reader.progress]
    if values != sorted(set(values)):
        problems.append(f"progress not strictly increasing (U-08): {values}")
    if reader.final is not None:
        problems.append(f"10**8 steps answered while the client was connected: {reader.final}")
    return problems


def test_http_modern_spin_streams_progress_stays_responsive_and_hang_up_cancels_T_H26_11_T_H26_06() -> None:
    """2026-07-28 tools/call of a handler reporting progress 10**8 times, client hangs up after 1.5 s:
    T-H26-06 / U-07: progress reaches the client while it is connected; /healthz on other connections
    answers within 1 s throughout; T-H26-11: the hang-up cancels the handler (STATE running 0,
    cancelled 1); the server's RSS stays within +150 MB of its warmed-up baseline."""
    with http_server() as server:
        baseline = warm_baseline(server)
        reader = StreamReader(server.base, modern_headers("tools/call", name="spin"), spin_body(1, "p1", modern=True), seconds=1.5)
        reader.start()
        latencies, peak = watch(server, 2.0, baseline)
        reader.join(timeout=10)
        assert not reader.is_alive()
        problems = reader_problems(reader, "p1")
        if peak - baseline >= RSS_HEADROOM_KB:  # no need to watch it grow on
            problems.append(f"RSS grew by {(peak - baseline) // 1024} MB within 2 s; /healthz latencies (s): {latencies}")
            raise AssertionError("\n".join(problems))
        state = wait_state(server.base, lambda s: s["running"] == 0, timeout=3.0)
        latencies += watch(server, 0.5, baseline)[0]
        peak = max(peak, rss_kb(server.pid))
        if max(latencies) >= HEALTHY_WITHIN:
            problems.append(f"/healthz latencies (s): {[round(x, 3) for x in latencies]}")
        if peak - baseline >= RSS_HEADROOM_KB:
            problems.append(f"RSS grew by {(peak - baseline) // 1024} MB")
        if state is None or state["running"] != 0 or state["cancelled"] != 1:
            problems.append(f"the hang-up did not cancel the handler (T-H26-11): {state}")
        assert not problems, "\n".join(problems) + "\nserver stderr:\n" + server.stderr()


def test_http_legacy_spin_after_hang_up_keeps_running_but_bounded_and_responsive_T_HTTP_18_U09() -> None:
    """2025-11-25 session, tools/call spin with an SSE response, client reads 1 s and hangs up:
    T-HTTP-18: not a cancellation, the handler goes on (STATE running 1), but the server stays
    responsive (/healthz < 1 s over ~5 s) and its RSS within +150 MB (progress coalesced / the
    handler held back by backpressure, U-09); U-04: notifications/cancelled then stops it."""
    with http_server() as server:
        baseline = warm_baseline(server)
        with client(server.base) as c:
            h = initialize(c, "2025-11-25")
        reader = StreamReader(server.base, h, spin_body(21, "p21", modern=False), seconds=1.0)
        reader.start()
        latencies, peak = watch(server, 5.0, baseline)
        reader.join(timeout=10)
        assert not reader.is_alive()
        problems = reader_problems(reader, "p21")
        if max(latencies) >= HEALTHY_WITHIN:
            problems.append(f"/healthz latencies (s): {[round(x, 3) for x in latencies]}")
        if peak - baseline >= RSS_HEADROOM_KB:  # no need to watch it grow on
            problems.append(f"RSS grew by {(peak - baseline) // 1024} MB")
            raise AssertionError("\n".join(problems))
        state = spin_state(server.base)
        if state is None or state["running"] != 1 or state["cancelled"] != 0:
            problems.append(f"after the hang-up the handler should still run (T-HTTP-18): {state}")
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 21}}
        try:
            status = httpx.post(server.base + "/mcp", headers=h, json=cancel, timeout=2.0).status_code
        except httpx.HTTPError as exc:
            status = None
            problems.append(f"notifications/cancelled not accepted: {exc!r}")
        if status is not None and status != 202:
            problems.append(f"notifications/cancelled answered {status}")
        state = wait_state(server.base, lambda s: s["running"] == 0, timeout=3.0)
        if state is None or state["running"] != 0 or state["cancelled"] != 1:
            problems.append(f"notifications/cancelled did not stop the handler (U-04): {state}")
        if rss_kb(server.pid) - baseline >= RSS_HEADROOM_KB:
            problems.append(f"RSS at the end {(rss_kb(server.pid) - baseline) // 1024} MB over the baseline")
        assert not problems, "\n".join(problems) + "\nserver stderr:\n" + server.stderr()


async def test_stdio_spin_does_not_starve_ping_and_requests_and_memory_is_bounded_L19_T_STDIO_14() -> None:
    """stdio, tools/call spin (10**8 progress reports) while the client reads everything: L-19 ping
    and a 2026-07-28 tools/list sent meanwhile are answered within 1 s each, progress flows (U-07),
    RSS stays within +150 MB; T-STDIO-14 / U-04: notifications/cancelled stops the handler."""
    p = await spawn_stdio()
    answers: dict[Any, asyncio.Future[dict[str, Any]]] = {}
    progress = 0
    loop = asyncio.get_running_loop()

    def expect(id_: Any) -> asyncio.Future[dict[str, Any]]:
        return answers.setdefault(id_, loop.create_future())

    async def pump() -> None:
        nonlocal progress
        assert p.proc.stdout is not None
        while raw := await p.proc.stdout.readline():
            if b'"notifications/progress"' in raw:
                progress += 1
                continue
            msg = orjson.loads(raw)
            if isinstance(msg, dict) and "id" in msg and "method" not in msg:
                fut = expect(msg["id"])
                if not fut.done():
                    fut.set_result(msg)

    async def ask(id_: Any, obj: dict[str, Any], timeout: float) -> tuple[dict[str, Any] | None, float]:
        start = time.monotonic()
        await p.send(obj)
        try:
            return await asyncio.wait_for(asyncio.shield(expect(id_)), timeout), time.monotonic() - start
        except TimeoutError:
            return None, float("inf")

    reader = loop.create_task(pump())
    try:
        warm_body = modern_body("warm", "tools/call", {"name": "spin", "arguments": {"steps": 50}, "_meta": {"progressToken": "w"}})
        warm, _ = await ask("warm", warm_body, 5.0)
        assert warm is not None and warm["result"]["content"][0]["text"] == "done", (warm, p.stderr.decode(errors="replace")[-2000:])
        await asyncio.sleep(0.2)
        baseline = rss_kb(p.proc.pid)
        await p.send(spin_body("spin", "p-spin", modern=True))
        await asyncio.sleep(0.3)
        delays: list[float] = []
        peak = baseline
        for i in range(6):
            _, d1 = await ask(f"ping{i}", {"jsonrpc": "2.0", "id": f"ping{i}", "method": "ping"}, HEALTHY_WITHIN)
            listed, d2 = await ask(f"list{i}", modern_body(f"list{i}", "tools/list"), HEALTHY_WITHIN)
            delays += [d1, d2]
            if listed is not None:
                assert "spin" in [t["name"] for t in listed["result"]["tools"]]
            peak = max(peak, rss_kb(p.proc.pid))
            if peak - baseline > RSS_HEADROOM_KB:
                break
            await asyncio.sleep(0.25)
        seen_progress = progress
        finished_early = "spin" in answers and answers["spin"].done()  # 10**8 steps: must still run
        await p.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "spin", "reason": "test"}})
        stopped = None
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            sid = f"stats-{time.monotonic_ns()}"
            msg, _ = await ask(sid, modern_body(sid, "tools/call", {"name": "stats", "arguments": {}}), 1.0)
            if msg is not None and "result" in msg:
                stopped = json.loads(msg["result"]["content"][0]["text"])
                if stopped["running"] == 0:
                    break
            await asyncio.sleep(0.1)
        assert max(delays) < HEALTHY_WITHIN, delays
        assert seen_progress >= 1, "no progress notifications"
        assert peak - baseline < RSS_HEADROOM_KB, (baseline, peak)
        assert stopped is not None and stopped["running"] == 0 and stopped["cancelled"] == 1, stopped
        assert not finished_early, answers["spin"].result()
        assert not answers["spin"].done() if "spin" in answers else True, "a cancelled request was answered (T-STDIO-14)"
    finally:
        p.proc.kill()
        await p.proc.wait()
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(p._stderr_task, 2)


# -- 5. idle sessions expire without a later request -------------------------------------------------------


def open_sse_connection(url: str) -> tuple[httpx.Client, Any, SSEEvents]:
    """A 2024-11-05 HTTP+SSE connection, initialized; the caller closes it (all three parts)."""
    sc = httpx.Client(base_url=url, timeout=httpx.Timeout(READ_TIMEOUT))
    cm = sc.stream("GET", "/sse", headers={"accept": "text/event-stream"})
    events = SSEEvents(cm.__enter__())
    kind, endpoint = events.next()
    assert kind == "endpoint"
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    assert sc.post(endpoint, json=init).status_code == 202
    assert events.message()["id"] == 0
    assert sc.post(endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
    return sc, cm, events


def open_sessions(url: str, n: int, http_app: Any) -> list[str]:
    """``n`` initialized legacy Streamable HTTP sessions (opened from 10 threads: loopback requests
    cost ~25 ms each here, one after the other they would outlast a 2 s idle timeout)."""

    def some(count: int) -> list[str]:
        ids = []
        with client(url) as c:
            for _ in range(count):
                ids.append(initialize(c)["mcp-session-id"])
                assert ids[-1] in http_app.sessions
        return ids

    with ThreadPoolExecutor(10) as pool:
        return [sid for ids in pool.map(some, [n // 10] * 10) for sid in ids]


def test_idle_sessions_and_sse_connections_end_without_further_requests_T_HTTP_39_T_SSE_07() -> None:
    """T-HTTP-39: with session_idle_timeout=2, 50 legacy sessions and 20 HTTP+SSE connections that the
    clients abandon (connections dropped, no DELETE) are all gone idle_timeout + 3 s later, although
    no request arrived in between to trigger a sweep; T-SSE-07: a dropped SSE connection ends its session."""
    http_app = create_app(hardening_app, session_idle_timeout=2)
    assert http_app.legacy is not None
    with running(http_app) as url:
        streams: list[tuple[httpx.Client, Any, SSEEvents]] = []  # the readers too: dropping one closes its connection
        try:
            with ThreadPoolExecutor(10) as pool:
                streams += pool.map(lambda _: open_sse_connection(url), range(20))
            assert len(http_app.legacy.connections) == 20
            opened = open_sessions(url, 50, http_app)
            assert len(set(opened)) == 50
        finally:
            for sc, cm, _events in streams:  # abandon: drop the connections, no DELETE, no more requests
                with contextlib.suppress(Exception):
                    cm.__exit__(None, None, None)
                sc.close()
        time.sleep(2 + 3)
        assert len(http_app.legacy.connections) == 0
        assert len(http_app.sessions) == 0, f"{len(http_app.sessions)} idle sessions still held"
        assert not any(s in http_app.sessions for s in opened)


def test_cli_session_idle_timeout_flag_and_env_expire_sessions_T_HTTP_39() -> None:
    """T-HTTP-39: ``anyport serve --http --session-idle-timeout 2`` (and ANYPORT_SESSION_IDLE_TIMEOUT=2)
    is accepted; a session idle for 2 + 3 s is gone: a request with its Mcp-Session-Id gets 404."""
    with http_servers((("--session-idle-timeout", "2"), None), ((), {"ANYPORT_SESSION_IDLE_TIMEOUT": "2"})) as (by_flag, by_env):
        headers = {}
        for server in (by_flag, by_env):
            with client(server.base) as c:
                h = initialize(c)
                r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
                assert r.status_code == 200 and reply_of(r)["result"] == {}
                headers[server.base] = h
        time.sleep(2 + 3)
        for server in (by_flag, by_env):
            r = httpx.post(server.base + "/mcp", headers=headers[server.base], json={"jsonrpc": "2.0", "id": 2, "method": "ping"}, timeout=READ_TIMEOUT)
            assert r.status_code == 404, (server.base, r.status_code, r.text[:300])


# -- 6. an oversized stdio line is refused with its id ------------------------------------------------------


def big_call(id_json: str, *, id_first: bool = True, nested_id: str | None = None, where: str = "params") -> bytes:
    """A tools/call line of ~5 KB. ``id_json`` is raw JSON text for the top-level id; with ``id_first``
    it comes before params, else after them. ``nested_id`` puts an "id" key inside params (``where``
    "params") or inside arguments ("arguments"), before the big text."""
    nested = f'"id":{nested_id},' if nested_id is not None else ""
    args = f'{{{nested if where == "arguments" else ""}"text":"{"x" * 5000}"}}'
    params = f'{{{nested if where == "params" else ""}"name":"echo","arguments":{args}}}'
    if id_first:
        text = f'{{"jsonrpc":"2.0","id":{id_json},"method":"tools/call","params":{params}}}'
    else:
        text = f'{{"jsonrpc":"2.0","method":"tools/call","params":{params},"id":{id_json}}}'
    orjson.loads(text)
    return text.encode() + b"\n"


@pytest.fixture
async def small_stdio() -> AsyncIterator[HProc]:
    p = await spawn_stdio("--max-message-bytes", "1000")
    try:
        yield p
    finally:
        await stop_stdio(p)


async def assert_goes_on(p: HProc) -> None:
    """The next normal requests work: ping, a modern echo, a small legacy-shaped call line."""
    await p.assert_alive()


@pytest.mark.parametrize(("id_json", "expected"), [("77", 77), ('"abc"', "abc")], ids=["int", "string"])
@pytest.mark.parametrize("split", [False, True], ids=["one-write", "in-pieces"])
async def test_oversized_line_error_carries_the_id_from_its_head_T_STDIO_02_J06(small_stdio: HProc, id_json: str, expected: Any, split: bool) -> None:
    """T-STDIO-02 / J-06: with --max-message-bytes 1000, a 5 KB tools/call whose id comes first is refused
    with -32600 carrying that id (77 / "abc"), also when the line arrives in pieces; the next requests work."""
    data = big_call(id_json)
    if split:
        for i in range(0, len(data), 700):
            await small_stdio.write(data[i : i + 700])
            await asyncio.sleep(0.01)
    else:
        await small_stdio.write(data)
    got = await small_stdio.read_by_id({expected})
    check_error(got[expected][0], -32600, expected)
    await assert_goes_on(small_stdio)


async def test_oversized_line_on_a_legacy_session_carries_its_id_T_STDIO_02_J06() -> None:
    """T-STDIO-02 / J-06 on a 2025-11-25 session (ANYPORT_MAX_MESSAGE_BYTES=1000): -32600 with id 77."""
    p = await spawn_stdio(env={"ANYPORT_MAX_MESSAGE_BYTES": "1000"})
    try:
        await p.initialize("2025-11-25")
        await p.write(big_call("77"))
        got = await p.read_by_id({77})
        check_error(got[77][0], -32600, 77)
        await assert_goes_on(p)
    finally:
        await stop_stdio(p)


@pytest.mark.parametrize(
    ("nested_id", "where"),
    [(None, "params"), ("5", "params"), ("5", "arguments"), ('"inner"', "params")],
    ids=["no-nested-id", "id-in-params", "id-in-arguments", "string-id-in-params"],
)
async def test_oversized_line_with_id_after_params_never_gets_a_nested_id_T_STDIO_02_J08(small_stdio: HProc, nested_id: str | None, where: str) -> None:
    """T-STDIO-02 / J-08: the top-level id comes after the 5 KB params, so the head does not hold it:
    the -32600 has no id (before initialize it is omitted, J-08) or, at best, the real id 77; never
    an "id" key nested inside params. Guards the id recovery; the next requests work."""
    await small_stdio.write(big_call("77", id_first=False, nested_id=nested_id, where=where))
    msg = await small_stdio.read()
    assert isinstance(msg, dict) and msg.get("error", {}).get("code") == -32600, msg
    assert msg.get("id", MISSING) in (MISSING, 77), msg
    await assert_goes_on(small_stdio)
