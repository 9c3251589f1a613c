"""``anyport probe`` against servers that fail in one known way each: the right exit code, error
code and phase every time, within the timeouts (--timeout 0.5 s per phase)."""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.probe._servers import ScriptedHTTP, tcp_server
from tests.probe.conftest import Outcome, run_probe
from tests.transports._http_helpers import running

SCRIPTED = [sys.executable, str(Path(__file__).parent / "stdio_scripted.py")]
#: A hang of one 0.5 s phase, plus start-up and shutdown, is well under this.
BOUND = 6.0


@contextmanager
def scripted(mode: str) -> Iterator[str]:
    app = ScriptedHTTP(mode)
    with running(app) as base:
        try:
            yield f"{base}/mcp"
        finally:
            app.stop()


def _failed(out: Outcome, exit_code: int, code: str, phase: str) -> None:
    assert out.exit_code == exit_code, out.report
    assert out.error_line is not None
    assert (out.error_line["code"], out.error_line["phase"]) == (code, phase), out.error_line
    failed = out.phase(phase)
    assert failed["ok"] is False and failed["error"] == code
    assert out.seconds < BOUND


def test_scripted_server_works_when_it_behaves() -> None:
    """The baseline: the scripted server is a legacy server (discover -> -32601, then initialize, T-STDIO-16)."""
    with scripted("ok") as url:
        out = run_probe("--timeout", "0.5", "--call", "echo", url)
    assert out.exit_code == 0, out.report
    assert (out.report["era"], out.report["protocol_version"]) == ("legacy", "2025-11-25")


@pytest.mark.parametrize(
    ("mode", "phase", "call"),
    [("hang_handshake", "handshake", []), ("hang_tools_list", "tools_list", []), ("hang_tools_call", "tools_call", ["--call", "echo"])],
)
def test_http_server_hanging_in_each_phase(mode: str, phase: str, call: list[str]) -> None:
    """L-16: every phase is bounded; a server that never answers is unreachable (4), named by phase."""
    with scripted(mode) as url:
        out = run_probe("--timeout", "0.5", *call, url)
    _failed(out, 4, "timeout", phase)
    assert out.phase(phase)["ms"] >= 450


def test_tcp_connect_that_never_completes() -> None:
    """A listener whose accept queue is full: the kernel drops our SYN, connect hangs, the phase times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.1)
        out = run_probe("--timeout", "0.5", f"http://127.0.0.1:{port}/mcp")
    finally:
        for s in fillers:
            s.close()
        listener.close()
    _failed(out, 4, "timeout", "connect")


def test_tls_handshake_that_never_finishes() -> None:
    with tcp_server("silent") as port:
        out = run_probe("--timeout", "0.5", f"https://127.0.0.1:{port}/mcp")
    _failed(out, 4, "timeout", "tls")
    assert out.phases == ["resolve", "connect", "tls"]


def test_tls_to_a_plain_http_server_fails_as_tls() -> None:
    with scripted("ok") as url:
        out = run_probe("--timeout", "2", url.replace("http://", "https://"))
    assert out.exit_code == 4
    assert out.error_line is not None and out.error_line["code"] in ("tls_error", "connection_lost")
    assert out.error_line["phase"] == "tls"


def test_http_server_that_accepts_and_says_nothing() -> None:
    with tcp_server("silent") as port:
        out = run_probe("--timeout", "0.5", f"http://127.0.0.1:{port}/mcp")
    _failed(out, 4, "timeout", "handshake")


def test_connection_dropped() -> None:
    """A server that reads the request and closes the connection: unreachable (4), not a hang."""
    with tcp_server("drop") as port:
        out = run_probe("--timeout", "2", f"http://127.0.0.1:{port}/mcp")
    assert out.exit_code == 4, out.report
    assert out.error_line is not None and out.error_line["code"] in ("connection_lost", "unreachable")
    assert out.error_line["phase"] == "handshake"
    assert out.seconds < BOUND


def test_connection_refused() -> None:
    with tcp_server("silent") as port:
        pass  # the port is closed again
    out = run_probe("--timeout", "0.5", f"http://127.0.0.1:{port}/mcp")
    _failed(out, 4, "unreachable", "connect")


def test_http_garbage_is_a_protocol_error() -> None:
    with scripted("garbage") as url:
        out = run_probe("--timeout", "0.5", url)
    _failed(out, 6, "protocol_error", "handshake")


@pytest.mark.parametrize(("status", "exit_code", "code"), [(503, 4, "unreachable"), (403, 3, "auth_required")])
def test_http_status_without_mcp(status: int, exit_code: int, code: str) -> None:
    """A 5xx (a proxy without its backend) is unreachable; a 403 is the Inspector's auth code 3 (A-34)."""
    with scripted(f"status_{status}") as url:
        out = run_probe("--timeout", "0.5", url)
    _failed(out, exit_code, code, "handshake")
    assert out.error_line is not None and out.error_line["status"] == status


def test_http_unknown_protocol_version() -> None:
    """L-05/L-06: a server that answers initialize with a version we do not speak: exit 6."""
    with scripted("old_version") as url:
        out = run_probe("--timeout", "0.5", "--era", "legacy", url)
    _failed(out, 6, "version_mismatch", "handshake")
    assert "1999-01-01" in (out.error_line or {})["message"]


def test_pinned_era_the_server_does_not_speak() -> None:
    """M-09/T-STDIO-16: --era modern against a legacy-only server (server/discover -> -32601): exit 6."""
    with scripted("ok") as url:
        out = run_probe("--timeout", "0.5", "--era", "modern", url)
    _failed(out, 6, "version_mismatch", "handshake")
    assert out.error_line is not None and out.error_line["jsonrpc_code"] == -32601


def test_tool_annotated_as_writing_is_not_called() -> None:
    with scripted("ok") as url:
        out = run_probe("--timeout", "0.5", "--call", "wipe", url)
    _failed(out, 5, "tool_not_read_only", "tools_call")


@pytest.mark.parametrize(
    ("mode", "exit_code", "code"),
    [("hang", 4, "timeout"), ("garbage", 6, "protocol_error"), ("exit", 4, "server_exited"), ("old_version", 6, "version_mismatch")],
)
def test_stdio_misbehaviour(mode: str, exit_code: int, code: str) -> None:
    """T-STDIO-*: a stdio server that hangs, prints garbage, exits, or speaks an unknown version."""
    out = run_probe("--timeout", "0.5", "--", *SCRIPTED, mode)
    _failed(out, exit_code, code, "handshake")
    if mode == "exit":
        assert out.error_line is not None and out.error_line["returncode"] == 3
        assert "failing on purpose" in out.error_line["stderr_tail"]


def test_total_timeout_bounds_the_whole_probe() -> None:
    with scripted("hang_tools_list") as url:
        out = run_probe("--timeout", "5", "--total-timeout", "0.6", url)
    assert out.exit_code == 4
    assert out.error_line is not None and (out.error_line["code"], out.error_line["phase"]) == ("timeout", "tools_list")
    assert "total budget" in out.error_line["message"]
    assert out.seconds < BOUND


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["http://"],
        ["ftp://example.invalid/mcp"],
        ["--header", "no colon", "http://127.0.0.1:1/mcp"],
        ["--no-such-option", "http://127.0.0.1:1/mcp"],
        ["--timeout", "abc", "http://127.0.0.1:1/mcp"],
        ["--auth-challenge", "--", "python", "server.py"],
        ["--expect-tools-hash", "abc", "http://127.0.0.1:1/mcp"],
        ["--config", "x.toml", "http://127.0.0.1:1/mcp"],
        ["--serve"],
        ["--serve", "--config", "x.toml", "http://127.0.0.1:1/mcp"],
    ],
)
def test_usage_errors_exit_1(args: list[str]) -> None:
    """Bad input is a usage error: exit 1 (the Inspector's code), one JSON error line on stderr."""
    import json

    from click.testing import CliRunner

    from anyport.cli._probe import probe

    result = CliRunner().invoke(probe, args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert json.loads(last)["error"]["code"] == "usage"
