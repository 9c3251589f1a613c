"""The interop fixture (tests/interop/FIXTURE.md) through the bridge, with peers nobody here wrote on
both sides: the official Python SDK's and the TypeScript SDK's stdio fixture servers as children,
driven by the same SDKs' fixture clients over Streamable HTTP (both eras) and HTTP+SSE.

Every fixture step must pass, server->client requests (elicitation, sampling, roots), progress, logs
and cancellation included: legacy requests of a legacy child, MRTR rounds of a 2026-07-28 child
asked of a legacy caller, and a 2026-07-28 caller of a legacy child (``--child-era legacy``).
"""

from __future__ import annotations

import sys

import pytest

from tests.bridge._helpers import PY_PEERS, TS_PEERS, node, serving
from tests.interop._report import check_report
from tests.interop.test_official_peers import _peer_report

VERSION = {"legacy": "2025-11-25", "modern": "2026-07-28"}


def _child(name: str) -> list[str]:
    if name == "python":
        return [sys.executable, str(PY_PEERS / "sdk_server.py")]
    assert (TS_PEERS / "node_modules" / "@modelcontextprotocol" / "server").is_dir(), "run make test (npm ci of the TS peers)"
    return [node(), str(TS_PEERS / "server.mjs")]


def _client(name: str, era: str, url: str, sse: bool) -> list[str]:
    if name == "python":
        return [sys.executable, str(PY_PEERS / "sdk_client.py"), "--era", era, "--url", url, *(["--sse"] if sse else [])]
    return [node(), str(TS_PEERS / "client.mjs"), "--era", era, "--url", url]


@pytest.mark.parametrize(
    ("client", "era", "transport", "child", "child_era"),
    [
        ("python", "legacy", "streamable", "typescript", "auto"),   # legacy caller, MRTR rounds of a modern child
        ("python", "modern", "streamable", "typescript", "legacy"), # modern caller, legacy child: rounds parked
        ("python", "legacy", "sse", "python", "legacy"),            # HTTP+SSE, legacy child's requests on the stream
        ("typescript", "legacy", "streamable", "python", "legacy"),
        ("typescript", "modern", "streamable", "typescript", "auto"),
    ],
)
def test_fixture_through_the_bridge(client: str, era: str, transport: str, child: str, child_era: str) -> None:
    """T-HTTP-05..17/33/37/43, T-SSE-01..06, T-H26-03..15, M-14..M-19, U-01..U-10, F-*: the fixture
    report of an official SDK client, through the bridge to an official SDK stdio server."""
    with serving(_child(child), child_era=child_era, spares=3 if era == "modern" else 1) as (base, bridge):
        url = f"{base}/sse" if transport == "sse" else f"{base}/mcp"
        report = _peer_report(_client(client, era, url, transport == "sse"))
        assert bridge.pool.era == ("legacy" if child_era == "legacy" else "modern")
    check_report(report, era=era, version=VERSION[era])
