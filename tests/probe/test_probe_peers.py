"""``anyport probe`` against servers nobody here wrote: the official Python SDK (mcp 2.3.0) over stdio,
Streamable HTTP and its legacy HTTP+SSE transport (reached by the fallback, T-BC-02..05), and the
TypeScript SDK over stdio and Streamable HTTP."""

from __future__ import annotations

import sys

import pytest

from tests.interop.test_http_peers import PY_PEERS, TS_PEERS, _free_port, _peer_server
from tests.interop.test_official_peers import _require_ts
from tests.probe.conftest import Outcome, run_probe

pytestmark = pytest.mark.interop

CALL = ["--call", "echo", "--arg", "text=hi"]


def _ok(out: Outcome, transport: str, era: str) -> None:
    assert out.exit_code == 0, out.report
    r = out.report
    assert (r["transport"], r["era"]) == (transport, era)
    assert r["server"]["name"] == "interop-fixture"
    assert r["tools"]["count"] == 10 and len(r["tools"]["sha256"]) == 64
    assert out.phase("tools_call")["ok"]


def test_python_sdk_stdio() -> None:
    """T-STDIO-15: the SDK's dual-era server is found modern by the discover probe."""
    _ok(run_probe(*CALL, "--", sys.executable, str(PY_PEERS / "sdk_server.py")), "stdio", "modern")


def test_python_sdk_http() -> None:
    port = _free_port()
    with _peer_server([sys.executable, str(PY_PEERS / "sdk_server.py"), "--http", str(port)], port):
        out = run_probe(*CALL, f"http://127.0.0.1:{port}/mcp")
    assert out.exit_code == 0, out.report
    assert out.report["transport"] == "streamable-http"
    assert out.report["tools"]["count"] == 10


def test_python_sdk_sse_by_fallback() -> None:
    """T-BC-03: the POST to /events is refused the way an old server refuses it; the GET opens
    an HTTP+SSE stream with its endpoint event (T-SSE-02): the probe reports transport sse."""
    port = _free_port()
    cmd = [sys.executable, str(PY_PEERS / "sdk_server.py"), "--sse", str(port), "--sse-path", "/events"]
    with _peer_server(cmd, port):
        out = run_probe(*CALL, f"http://127.0.0.1:{port}/events")
    _ok(out, "sse", "legacy")


def test_typescript_sdk_stdio() -> None:
    node = _require_ts()
    _ok(run_probe(*CALL, "--", node, str(TS_PEERS / "server.mjs")), "stdio", "modern")


def test_typescript_sdk_http_both_eras() -> None:
    node = _require_ts()
    port = _free_port()
    with _peer_server([node, str(TS_PEERS / "server.mjs"), "--http", str(port)], port):
        modern = run_probe(*CALL, f"http://127.0.0.1:{port}/mcp")
        legacy = run_probe(*CALL, "--era", "legacy", f"http://127.0.0.1:{port}/mcp")
    _ok(modern, "streamable-http", "modern")
    _ok(legacy, "streamable-http", "legacy")
    assert modern.report["tools"]["sha256"] == legacy.report["tools"]["sha256"]  # the hash ignores the era
