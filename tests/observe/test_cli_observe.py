"""``anyport serve --metrics-port --access-log --log-format json`` as users run it: a real process,
requests over HTTP and stdio, the metrics port scraped, the access log read from stderr (issue 14)."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import orjson

from tests.cli.test_cli_http import ANYPORT, FIXTURE, free_port, serving, stop
from tests.transports._http_helpers import initialize

OPS = "mcp_server_operation_duration_seconds"


def test_http_metrics_port_counts_requests_refusals_and_sessions() -> None:
    port, mport = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [*ANYPORT, "serve", FIXTURE, "--http", "--port", str(port), "--metrics-port", str(mport),
           "--access-log", "--log-format", "json"]
    with serving(cmd, base) as proc, httpx.Client(base_url=base, timeout=10) as h:
        headers = initialize(h)  # a legacy session (initialize + initialized)
        for i in range(3):
            body = {"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call", "params": {"name": "add", "arguments": {"a": i, "b": 1}}}
            assert h.post("/mcp", json=body, headers=headers).status_code == 200
        refused = h.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                         headers={**headers, "Origin": "http://evil.example"})
        assert refused.status_code == 403
        text = httpx.get(f"http://127.0.0.1:{mport}/metrics", timeout=10).text
        line = next(li for li in text.splitlines() if li.startswith(f"{OPS}_count{{") and 'gen_ai_tool_name="add"' in li)
        assert 'network_transport="tcp"' in line and line.endswith(" 3.0"), line
        assert 'anyport_rejected_requests_total{reason="forbidden"} 1.0' in text
        assert "anyport_live_sessions 1.0" in text
        assert h.delete("/mcp", headers=headers).status_code in (200, 204)
        text = httpx.get(f"http://127.0.0.1:{mport}/metrics", timeout=10).text
        assert "anyport_live_sessions 0.0" in text
        ended = next(li for li in text.splitlines() if li.startswith("mcp_server_session_duration_seconds_count"))
        assert ended.endswith(" 1.0") and 'mcp_protocol_version="2025-11-25"' in ended
        time.sleep(0.7)  # the access log is written within 0.5 s
        _, stderr = stop(proc)
    lines = [orjson.loads(li) for li in stderr.splitlines() if li.startswith("{")]
    calls = [li for li in lines if li.get("method") == "tools/call"]
    assert [c["name"] for c in calls] == ["add"] * 3 and all(c["status"] == "ok" for c in calls)
    assert all(len(c["session"]) == 8 for c in calls)


def test_stdio_access_log_goes_to_stderr_and_stdout_keeps_only_protocol() -> None:
    """T-STDIO-03/04: with --access-log on a stdio server, stdout carries only JSON-RPC messages."""
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}},
    ]
    stdin = "".join(json.dumps(m) + "\n" for m in messages)
    done = subprocess.run([*ANYPORT, "serve", FIXTURE, "--access-log"], input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = [json.loads(li) for li in done.stdout.splitlines()]
    assert [m.get("id") for m in out] == [1, 2] and all(m["jsonrpc"] == "2.0" for m in out)
    assert any(" tools/call add ok " in li for li in done.stderr.splitlines())


def test_metrics_port_with_workers_is_a_usage_error_and_a_taken_port_one_line() -> None:
    done = subprocess.run([*ANYPORT, "serve", FIXTURE, "--http", "--stateless", "--workers", "2", "--metrics-port", "9"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "--metrics-port with --workers" in done.stderr
    with serving([*ANYPORT, "serve", FIXTURE, "--http", "--port", str(port := free_port())], f"http://127.0.0.1:{port}"):
        done = subprocess.run([*ANYPORT, "serve", FIXTURE, "--http", "--port", str(free_port()), "--metrics-port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and f"metrics port 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
