"""The stdio client against real subprocesses: crashes, hangs, big messages, era detection."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

import pytest

from anyport import BrokenConnectionError, Client, Server, ServerExitedError

SERVER_HEAD = "from anyport import Server\napp = Server('s')\n"


def write_server(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "srv.py"
    path.write_text(SERVER_HEAD + textwrap.dedent(body) + "\napp.run()\n")
    return [sys.executable, str(path)]


async def test_server_crash_mid_call_is_reported_with_exit_code_and_stderr(tmp_path: Path) -> None:
    """A server that dies while a call is in flight: ServerExitedError with its exit code and stderr tail."""
    cmd = write_server(tmp_path, """
        import os, sys
        @app.tool()
        def die() -> str:
            sys.stderr.write('fatal: out of cheese\\n'); sys.stderr.flush()
            os._exit(3)
    """)
    async with Client(cmd, era="legacy", timeout=10) as c:
        with pytest.raises(ServerExitedError) as exc:
            await c.call_tool("die")
        with pytest.raises(ServerExitedError):  # later calls fail fast with the same cause
            await c.call_tool("die")
    assert exc.value.returncode == 3
    assert "out of cheese" in exc.value.stderr_tail


async def test_server_that_exits_at_start_fails_connect(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("raise SystemExit('no config found')\n")
    with pytest.raises(ServerExitedError) as exc:
        async with Client([sys.executable, str(path)], era="auto", timeout=10):
            pass
    assert exc.value.returncode == 1 and "no config found" in exc.value.stderr_tail


async def test_missing_command_is_a_broken_connection() -> None:
    with pytest.raises(BrokenConnectionError, match="cannot start"):
        async with Client(["/nonexistent/anyport-server"]):
            pass


async def test_shutdown_escalates_to_sigkill_T_STDIO_09(tmp_path: Path) -> None:
    """T-STDIO-09: close stdin, then SIGTERM, then SIGKILL for a server that ignores both."""
    cmd = write_server(tmp_path, """
        import signal, threading, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        @app.tool()
        def hang() -> str:
            return 'ok'
        # keep the process alive after stdin EOF
        threading.Thread(target=lambda: time.sleep(60)).start()
    """)
    from anyport.transports.stdio import StdioClientStream

    stream = StdioClientStream(cmd, shutdown_timeout=0.5)
    await stream.start()
    client = Client(stream, era="legacy", timeout=10)
    await client.connect()
    assert (await client.call_tool("hang")).text == "ok"
    start = time.monotonic()
    await client.aclose()
    elapsed = time.monotonic() - start
    assert stream.process is not None and stream.process.returncode == -9  # killed
    assert elapsed < 5


async def test_messages_larger_than_64_KiB_both_ways(tmp_path: Path) -> None:
    """asyncio's default 64 KiB line limit is lifted: 5 MB each way."""
    cmd = write_server(tmp_path, """
        @app.tool()
        def size(blob: str) -> str:
            return 'y' * len(blob)
    """)
    async with Client(cmd, era="modern", timeout=30) as c:
        r = await c.call_tool("size", {"blob": "x" * 5_000_000})
    assert len(r.text) == 5_000_000


async def test_auto_era_falls_back_to_initialize_for_a_legacy_only_server_T_STDIO_15() -> None:
    """T-STDIO-15/16: a server without modern versions answers discover with an error; the client initializes."""
    from anyport import Server

    app = Server("old")
    app.modern_versions = ()
    async with Client(app, era="auto") as c:
        assert c.era == "legacy" and c.protocol_version == "2025-11-25"


async def test_auto_era_falls_back_on_silence_T_STDIO_16(tmp_path: Path) -> None:
    """A legacy server that never answers server/discover: the probe times out and the client initializes."""
    path = tmp_path / "silent.py"
    path.write_text(textwrap.dedent("""
        import json, sys
        for line in sys.stdin:
            msg = json.loads(line)
            if msg.get("method") == "initialize":
                print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {
                    "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                    "serverInfo": {"name": "silent", "version": "1"}}}), flush=True)
            elif msg.get("method") == "tools/list":
                print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {"tools": []}}), flush=True)
    """))
    async with Client([sys.executable, str(path)], era="auto", probe_timeout=0.5) as c:
        assert c.era == "legacy" and c.protocol_version == "2025-06-18"
        assert await c.list_tools() == []


async def test_client_refuses_a_version_it_does_not_speak_L_06(tmp_path: Path) -> None:
    path = tmp_path / "weird.py"
    path.write_text(textwrap.dedent("""
        import json, sys
        for line in sys.stdin:
            msg = json.loads(line)
            if "id" in msg:
                print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {
                    "protocolVersion": "1999-01-01", "capabilities": {}, "serverInfo": {"name": "w", "version": "1"}}}), flush=True)
    """))
    from anyport import LocalProtocolError

    with pytest.raises(LocalProtocolError, match="1999-01-01"):
        async with Client([sys.executable, str(path)], era="legacy"):
            pass


async def test_concurrent_calls_are_correlated_by_id(tmp_path: Path) -> None:
    cmd = write_server(tmp_path, """
        import asyncio
        @app.tool()
        async def delayed(n: int) -> int:
            await asyncio.sleep(0.01 * (n % 5))
            return n
    """)
    async with Client(cmd, era="legacy") as c:
        results = await asyncio.gather(*(c.call_tool("delayed", {"n": i}) for i in range(50)))
    assert [r.structured_content for r in results] == [{"result": i} for i in range(50)]


@pytest.mark.parametrize("target", ["ftp://example.com/mcp", 42, object()])
async def test_a_target_the_client_cannot_use_is_a_clear_error(target: object) -> None:
    """Not a server, a URL, a command list or a message stream: ValueError / TypeError naming what it takes."""
    with pytest.raises((ValueError, TypeError), match=r"URL|takes a server"):
        async with Client(target):  # type: ignore[arg-type]
            pass


async def test_an_asgi_app_given_as_target_says_to_serve_it() -> None:
    from anyport.transports.http import create_app

    with pytest.raises(TypeError, match="an ASGI app: serve it and pass its URL"):
        async with Client(create_app(Server("x"))):  # type: ignore[arg-type]
            pass
