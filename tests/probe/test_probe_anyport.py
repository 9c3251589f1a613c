"""``anyport probe`` against anyport servers: both eras, stdio and HTTP, the HTTP+SSE transport,
auth walls, tool calls and drift; each answer checked for its exit code and JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from anyport.transports.http import create_app
from tests.interop.fixture_server import app as fixture_app
from tests.probe._servers import TOKEN, AuthWall
from tests.probe.conftest import run_probe
from tests.transports._http_helpers import running

FIXTURE = Path(__file__).parents[1] / "interop" / "fixture_server.py"
STDIO = ["--", sys.executable, "-m", "anyport", "serve", str(FIXTURE)]
VERSION = {"modern": "2026-07-28", "legacy": "2025-11-25"}


@pytest.fixture(scope="module")
def http_base() -> object:
    with running(create_app(fixture_app)) as base:
        yield base


def test_token_from_the_environment(walled: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ANYPORT_PROBE_TOKEN authenticates URL probes and is ignored for stdio ones."""
    monkeypatch.setenv("ANYPORT_PROBE_TOKEN", TOKEN)
    assert run_probe(f"{walled}/mcp").exit_code == 0
    assert run_probe(*STDIO).exit_code == 0


def test_stdio_both_eras_same_hash() -> None:
    """T-STDIO-15/16, M-09, L-02/L-08: auto finds the modern era, legacy pins initialize; the tool
    list hashes the same in both (the hash ignores the era)."""
    hashes = set()
    for era, expected in (("auto", "modern"), ("legacy", "legacy")):
        out = run_probe("--era", era, "--call", "echo", "--arg", "text=hi", *STDIO)
        assert out.exit_code == 0, out.report
        r = out.report
        assert (r["transport"], r["era"], r["protocol_version"]) == ("stdio", expected, VERSION[expected])
        assert r["server"] == {"name": "interop-fixture", "version": "1.0.0"}
        assert out.phases == ["handshake", "tools_list", "tools_call"]
        assert out.phase("handshake")["method"] == ("server/discover" if expected == "modern" else "initialize")
        assert all(p["ok"] and p["ms"] >= 0 for p in r["phases"])
        assert r["tools"]["count"] == 10
        hashes.add(r["tools"]["sha256"])
    assert len(hashes) == 1


@pytest.mark.parametrize("era", ["modern", "legacy"])
def test_http_both_eras(http_base: str, era: str) -> None:
    """T-H26-03 (modern) and T-HTTP-05/37 (legacy) over Streamable HTTP, with the network phases timed."""
    out = run_probe("--era", era, "--call", "add", "--arg", "a=2", "--arg", "b=3", f"{http_base}/mcp")
    assert out.exit_code == 0, out.report
    assert out.phases == ["resolve", "connect", "handshake", "tools_list", "tools_call"]
    assert out.phase("resolve")["addresses"] == ["127.0.0.1"]
    r = out.report
    assert (r["transport"], r["era"], r["protocol_version"]) == ("streamable-http", era, VERSION[era])
    assert r["tools"]["count"] == 10


def test_http_and_stdio_hash_alike(http_base: str) -> None:
    """The same server gives the same tools hash whatever the transport; --expect-tools-hash passes."""
    stdio = run_probe(*STDIO).report["tools"]["sha256"]
    out = run_probe("--expect-tools-hash", stdio, f"{http_base}/mcp")
    assert out.exit_code == 0
    assert out.report["tools"] == {"count": 10, "sha256": stdio, "expected": stdio, "drift": False}


def test_drift_exit_7(http_base: str) -> None:
    wrong = "0" * 64
    out = run_probe("--expect-tools-hash", f"sha256:{wrong}", "--call", "echo", "--arg", "text=x", f"{http_base}/mcp")
    assert out.exit_code == 7
    assert out.error_line is not None and out.error_line["code"] == "tools_drift"
    assert out.report["tools"]["drift"] is True and out.report["tools"]["expected"] == wrong
    assert out.phase("tools_call")["ok"]  # drift is reported; the call still ran


def test_sse_transport(http_base: str) -> None:
    """T-SSE-01..04: a URL ending in /sse is probed over the 2024-11-05 HTTP+SSE transport."""
    out = run_probe("--call", "echo", "--arg", "text=hi", f"{http_base}/sse")
    assert out.exit_code == 0, out.report
    assert (out.report["transport"], out.report["era"]) == ("sse", "legacy")


def test_tool_errors_exit_5(http_base: str) -> None:
    url = f"{http_base}/mcp"
    out = run_probe("--call", "fail", url)
    assert (out.exit_code, out.error_line and out.error_line["code"]) == (5, "tool_error")
    assert out.error_line is not None and "boom" in out.error_line["message"]
    assert out.phase("tools_call")["ok"] is False
    out = run_probe("--call", "no_such_tool", url)
    assert (out.exit_code, out.error_line and out.error_line["code"]) == (5, "tool_not_found")


@pytest.fixture(scope="module")
def walled() -> object:
    wall = AuthWall(create_app(fixture_app))
    with running(wall) as base:
        wall.base = base
        yield base


def test_auth_required_exit_3(walled: str) -> None:
    """A-06/A-07: without credentials the probe fails with 3 and shows the server's challenge."""
    out = run_probe(f"{walled}/mcp")
    assert out.exit_code == 3
    assert out.error_line is not None
    assert (out.error_line["code"], out.error_line["status"], out.error_line["phase"]) == ("auth_required", 401, "handshake")
    assert "resource_metadata=" in out.error_line["www_authenticate"]
    assert run_probe("--token", "wrong", f"{walled}/mcp").exit_code == 3


def test_auth_challenge_alone(walled: str) -> None:
    """A-05/A-07/A-08/A-09: 401 + Bearer challenge + reachable metadata naming an authorization server."""
    out = run_probe("--auth-challenge", f"{walled}/mcp")
    assert out.exit_code == 0, out.report
    assert out.phases == ["resolve", "connect", "auth"]
    auth = out.phase("auth")
    assert auth["status"] == 401 and auth["authorization_servers"] == ["https://auth.invalid"]
    assert auth["resource_metadata"] == f"{walled}/.well-known/oauth-protected-resource/mcp"
    assert auth["scope"] == "mcp"


@pytest.mark.parametrize("how", [["--token", TOKEN], ["--header", f"Authorization: Bearer {TOKEN}"]])
def test_auth_challenge_then_credentials(walled: str, how: list[str]) -> None:
    out = run_probe("--auth-challenge", *how, "--call", "echo", "--arg", "text=hi", f"{walled}/mcp")
    assert out.exit_code == 0, out.report
    assert out.phases == ["resolve", "connect", "auth", "handshake", "tools_list", "tools_call"]


def test_api_key_header(walled: str) -> None:
    """--api-key goes in --api-key-header (here the one the wall reads)."""
    out = run_probe("--api-key", f"Bearer {TOKEN}", "--api-key-header", "Authorization", f"{walled}/mcp")
    assert out.exit_code == 0, out.report


def test_bare_401_is_a_bad_challenge() -> None:
    """A-06/A-07: a 401 without WWW-Authenticate is a protocol error (6), not a healthy auth wall."""
    wall = AuthWall(create_app(fixture_app), mode="bare")
    with running(wall) as base:
        wall.base = base
        out = run_probe("--auth-challenge", f"{base}/mcp")
    assert (out.exit_code, out.error_line and out.error_line["code"]) == (6, "bad_auth_challenge")


def test_challenge_expected_but_server_is_open(http_base: str) -> None:
    out = run_probe("--auth-challenge", f"{http_base}/mcp")
    assert (out.exit_code, out.error_line and out.error_line["code"]) == (6, "auth_not_enforced")
    assert out.error_line is not None and out.error_line["status"] == 200


def test_human_table(http_base: str) -> None:
    from click.testing import CliRunner

    from anyport.cli._probe import probe

    result = CliRunner().invoke(probe, [f"{http_base}/mcp"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"target     {http_base}/mcp"
    assert any(line.startswith("handshake    ok") and line.endswith("server/discover") for line in lines)
    assert any(line.startswith("tools_list   ok") and line.endswith("10 tools") for line in lines)
    assert lines[-1] == "result     OK (exit 0)"
    assert result.stderr == ""
