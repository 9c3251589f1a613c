"""A real ``anyport serve`` process fed bad bytes over stdio.

Every test writes raw bytes to the server's stdin and reads raw lines from its stdout, checks the
exact JSON-RPC answer, and then checks that the server keeps serving. Every read is bounded by a
timeout so nothing can hang.

Requirements: J-01, J-02, J-03, J-08, J-09, J-11, J-12, J-13, L-02, L-19, M-04, M-08, M-19,
U-04, U-05, T-STDIO-02, T-STDIO-03, T-STDIO-11, -32700/-32600/-32601/-32602/-32022 (DIGEST §2).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "interop" / "fixture_server.py"
TIMEOUT = 10.0
MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "bad-input-test", "version": "1"},
}


def line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class Proc:
    """A spawned stdio server with raw access to its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr = bytearray()
        self._ids = itertools.count(1000)
        self._stderr_task = asyncio.get_running_loop().create_task(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.stderr += chunk

    def next_id(self) -> int:
        return next(self._ids)

    async def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await asyncio.wait_for(self.proc.stdin.drain(), TIMEOUT)

    async def send(self, obj: Any) -> None:
        await self.write(line(obj))

    async def read_line(self) -> bytes:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), TIMEOUT)
        assert raw, f"server closed stdout; stderr:\n{self.stderr.decode(errors='replace')}"
        assert raw.endswith(b"\n")
        return raw

    async def read(self) -> Any:
        return json.loads(await self.read_line())

    async def read_response(self, id_: Any) -> dict[str, Any]:
        """The next response with this id, skipping notifications (and failing on anything else)."""
        while True:
            msg = await self.read()
            assert isinstance(msg, dict), f"unexpected {msg!r} while waiting for id {id_!r}"
            if "method" in msg and "id" not in msg:
                continue  # a notification (progress / log)
            assert msg.get("id") == id_, f"expected the answer to {id_!r}, got {msg!r}"
            return msg

    async def call(self, method: str, params: dict[str, Any] | None = None, *, modern: bool = True) -> dict[str, Any]:
        id_ = self.next_id()
        p = dict(params or {})
        if modern:
            p["_meta"] = META
        await self.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": p})
        return await self.read_response(id_)

    async def initialize(self, version: str) -> dict[str, Any]:
        resp = await self.call(
            "initialize",
            {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
            modern=False,
        )
        assert resp["result"]["protocolVersion"] == version
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return resp

    async def assert_alive(self, *, legacy_ping: bool = True) -> None:
        """The server still answers: a ping (L-19, any time) and a real tool call."""
        if legacy_ping:
            id_ = self.next_id()
            await self.send({"jsonrpc": "2.0", "id": id_, "method": "ping"})
            assert await self.read_response(id_) == {"jsonrpc": "2.0", "id": id_, "result": {}}
        text = f"alive-{self.next_id()}"
        resp = await self.call("tools/call", {"name": "echo", "arguments": {"text": text}})
        assert resp["result"]["content"] == [{"type": "text", "text": text}], resp
        assert resp["result"]["isError"] is False

    async def close(self, timeout: float = 5.0) -> float:
        """Close stdin and wait for exit; returns the seconds it took (T-STDIO-11)."""
        assert self.proc.stdin is not None
        start = time.monotonic()
        if not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stderr_task, TIMEOUT)
        return time.monotonic() - start


async def spawn(target: Path = FIXTURE, env: dict[str, str] | None = None) -> Proc:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anyport", "serve", str(target),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
        env=None if env is None else {**os.environ, **env},
        limit=64 * 1024 * 1024,
    )
    return Proc(proc)


@pytest.fixture
async def server() -> AsyncIterator[Proc]:
    p = await spawn()
    try:
        yield p
    finally:
        if p.proc.returncode is None:
            with contextlib.suppress(Exception):
                await p.close(timeout=TIMEOUT)
        if p.proc.returncode is None:
            p.proc.kill()
            await p.proc.wait()


def assert_error(msg: Any, code: int, *, id_: Any = "omit") -> dict[str, Any]:
    """An exact JSON-RPC error: jsonrpc 2.0, the code, a string message, id echoed / null / omitted."""
    assert isinstance(msg, dict), msg
    assert msg.get("jsonrpc") == "2.0", msg
    assert "result" not in msg, msg  # J-06
    err = msg["error"]
    assert err["code"] == code, msg
    assert isinstance(err["message"], str) and err["message"], msg
    if id_ == "omit":
        assert "id" not in msg, msg
        assert set(msg) == {"jsonrpc", "error"}
    else:
        assert "id" in msg and msg["id"] == id_, msg
        assert set(msg) == {"jsonrpc", "id", "error"}
    return err


# -- -32700 parse errors -----------------------------------------------------------------------------


async def test_malformed_json_before_initialize_is_32700_without_id_J08(server: Proc) -> None:
    """-32700 / J-08: malformed JSON gets a parse error; no revision known yet -> id omitted."""
    await server.write(b'{"jsonrpc":"2.0","id":1,"method":\n')
    assert_error(await server.read(), -32700)
    await server.assert_alive()


async def test_malformed_json_on_2024_11_05_has_null_id_J08(server: Proc) -> None:
    """J-08: 24..25.06 schemas require `id`, so an unreadable id is sent as null."""
    await server.initialize("2024-11-05")
    await server.write(b"{not json}\n")
    assert_error(await server.read(), -32700, id_=None)
    await server.assert_alive()


async def test_malformed_json_on_2025_11_25_omits_id_J08(server: Proc) -> None:
    """J-08: from 2025-11-25 an error whose id could not be read omits `id`."""
    await server.initialize("2025-11-25")
    await server.write(b"[{]\n")
    assert_error(await server.read(), -32700)
    await server.assert_alive()


async def test_invalid_utf8_is_32700_J02(server: Proc) -> None:
    """J-02: messages are UTF-8; invalid bytes are a parse error, not a crash."""
    await server.write(b'{"jsonrpc":"2.0","id":1,"method":"p\xff\xfeng"}\n')
    assert_error(await server.read(), -32700)
    await server.assert_alive()


# -- -32600 invalid requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"42", b'"x"', b"null", b"true", b"3.5"])
async def test_non_object_is_32600_J01(server: Proc, payload: bytes) -> None:
    """J-01: a JSON value that is not an object (or an allowed batch) is -32600, id omitted."""
    await server.write(payload + b"\n")
    assert_error(await server.read(), -32600)
    await server.assert_alive()


async def test_wrong_jsonrpc_version_echoes_readable_id_J01_J08(server: Proc) -> None:
    """J-01/J-08: "jsonrpc" must be "2.0"; the readable id is echoed in the -32600."""
    await server.send({"jsonrpc": "1.0", "id": "v1", "method": "ping"})
    assert_error(await server.read(), -32600, id_="v1")
    await server.assert_alive()


async def test_null_id_is_32600_J03(server: Proc) -> None:
    """J-03: "id": null is forbidden: -32600 (never treated as a notification and silently dropped)."""
    await server.send({"jsonrpc": "2.0", "id": None, "method": "ping"})
    assert_error(await server.read(), -32600)
    await server.assert_alive()


async def test_batch_before_initialize_is_32600_J13(server: Proc) -> None:
    """J-13: no batching before a revision allows it: one -32600, id omitted, nothing in it runs."""
    await server.write(line([{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "method": "ping"}]))
    assert_error(await server.read(), -32600)
    await server.assert_alive()


async def test_batch_on_2025_06_18_is_32600_with_null_id_J13_J08(server: Proc) -> None:
    """J-13/J-08: a 25.06 peer rejects an array with one -32600; id null on this revision."""
    await server.initialize("2025-06-18")
    await server.write(line([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]))
    assert_error(await server.read(), -32600, id_=None)
    await server.assert_alive()


async def test_batch_on_2025_03_26_gets_array_of_responses_J11(server: Proc) -> None:
    """J-11: after initialize with 2025-03-26 a batch is accepted and answered with an array of responses."""
    await server.initialize("2025-03-26")
    await server.write(line([
        {"jsonrpc": "2.0", "id": "b1", "method": "ping"},
        {"jsonrpc": "2.0", "id": "b2", "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "in a batch"}}},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
        {"jsonrpc": "2.0", "id": "b3", "method": "no/such/method"},
    ]))
    answer = await server.read()
    assert isinstance(answer, list), answer
    by_id = {m["id"]: m for m in answer}
    assert set(by_id) == {"b1", "b2", "b3"}  # J-09: nothing for the notification
    assert by_id["b1"] == {"jsonrpc": "2.0", "id": "b1", "result": {}}
    assert by_id["b2"]["result"]["content"] == [{"type": "text", "text": "in a batch"}]
    assert_error(by_id["b3"], -32601, id_="b3")
    await server.assert_alive()


async def test_initialize_in_a_batch_is_rejected_J12(server: Proc) -> None:
    """J-12: initialize is never part of a batch; that member gets -32600 with its id."""
    await server.initialize("2025-03-26")
    await server.write(line([
        {"jsonrpc": "2.0", "id": "i2", "method": "initialize", "params": {"protocolVersion": "2025-03-26", "capabilities": {}}},
        {"jsonrpc": "2.0", "id": "p2", "method": "ping"},
    ]))
    answer = await server.read()
    assert isinstance(answer, list) and len(answer) == 2, answer
    by_id = {m["id"]: m for m in answer}
    assert_error(by_id["i2"], -32600, id_="i2")
    assert by_id["p2"]["result"] == {}
    await server.assert_alive()


async def test_ten_megabyte_line_is_32600_and_server_goes_on_T_STDIO_02(server: Proc) -> None:
    """T-STDIO-02: a 10 MB line (over the 8 MiB default) is answered with -32600 and skipped; the next requests work.
    J-08: the error carries the request's id, read from the head of the line (never parsed whole)."""
    big = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"'
    big += b"x" * (10 * 1024 * 1024) + b'"}}}\n'
    await server.write(big)
    assert_error(await server.read(), -32600, id_=1)
    id_ = server.next_id()
    await server.send({"jsonrpc": "2.0", "id": id_, "method": "ping"})
    assert await server.read_response(id_) == {"jsonrpc": "2.0", "id": id_, "result": {}}
    resp = await server.call("tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}})
    assert resp["result"]["structuredContent"] == {"result": 5}
    await server.assert_alive()


@pytest.mark.parametrize(("version", "id_rule"), [(None, "omit"), ("2025-06-18", None), ("2025-11-25", "omit")])
async def test_oversized_line_error_id_per_revision_T_STDIO_02_J08(version: str | None, id_rule: Any) -> None:
    """T-STDIO-02/J-08: with a small configured limit, an oversized line streamed in pieces gets one -32600,
    id omitted before 25.11 is known / from 25.11, null on 25.06; then the server goes on."""
    p = await spawn(env={"ANYPORT_MAX_MESSAGE_BYTES": "2048"})
    try:
        if version is not None:
            await p.initialize(version)
        for _ in range(8):
            await p.write(b"y" * 1000)
            await asyncio.sleep(0.01)
        await p.write(b"\n")
        assert_error(await p.read(), -32600, id_=id_rule)
        await p.assert_alive()
    finally:
        await p.close(timeout=TIMEOUT)


async def test_crlf_lines_are_accepted_T_STDIO_02(server: Proc) -> None:
    """T-STDIO-02: \\r\\n line ends are accepted defensively."""
    await server.write(b'{"jsonrpc":"2.0","id":"crlf","method":"ping"}\r\n')
    assert await server.read() == {"jsonrpc": "2.0", "id": "crlf", "result": {}}
    await server.assert_alive()


async def test_message_split_across_writes_T_STDIO_02(server: Proc) -> None:
    """T-STDIO-02: a message written in pieces is one message once its newline arrives."""
    data = line({"jsonrpc": "2.0", "id": "split", "method": "ping"})
    for i in range(0, len(data), 7):
        await server.write(data[i : i + 7])
        await asyncio.sleep(0.01)
    assert await server.read() == {"jsonrpc": "2.0", "id": "split", "result": {}}


# -- -32601 / lifecycle / modern _meta ---------------------------------------------------------------------


async def test_unknown_method_modern_is_32601(server: Proc) -> None:
    """-32601: an unknown method on a well-formed modern request."""
    resp = await server.call("frobnicate/now")
    assert_error(resp, -32601, id_=resp["id"])
    await server.assert_alive()


async def test_unknown_method_legacy_is_32601(server: Proc) -> None:
    """-32601: an unknown method after a legacy handshake."""
    await server.initialize("2025-11-25")
    resp = await server.call("frobnicate/now", modern=False)
    assert_error(resp, -32601, id_=resp["id"])
    await server.assert_alive()


async def test_request_before_initialize_without_meta_is_rejected_L02_M04(server: Proc) -> None:
    """L-02/M-04: no handshake and no modern _meta: the request is refused with -32602 (not run)."""
    resp = await server.call("tools/call", {"name": "echo", "arguments": {"text": "x"}}, modern=False)
    err = assert_error(resp, -32602, id_=resp["id"])
    assert "protocolVersion" in err["message"]
    await server.assert_alive()


async def test_ping_before_initialize_L19(server: Proc) -> None:
    """L-19: ping is answered with {} before initialization."""
    await server.send({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert await server.read() == {"jsonrpc": "2.0", "id": 1, "result": {}}


async def test_second_initialize_is_rejected_L02(server: Proc) -> None:
    """L-02: a second initialize on the same stdio process is an error; the session goes on."""
    await server.initialize("2025-11-25")
    resp = await server.call("initialize", {"protocolVersion": "2024-11-05", "capabilities": {}}, modern=False)
    assert_error(resp, -32600, id_=resp["id"])
    await server.assert_alive()


async def test_unsupported_version_in_meta_is_32022_M08(server: Proc) -> None:
    """M-08: an unsupported _meta version is -32022 with data.supported and data.requested."""
    id_ = server.next_id()
    bad_meta = {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    await server.send({"jsonrpc": "2.0", "id": id_, "method": "tools/list", "params": {"_meta": bad_meta}})
    err = assert_error(await server.read_response(id_), -32022, id_=id_)
    assert err["data"]["requested"] == "2099-01-01"
    assert err["data"]["supported"] == [MODERN]
    await server.assert_alive()


async def test_missing_client_capabilities_is_32602_M04(server: Proc) -> None:
    """M-04: a request missing io.modelcontextprotocol/clientCapabilities is -32602."""
    id_ = server.next_id()
    partial = {"io.modelcontextprotocol/protocolVersion": MODERN}
    await server.send({"jsonrpc": "2.0", "id": id_, "method": "tools/list", "params": {"_meta": partial}})
    assert_error(await server.read_response(id_), -32602, id_=id_)
    await server.assert_alive()


async def test_bad_log_level_in_meta_is_32602_M19(server: Proc) -> None:
    """M-19: an invalid per-request log level is -32602."""
    id_ = server.next_id()
    meta = {**META, "io.modelcontextprotocol/logLevel": "loud"}
    await server.send({"jsonrpc": "2.0", "id": id_, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": meta}})
    assert_error(await server.read_response(id_), -32602, id_=id_)
    await server.assert_alive()


async def test_ping_with_modern_meta_is_32601(server: Proc) -> None:
    """M-12: ping was removed in 2026-07-28; a modern ping is method-not-found."""
    resp = await server.call("ping")
    assert_error(resp, -32601, id_=resp["id"])
    await server.assert_alive()


async def test_unknown_tool_is_32602_F_TOOL_07(server: Proc) -> None:
    """F-TOOL-07: an unknown tool is a JSON-RPC error (-32602), not a result."""
    resp = await server.call("tools/call", {"name": "nope", "arguments": {}})
    assert_error(resp, -32602, id_=resp["id"])
    await server.assert_alive()


# -- notifications and stray responses: never answered (J-09, U-04, U-05) ---------------------------------


BAD_NOTIFICATIONS = [
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": None}},
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 424242, "reason": 5}},
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": {"deep": [1]}}},
    {"jsonrpc": "2.0", "method": "notifications/cancelled"},
    {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": None, "progress": "lots"}},
    {"jsonrpc": "2.0", "method": "notifications/initialized", "params": {"unexpected": True}},
    {"jsonrpc": "2.0", "method": "notifications/no-such-thing", "params": {"x": [1, 2, 3]}},
    {"jsonrpc": "2.0", "method": "notifications/roots/list_changed", "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "1999"}}},
]


@pytest.mark.parametrize("bad", BAD_NOTIFICATIONS)
async def test_notification_with_bad_content_gets_no_response_J09_U04(server: Proc, bad: dict[str, Any]) -> None:
    """J-09/U-04: a notification is never answered, even with invalid content; the next line is the next answer."""
    await server.send(bad)
    await server.send({"jsonrpc": "2.0", "id": "after", "method": "ping"})
    assert await server.read() == {"jsonrpc": "2.0", "id": "after", "result": {}}
    await server.assert_alive()


async def test_bad_notifications_after_initialize_get_no_response_J09(server: Proc) -> None:
    """J-09: same on an initialized legacy session: all bad notifications in a row, then one ping answer."""
    await server.initialize("2025-11-25")
    for bad in BAD_NOTIFICATIONS:
        await server.send(bad)
    await server.send({"jsonrpc": "2.0", "id": "after-all", "method": "ping"})
    assert await server.read() == {"jsonrpc": "2.0", "id": "after-all", "result": {}}
    await server.assert_alive()


async def test_stray_response_is_ignored_U05(server: Proc) -> None:
    """U-05: a response to nothing we asked is ignored (no error sent back)."""
    await server.initialize("2025-11-25")
    await server.send({"jsonrpc": "2.0", "id": 777, "result": {"late": True}})
    await server.send({"jsonrpc": "2.0", "id": 778, "error": {"code": -1, "message": "late"}})
    await server.send({"jsonrpc": "2.0", "id": "next", "method": "ping"})
    assert await server.read() == {"jsonrpc": "2.0", "id": "next", "result": {}}


async def test_cancel_stops_request_and_suppresses_its_answer_U04(server: Proc) -> None:
    """U-04/T-STDIO-14: a cancelled request sends nothing more; the server keeps serving."""
    await server.initialize("2025-11-25")
    await server.send({"jsonrpc": "2.0", "id": "slow", "method": "tools/call",
                       "params": {"name": "sleep", "arguments": {"seconds": 3}}})
    await asyncio.sleep(0.3)
    await server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "slow", "reason": "test"}})
    # The next answers are the liveness checks; a late "slow" answer would fail read_response.
    await server.assert_alive()
    await asyncio.sleep(3.2)  # past the point where the sleep would have finished
    await server.send({"jsonrpc": "2.0", "id": "final", "method": "ping"})
    assert await server.read() == {"jsonrpc": "2.0", "id": "final", "result": {}}


async def test_stdout_has_only_jsonrpc_after_a_storm_of_bad_input_T_STDIO_03(server: Proc) -> None:
    """T-STDIO-03/J-01: after all kinds of bad input, every stdout line is one JSON-RPC message."""
    storm = [b"{", b"42", b"[]", b'{"jsonrpc":"2.0"}', b'{"id":1}', b'{"jsonrpc":"2.0","id":true,"method":"x"}']
    for payload in storm:
        await server.write(payload + b"\n")
    for _ in storm:
        msg = await server.read()
        assert msg["jsonrpc"] == "2.0" and "error" in msg
    await server.assert_alive()


# -- T-STDIO-03: nothing but MCP messages on stdout ------------------------------------------------------------


NOISY_SERVER = textwrap.dedent(
    """
    import logging
    import os
    import subprocess
    import sys

    from anyport import Server

    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    app = Server("noisy", version="1.0.0")


    @app.tool()
    def noisy() -> str:
        \"\"\"Writes to stdout in every way a library might.\"\"\"
        print("noise")
        sys.stdout.flush()
        os.write(1, b"raw\\n")
        logging.getLogger("noisy").info("logged-noise")
        subprocess.run([sys.executable, "-c", "print('child-noise')"], check=True)
        return "quiet"


    @app.tool()
    async def noisy_async() -> str:
        \"\"\"Unflushed print from a coroutine.\"\"\"
        print("async-noise")
        return "quiet-async"
    """
)


async def test_tool_prints_go_to_stderr_not_stdout_T_STDIO_03(tmp_path: Path) -> None:
    """T-STDIO-03/T-STDIO-05: print(), os.write(1, ...), a stdout logging handler and a child process
    all end up on stderr; stdout carries only valid JSON-RPC lines."""
    path = tmp_path / "noisy_server.py"
    path.write_text(NOISY_SERVER)
    p = await spawn(path)
    try:
        for tool, text in (("noisy", "quiet"), ("noisy_async", "quiet-async"), ("noisy", "quiet")):
            resp = await p.call("tools/call", {"name": tool, "arguments": {}})
            assert resp["result"]["content"] == [{"type": "text", "text": text}], resp
        await p.initialize("2025-11-25")
        resp = await p.call("tools/call", {"name": "noisy", "arguments": {}}, modern=False)
        assert resp["result"]["content"][0]["text"] == "quiet"
    finally:
        await p.close(timeout=TIMEOUT)
    assert p.proc.stdout is not None
    rest = await asyncio.wait_for(p.proc.stdout.read(), TIMEOUT)
    for raw in rest.splitlines():
        msg = json.loads(raw)  # every remaining stdout line is JSON-RPC too
        assert msg.get("jsonrpc") == "2.0"
    err = p.stderr.decode(errors="replace")
    for marker in ("noise", "raw", "logged-noise", "child-noise", "async-noise"):
        assert marker in err, f"{marker!r} not on stderr:\n{err}"
    assert p.proc.returncode == 0


BANNER_SERVER = textwrap.dedent(
    """
    from anyport import Server

    print("Starting my great server v1 (banner on import)")
    app = Server("banner", version="1.0.0")


    @app.tool()
    def hello() -> str:
        return "hi"
    """
)


async def test_import_time_banner_goes_to_stderr_T_STDIO_03(tmp_path: Path) -> None:
    """T-STDIO-03: a banner printed while the server module is imported must not reach stdout."""
    path = tmp_path / "banner_server.py"
    path.write_text(BANNER_SERVER)
    p = await spawn(path)
    try:
        id_ = p.next_id()
        await p.send({"jsonrpc": "2.0", "id": id_, "method": "ping"})
        first = await p.read_line()
        # the first stdout line must be the JSON-RPC answer, not the banner
        assert first.startswith(b"{"), f"non-JSON-RPC output on stdout: {first!r}"
        assert json.loads(first) == {"jsonrpc": "2.0", "id": id_, "result": {}}
    finally:
        await p.close(timeout=TIMEOUT)
    assert "banner on import" in p.stderr.decode(errors="replace")


# -- T-STDIO-11: exit on stdin EOF ----------------------------------------------------------------------------------


async def test_exits_promptly_when_stdin_closes_T_STDIO_11(server: Proc) -> None:
    """T-STDIO-11: the server exits promptly (< 5 s) and cleanly on stdin EOF."""
    await server.assert_alive()
    elapsed = await server.close(timeout=5.0)
    assert elapsed < 5.0
    assert server.proc.returncode == 0


async def test_exits_on_eof_before_any_message_T_STDIO_11(server: Proc) -> None:
    """T-STDIO-11: EOF with no traffic at all also ends the process promptly."""
    elapsed = await server.close(timeout=5.0)
    assert elapsed < 5.0
    assert server.proc.returncode == 0


async def test_unterminated_last_line_is_answered_at_eof_T_STDIO_11(server: Proc) -> None:
    """T-STDIO-11/T-STDIO-02: a final message without newline is still handled before exit."""
    await server.write(b'{"jsonrpc":"2.0","id":"last","method":"ping"}')
    assert server.proc.stdin is not None
    server.proc.stdin.close()
    assert await server.read() == {"jsonrpc": "2.0", "id": "last", "result": {}}
    elapsed = await server.close(timeout=5.0)
    assert elapsed < 5.0


async def test_exits_on_eof_with_a_long_request_in_flight_T_STDIO_11(server: Proc) -> None:
    """T-STDIO-11: a 30 s tool in flight does not keep the process alive long after stdin EOF."""
    await server.send({"jsonrpc": "2.0", "id": "long", "method": "tools/call",
                       "params": {"name": "sleep", "arguments": {"seconds": 30}, "_meta": META}})
    await asyncio.sleep(0.3)
    elapsed = await server.close(timeout=9.0)
    assert elapsed < 9.0
