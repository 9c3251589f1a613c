"""``anyport connect URL``: a stdio server forwarding to a remote server, spawned by official SDK clients.

The remote is the interop fixture served over HTTP; the fixture clients of the official Python and
TypeScript SDKs spawn ``anyport connect`` as their stdio server and must get every fixture answer,
server->client requests (asked of the local host on its stdio), progress and logs included.

Then peers nobody here wrote at both ends: a server written with the official Python SDK
(peers/sdk_http_server.py, Streamable HTTP and HTTP+SSE) driven by that SDK's stdio ClientSession,
and the MCP Inspector's CLI (peers/package.json) in front of that server and of anyport's."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    LoggingMessageNotificationParams,
    TextContent,
    TextResourceContents,
)

from anyport.cli._bridge import commands
from anyport.transports.http import create_app
from tests.bridge._helpers import HERE, PY_PEERS, TS_PEERS, node
from tests.interop._report import check_report
from tests.interop.fixture_server import app as fixture_app
from tests.interop.test_official_peers import _peer_report
from tests.transports._http_helpers import running

CONNECT = [sys.executable, "-m", "anyport.cli._bridge", "connect"]


@pytest.mark.parametrize(
    ("client", "era", "remote"),
    [("python", "legacy", "streamable-http"), ("python", "modern", "streamable-http"), ("python", "legacy", "sse"),
     ("typescript", "legacy", "streamable-http")],
)
def test_fixture_through_connect(client: str, era: str, remote: str) -> None:
    """T-STDIO-01..03 on the local side; T-BC-02 (Streamable HTTP) or T-SSE-* (the remote's /sse) upstream;
    the remote's server->client requests asked of a legacy host as requests, of a 2026-07-28 host as
    MRTR rounds (parked upstream calls, sealed requestState)."""
    with running(create_app(fixture_app)) as base:
        url = f"{base}/sse" if remote == "sse" else f"{base}/mcp"
        local = [*CONNECT, url, "--transport", remote]
        if client == "python":
            cmd = [sys.executable, str(PY_PEERS / "sdk_client.py"), "--era", era, "--", *local]
        else:
            cmd = [node(), str(TS_PEERS / "client.mjs"), "--era", era, "--", *local]
        report = _peer_report(cmd)
    version = {"legacy": "2025-11-25", "modern": "2026-07-28"}[era]
    # A 2026-07-28 host is asked the remote's questions in MRTR rounds (M-10, M-14..M-18).
    check_report(report, era=era, version=version)


def test_connect_refuses_what_it_cannot_use() -> None:
    """A clear one-line error (exit 1 or 2) and nothing on stdout: a bad URL, a bad header, an unreachable server."""
    runner = CliRunner()
    result = runner.invoke(commands, ["connect", "ftp://example"])
    assert result.exit_code == 2 and "http:// or https://" in result.output
    proc = subprocess.run([*CONNECT, "http://127.0.0.1:9/mcp"], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and proc.stdout == b""
    assert b"cannot connect to http://127.0.0.1:9/mcp" in proc.stderr
    proc = subprocess.run([*CONNECT, "http://127.0.0.1:9/mcp", "--header", "nocolon"], capture_output=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == b"" and b"NAME: VALUE" in proc.stderr


def test_connect_resumes_a_dropped_stream() -> None:
    """T-HTTP-12/13/30: the remote closes every POST's SSE connection right after its priming event;
    the local host still gets every answer (progress, server->client requests) through the resumes."""
    with running(create_app(fixture_app, sse_poll_after=0.0, sse_retry_ms=20)) as base:
        cmd = [sys.executable, str(PY_PEERS / "sdk_client.py"), "--era", "legacy", "--", *CONNECT, f"{base}/mcp"]
        report = _peer_report(cmd)
    check_report(report, era="legacy", version="2025-11-25")


# -- in front of the official Python SDK's HTTP server; driven by the MCP Inspector CLI -------------

SDK_SERVER = HERE / "peers" / "sdk_http_server.py"
INSPECTOR = HERE / "peers" / "node_modules" / "@modelcontextprotocol" / "inspector-cli"
STEP = 20.0  # seconds any one exchange may take


@contextmanager
def sdk_remote(sse: bool = False) -> Iterator[str]:
    """tests/bridge/peers/sdk_http_server.py (mcp 2.3.0) on a loopback port it picks; its base URL; always stopped."""
    with tempfile.TemporaryFile() as errlog:
        proc = subprocess.Popen([sys.executable, str(SDK_SERVER), *(["--sse"] if sse else [])],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errlog)
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            line = proc.stdout.readline() if ready else b""
            if not line.strip().isdigit():
                errlog.seek(0)
                raise AssertionError(f"the SDK server did not start: {line!r} {errlog.read()[-2000:]!r}")
            yield f"http://127.0.0.1:{int(line)}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


class _Host:
    """What the SDK client answers and receives: the local host of ``anyport connect``."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.logs: list[tuple[str, str | None, Any]] = []
        self.progress: list[tuple[float, float | None, str | None]] = []
        self.all_in = anyio.Event()  # three progress notifications and a log message

    async def elicit(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(f"elicit: {params.message}")
        return ElicitResult(action="accept", content={"name": "Ada"})

    async def sample(self, context: Any, params: CreateMessageRequestParams) -> CreateMessageResult:
        text = params.messages[0].content
        self.asked.append(f"sample: {text.text if isinstance(text, TextContent) else text}")
        return CreateMessageResult(role="assistant", model="test-model", content=TextContent(type="text", text="short"),
                                   stop_reason="endTurn")

    async def log(self, params: LoggingMessageNotificationParams) -> None:
        self.logs.append((params.level, params.logger, params.data))
        self._check()

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append((progress, total, message))
        self._check()

    def _check(self) -> None:
        if len(self.progress) >= 3 and self.logs:
            self.all_in.set()


def _text(result: Any) -> str | None:
    return next((block.text for block in result.content if isinstance(block, TextContent)), None)


@pytest.mark.interop
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks logging and sampling deprecated at 2026-07-28
@pytest.mark.parametrize("remote", ["streamable-http", "sse"])
async def test_sdk_client_through_connect_to_sdk_server(remote: str, tmp_path: Path) -> None:
    """Both ends the official Python SDK (mcp 2.3.0): its stdio client spawns ``anyport connect`` in front
    of its own HTTP server. T-STDIO-01..03 locally; upstream T-BC-02 (Streamable HTTP: the SDK's
    dual-era server, whose questions come as M-14..M-18 input_required results at 2026-07-28) or
    T-SSE-01..03 (HTTP+SSE, the handshake era: requests mid-call). L-04 serverInfo/instructions passed through;
    progress with the host's token and messages (U-05); a log message; a resource, a prompt; a tool
    error as isError (not a JSON-RPC error); elicitation and sampling asked of the host as
    server->client requests on its request in flight and answered by its callbacks."""
    host = _Host()
    with sdk_remote(sse=remote == "sse") as base, (tmp_path / "connect.err").open("w") as errlog:
        url = f"{base}/sse" if remote == "sse" else f"{base}/mcp"
        params = StdioServerParameters(command=sys.executable, args=[*CONNECT[1:], url, "--transport", remote])
        with anyio.fail_after(60):
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(
                read, write, read_timeout_seconds=STEP, sampling_callback=host.sample,
                elicitation_callback=host.elicit, logging_callback=host.log,
            ) as session:
                init = await session.initialize()
                assert init.server_info.name == "sdk-remote" and init.server_info.version == "2.3.0"
                assert init.instructions == "An official Python SDK server behind anyport connect."
                assert init.capabilities.tools is not None and init.capabilities.prompts is not None
                tools = await session.list_tools()
                assert sorted(t.name for t in tools.tools) == ["add", "ask_name", "fail", "steps", "summarize"]

                added = await session.call_tool("add", {"a": 2, "b": 3})
                assert added.structured_content == {"result": 5} and not added.is_error

                done = await session.call_tool("steps", {"count": 3}, progress_callback=host.on_progress)
                assert _text(done) == "done 3" and not done.is_error
                with anyio.move_on_after(5):  # the SDK hands notifications to callbacks on a task of their own
                    await host.all_in.wait()
                assert host.progress == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
                assert host.logs == [("info", "sdk-remote", "3 steps done")]

                read_result = await session.read_resource("res://greeting")
                content = read_result.contents[0]
                assert isinstance(content, TextResourceContents) and content.text == "Hello from the SDK"
                prompt = await session.get_prompt("greet", {"name": "Bob"})
                message = prompt.messages[0].content
                assert isinstance(message, TextContent) and message.text == "Say hello to Bob"

                failed = await session.call_tool("fail", {})
                assert failed.is_error and "boom" in (_text(failed) or "")

                named = await session.call_tool("ask_name", {})
                assert _text(named) == "Hello, Ada"
                summary = await session.call_tool("summarize", {"text": "a long text"})
                assert _text(summary) == "summary: short"
                assert host.asked == ["elicit: What is your name?", "sample: a long text"]


def inspector(target: list[str], *args: str) -> Any:
    """``mcp-inspector-cli --cli TARGET... ARGS`` (the bin of @modelcontextprotocol/inspector-cli): the JSON it prints.

    Run with node directly (no npx: nothing fetched, no update check); its CLI mode starts no web
    server and opens no browser; its only peer is the stdio child. The target comes first and the
    Inspector's options after it, as its README writes them: its launcher re-parses everything
    (``--`` is not kept), so the child's own ``--options`` would be taken as the Inspector's.
    The working directory is the package's ``build/``: the CLI looks for ``../package.json`` relative
    to the current directory (for its clientInfo) and fails elsewhere."""
    cli = INSPECTOR / "build" / "cli.js"
    assert cli.is_file(), "run make test (npm ci of tests/bridge/peers)"
    # A session of its own: on a timeout the launcher, the CLI it starts and connect are all stopped.
    proc = subprocess.Popen([node(), str(cli), "--cli", *target, *args], cwd=cli.parent, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher is not reaped yet: the group is still ours
        proc.communicate()
        raise
    assert proc.returncode == 0, err.decode()[-3000:]
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        raise AssertionError(f"the Inspector printed no JSON: {out[:500]!r} / {err[-2000:]!r}") from None


@pytest.mark.interop
@pytest.mark.parametrize("remote", ["anyport", "sdk", "sdk-sse"])
def test_inspector_cli_through_connect(remote: str) -> None:
    """The MCP Inspector's CLI (the TypeScript SDK v1 client, 2025-11-25 handshake) spawns ``anyport connect``
    (T-STDIO-01..03) in front of anyport's fixture server or the official Python SDK's server: a
    2026-07-28 remote on Streamable HTTP (the legacy host gets no resultType and no serverInfo stamp),
    or the SDK's HTTP+SSE transport, reached by connect's default ``--transport auto`` falling back
    from Streamable HTTP (T-BC-02..04; the Inspector passes no options to its child). tools/list,
    tools/call with arguments converted by the tool's inputSchema; on Streamable HTTP also a tool
    error as isError, a resource read, a prompt."""
    with ExitStack() as stack:
        if remote == "anyport":
            url = stack.enter_context(running(create_app(fixture_app))) + "/mcp"
            tools, greeting = {"add", "echo", "fail", "log", "progress"}, "Hello, world"
        else:
            url = stack.enter_context(sdk_remote(sse=remote == "sdk-sse")) + ("/sse" if remote == "sdk-sse" else "/mcp")
            tools, greeting = {"add", "ask_name", "fail", "steps", "summarize"}, "Hello from the SDK"
        target = [*CONNECT, url]
        listed = inspector(target, "--method", "tools/list")
        assert tools <= {tool["name"] for tool in listed["tools"]}
        add = next(tool for tool in listed["tools"] if tool["name"] == "add")
        assert add["inputSchema"]["properties"]["a"]["type"] == "integer"
        assert "_meta" not in listed and "resultType" not in listed

        called = inspector(target, "--method", "tools/call", "--tool-name", "add", "--tool-arg", "a=2", "b=3")
        assert called["structuredContent"] == {"result": 5} and called.get("isError") is False
        assert json.loads(called["content"][0]["text"]) == {"result": 5}
        if remote == "sdk-sse":
            return  # the rest is the same through either transport (test_sdk_client_through_connect_to_sdk_server)
        failed = inspector(target, "--method", "tools/call", "--tool-name", "fail")
        assert failed["isError"] is True and "boom" in failed["content"][0]["text"]

        read = inspector(target, "--method", "resources/read", "--uri", "res://greeting")
        assert read["contents"][0]["text"] == greeting
        prompt = inspector(target, "--method", "prompts/get", "--prompt-name", "greet", "--prompt-args", "name=Bob")
        assert prompt["messages"][0]["content"]["text"] == "Say hello to Bob"
