"""The official reference server (@modelcontextprotocol/server-everything, over stdio) through the
bridge, driven by the official Python SDK client (Streamable HTTP in both eras, HTTP+SSE) and the
TypeScript SDK client (Streamable HTTP in both eras)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bridge._helpers import HERE, everything, node, serving

PEERS = HERE / "peers"


def _report(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def secret_in_environment() -> Iterator[None]:
    """A token in the bridge's environment: no child may see it (issue 15: environment by allow-list)."""
    os.environ["BRIDGE_TEST_API_TOKEN"] = "s3cret"
    yield
    del os.environ["BRIDGE_TEST_API_TOKEN"]


@pytest.mark.parametrize(("transport", "mode"), [("streamable", "legacy"), ("sse", "legacy"), ("streamable", "auto")])
@pytest.mark.usefixtures("secret_in_environment")
def test_official_python_client(transport: str, mode: str) -> None:
    """L-02..L-08 (the bridge's core answers initialize with the child's serverInfo and capabilities;
    the child is initialized with the caller's capabilities: its sampling and roots tools appear),
    U-06/U-07 progress, F-CLI-02 sampling as a legacy request or (auto -> 2026-07-28) an MRTR round."""
    with serving(everything(), spares=2 if mode == "auto" else 1) as (base, _bridge):
        url = f"{base}/sse" if transport == "sse" else f"{base}/mcp"
        cmd = [sys.executable, str(PEERS / "everything_client.py"), "--url", url, "--mode", mode, *(["--sse"] if transport == "sse" else [])]
        report = _report(cmd)
    assert report["protocolVersion"] == ("2026-07-28" if mode == "auto" else "2025-11-25")
    assert report["serverName"] == "mcp-servers/everything"
    assert {"echo", "get-sum", "trigger-sampling-request", "get-roots-list"} <= set(report["tools"])
    assert report["echo"] == "Echo: through the bridge"
    assert report["sum"] == "The sum of 2 and 40 is 42."
    assert report["long"]["text"].startswith("Long running operation completed")
    events = report["long"]["progress"]
    assert events and events == sorted(set(events))  # U-08: strictly increasing
    if mode == "legacy":
        assert events == [1, 2, 3]
    assert '"text": "sampled"' in report["sampling"]
    assert "BRIDGE_TEST_API_TOKEN" not in report["envNames"] and "PATH" in report["envNames"]
    assert report["resource"] == 1


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_typescript_client(era: str) -> None:
    """The TS SDK client (2.4.0): legacy session, or pinned 2026-07-28 (every request stateless, the
    child's sampling and roots requests turned into MRTR rounds by the bridge)."""
    script = PEERS / "everything_client.mjs"
    assert (PEERS / "node_modules" / "@modelcontextprotocol" / "client").is_dir(), "run make test (npm ci of tests/bridge/peers)"
    with serving(everything(), spares=2 if era == "modern" else 1) as (base, _bridge):
        report = _report([node(), str(script), "--url", f"{base}/mcp", "--era", era])
    assert report["era"] == era
    assert report["serverName"] == "mcp-servers/everything"
    assert report["echo"] == "Echo: through the bridge"
    assert report["long"]["text"].startswith("Long running operation completed") and report["long"]["progress"]
    if era == "legacy":
        assert report["long"]["progress"] == [1, 2, 3]
    assert '"text": "sampled"' in report["sampling"]
    assert "file:///tmp/bridge-root" in report["roots"]
