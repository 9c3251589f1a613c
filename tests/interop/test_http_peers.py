"""Interop over HTTP with peers nobody here wrote: the TypeScript SDK (2.4.0) and the official Python SDK (mcp 2.3.0).

- the TS SDK client (``client.mjs --url``) against our server: stateful with SSE replies, stateful with
  JSON replies, stateless; both eras;
- our client against the TS SDK's own HTTP serving (``server.mjs --http PORT``: ``createMcpHandler`` for
  2026-07-28, sessionful ``WebStandardStreamableHTTPServerTransport`` for 2025 traffic);
- the Python SDK client against our server in stateless and JSON modes (its SSE-reply mode is in
  tests/client and tests/transports);
- our client against the Python SDK's legacy HTTP+SSE server (``sdk_server.py --sse PORT``), reached
  through the fallback from Streamable HTTP (T-BC-02..05) or the ``/sse`` URL hint.

Every server listens on 127.0.0.1 (a free port), every wait is bounded, every process is stopped.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from anyport.transports.http import create_app
from tests.interop._report import check_report, fixture_client, run_report
from tests.interop.fixture_server import app as fixture_app
from tests.interop.test_official_peers import _peer_report, _require_ts
from tests.transports._http_helpers import running

HERE = Path(__file__).parent
PY_PEERS = HERE / "peers" / "python"
TS_PEERS = HERE / "peers" / "ts"
VERSION = {"legacy": "2025-11-25", "modern": "2026-07-28"}
#: Server->client requests of the legacy era; they need a live SSE reply stream and a session.
SERVER_REQUESTS = ("ask_name", "summarize", "list_roots")
FULL = {
    "progress": {"text": "done 3", "events": [[1, 3], [2, 3], [3, 3]]},
    "log": {"text": "logged", "messages": [{"level": "warning", "logger": "fixture", "data": "hi"}]},
    "ask_name": {"text": "Hello, Ada"},
    "summarize": {"text": "sampled: hello"},
    "list_roots": {"text": "file:///tmp/fixture-root"},
}

pytestmark = pytest.mark.interop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _peer_server(cmd: list[str], port: int) -> Iterator[None]:
    """Run a peer server until its port accepts connections (30 s at most); always stop it."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise AssertionError(f"the peer server exited ({proc.returncode}): {err}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the peer server did not start listening"
                time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


def _excuse(report: dict[str, Any], *, server_requests: str | None, notifications: bool) -> dict[str, Any]:
    """Take out the steps a server mode cannot serve (checking how they failed), put in the full answers."""
    if server_requests is not None:
        for step in SERVER_REQUESTS:
            error = report.pop(step).get("error", "")
            assert server_requests in error, (step, error)
    if not notifications:  # JSON replies carry no notifications: the call still works, nothing else arrives
        assert report.pop("progress") == {"text": "done 3", "events": []}
        assert report.pop("log") == {"text": "logged", "messages": []}
    return {**FULL, **report}


# -- the TypeScript SDK client against our server -----------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "era"),
    [
        ("sse", "legacy"), ("sse", "modern"), ("sse", "auto"),
        ("json", "legacy"), ("json", "modern"),
        ("stateless", "legacy"), ("stateless", "modern"),
    ],
)
def test_typescript_client_against_our_http_server(mode: str, era: str) -> None:
    """T-HTTP-05/06/10/14/37/43 (legacy) and T-H26-03/05/12/15 (modern), T-BC-05 (auto probe):
    the TS SDK's StreamableHTTPClientTransport gets every fixture answer the server mode allows."""
    node = _require_ts()
    options = {"sse": {}, "json": {"json_response": True}, "stateless": {"stateless": True}}[mode]
    with running(create_app(fixture_app, **options)) as base:
        report = _peer_report([node, str(TS_PEERS / "client.mjs"), "--era", era, "--url", f"{base}/mcp"])
    expected = "modern" if era == "auto" else era
    if mode == "json":
        # T-HTTP-10 JSON replies: no notifications, and (legacy) no server->client requests.
        report = _excuse(report, server_requests="json_response" if expected == "legacy" else None, notifications=False)
    elif mode == "stateless" and expected == "legacy":
        # No session: the server cannot know (or reach) the client's capabilities for a legacy request.
        report = _excuse(report, server_requests="capability", notifications=True)
    check_report(report, era=expected, version=VERSION[expected])


# -- our client against the TypeScript SDK's HTTP server ------------------------------------------------------


@pytest.mark.parametrize(("era", "json_replies"), [("legacy", False), ("modern", False), ("auto", False), ("modern", True)])
async def test_our_client_against_typescript_http_server(era: str, json_replies: bool) -> None:
    """Our Streamable HTTP client against the TS SDK's createMcpHandler (2026-07-28, T-H26-*) and its
    sessionful transport (2025-11-25: T-HTTP-33/37/41/43); auto probes discover first (T-BC-05)."""
    node = _require_ts()
    port = _free_port()
    cmd = [node, str(TS_PEERS / "server.mjs"), "--http", str(port), *(["--json"] if json_replies else [])]
    with _peer_server(cmd, port):
        client, logs = fixture_client(f"http://127.0.0.1:{port}/mcp", era)
        report = await run_report(client, logs)
    assert client.transport == "streamable-http"
    expected = "modern" if era == "auto" else era
    assert report["read_missing"]["errorCode"] in (-32002, -32602)  # F-RES-04: clients accept both
    if json_replies:
        report = _excuse(report, server_requests=None, notifications=False)
    check_report(report, era=expected, version=VERSION[expected])


# -- the official Python SDK client against our stateless and JSON modes --------------------------------------


@pytest.mark.parametrize(("mode", "era"), [("json", "legacy"), ("json", "modern"), ("stateless", "legacy"), ("stateless", "modern")])
def test_official_python_client_against_our_http_server(mode: str, era: str) -> None:
    """T-HTTP-10 (application/json replies), stateless serving (no Mcp-Session-Id, T-HTTP-33 MAY), both eras."""
    options = {"json": {"json_response": True}, "stateless": {"stateless": True}}[mode]
    with running(create_app(fixture_app, **options)) as base:
        report = _peer_report([sys.executable, str(PY_PEERS / "sdk_client.py"), "--era", era, "--url", f"{base}/mcp"])
    if mode == "json":
        report = _excuse(report, server_requests="json_response" if era == "legacy" else None, notifications=False)
    elif era == "legacy":
        report = _excuse(report, server_requests="capability", notifications=True)
    check_report(report, era=era, version=VERSION[era])


# -- our client against the official Python SDK's HTTP+SSE server ---------------------------------------------


@pytest.mark.parametrize(("sse_path", "era"), [("/events", "auto"), ("/events", "legacy"), ("/sse", "auto")])
async def test_our_client_against_official_python_sse_server(sse_path: str, era: str) -> None:
    """T-BC-02/03/05: POST to the SSE URL is refused (405) -> GET it, first event `endpoint` -> HTTP+SSE
    (T-SSE-03/04/06) for every fixture step. A URL ending in /sse is tried with GET first."""
    port = _free_port()
    cmd = [sys.executable, str(PY_PEERS / "sdk_server.py"), "--sse", str(port), "--sse-path", sse_path]
    with _peer_server(cmd, port):
        client, logs = fixture_client(f"http://127.0.0.1:{port}{sse_path}", era)
        report = await run_report(client, logs)
    assert client.transport == "sse"
    assert report["read_missing"]["errorCode"] in (-32002, -32602)
    check_report(report, era="legacy", version="2025-11-25")
