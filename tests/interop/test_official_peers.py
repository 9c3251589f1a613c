"""Interop with peers nobody here wrote: the official Python SDK (mcp 2.3.0) and the TypeScript SDK (2.4.0).

Their clients run the FIXTURE.md report against our stdio server; our client runs the same report
against their stdio servers. Both eras each way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.interop._report import check_report, fixture_client, run_report

HERE = Path(__file__).parent
OUR_SERVER = [sys.executable, "-m", "anyport", "serve", str(HERE / "fixture_server.py")]
PY_PEERS = HERE / "peers" / "python"
TS_PEERS = HERE / "peers" / "ts"
NODE = shutil.which("node")

pytestmark = pytest.mark.interop


def _require_ts() -> str:
    # The Makefile installs the TS peers before the tests run; their absence is a broken setup, not a skip.
    assert NODE is not None, "node is not installed (make test installs it)"
    assert (TS_PEERS / "node_modules" / "@modelcontextprotocol" / "client").is_dir(), "run make test (npm ci of the TS peers)"
    return NODE


def _peer_report(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"peer printed no report: {proc.stdout[:500]!r} / {proc.stderr.decode()[-2000:]}") from None


@pytest.mark.parametrize(
    ("era", "version"),
    [("legacy", "2025-11-25"), ("legacy", "2025-06-18"), ("legacy", "2025-03-26"), ("modern", "2026-07-28")],
)
def test_official_python_client_against_our_stdio_server(era: str, version: str) -> None:
    """L-05, M-12, T-STDIO-15: the SDK client (legacy handshake or discover probe) gets every fixture answer."""
    cmd = [sys.executable, str(PY_PEERS / "sdk_client.py"), "--era", era]
    if era == "legacy":
        cmd += ["--protocol-version", version]
    report = _peer_report([*cmd, "--", *OUR_SERVER])
    if version < "2025-06-18":
        # The SDK refuses elicitation below 2025-06-18 (elicitation did not exist): the only allowed failure.
        assert "error" in report.pop("ask_name")
        report["ask_name"] = {"text": "n/a"}
    check_report(report, era=era, version=version)


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_typescript_client_against_our_stdio_server(era: str) -> None:
    """The TS SDK v2 client, pinned to each era, gets every fixture answer from our server."""
    node = _require_ts()
    report = _peer_report([node, str(TS_PEERS / "client.mjs"), "--era", era, "--", *OUR_SERVER])
    check_report(report, era=era, version="2025-11-25" if era == "legacy" else "2026-07-28")


@pytest.mark.parametrize(("era", "expected"), [("legacy", "legacy"), ("modern", "modern"), ("auto", "modern")])
async def test_our_client_against_official_python_server(era: str, expected: str) -> None:
    """Our client against the SDK's dual-era server: legacy handshake, pinned modern, and auto probe (T-STDIO-15)."""
    client, logs = fixture_client([sys.executable, str(PY_PEERS / "sdk_server.py")], era)
    report = await run_report(client, logs)
    assert report["read_missing"]["errorCode"] in (-32002, -32602)  # F-RES-04: clients accept both
    check_report(report, era=expected, version="2025-11-25" if expected == "legacy" else "2026-07-28")


@pytest.mark.parametrize(("era", "expected"), [("legacy", "legacy"), ("modern", "modern"), ("auto", "modern")])
async def test_our_client_against_typescript_server(era: str, expected: str) -> None:
    """Our client against the TS SDK v2 server in both eras."""
    node = _require_ts()
    client, logs = fixture_client([node, str(TS_PEERS / "server.mjs")], era)
    report = await run_report(client, logs)
    check_report(report, era=expected, version="2025-11-25" if expected == "legacy" else "2026-07-28")


@pytest.mark.parametrize(("era", "version"), [("legacy", "2025-11-25"), ("modern", "2026-07-28")])
async def test_our_client_against_our_stdio_server(era: str, version: str) -> None:
    """Both ends ours, over a real subprocess, in both eras; also the resource-not-found code per revision."""
    client, logs = fixture_client(OUR_SERVER, era)
    report = await run_report(client, logs)
    assert report["read_missing"]["errorCode"] == (-32002 if era == "legacy" else -32602)  # F-RES-04
    check_report(report, era=era, version=version)
