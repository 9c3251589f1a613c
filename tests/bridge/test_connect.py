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
