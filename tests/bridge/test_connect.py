"""``anyport connect URL``: a stdio server forwarding to a remote server, spawned by official SDK clients.

The remote is the interop fixture served over HTTP; the fixture clients of the official Python and
TypeScript SDKs spawn ``anyport connect`` as their stdio server and must get every fixture answer,
server->client requests (asked of the local host on its stdio), progress and logs included."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from anyport.cli._bridge import commands
from anyport.transports.http import create_app
from tests.bridge._helpers import PY_PEERS, TS_PEERS, node
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
    """T-STDIO-01..03 on the local side; T-BC-02 (Streamable HTTP) or T-SSE-* (the remote's /sse) upstream."""
    with running(create_app(fixture_app)) as base:
        url = f"{base}/sse" if remote == "sse" else f"{base}/mcp"
        local = [*CONNECT, url, "--transport", remote]
        if client == "python":
            cmd = [sys.executable, str(PY_PEERS / "sdk_client.py"), "--era", era, "--", *local]
        else:
            cmd = [node(), str(TS_PEERS / "client.mjs"), "--era", era, "--", *local]
        report = _peer_report(cmd)
    version = {"legacy": "2025-11-25", "modern": "2026-07-28"}[era]
    if era == "modern":
        # A 2026-07-28 host cannot be asked questions with requests (M-10): those steps fail cleanly.
        for step in ("ask_name", "summarize", "list_roots"):
            assert "2026-07-28" in report.pop(step)["error"]
            report[step] = {"text": {"ask_name": "Hello, Ada", "summarize": "sampled: hello", "list_roots": "file:///tmp/fixture-root"}[step]}
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
