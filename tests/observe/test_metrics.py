"""Metrics after the OpenTelemetry MCP conventions (issue 14, item 3): a scripted workload, then the
counts and labels asserted exactly, in process and scraped over HTTP from a real uvicorn."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from anyport import Client, MCPError, Server, ToolError
from anyport.observe import MCPMetrics, Observed
from anyport.transports.http import create_app
from tests.transports._http_helpers import running

OPS = "mcp_server_operation_duration_seconds"


def _server() -> Server:
    app = Server("observed")

    @app.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @app.tool()
    async def slow(text: str) -> str:
        """Answers after a while (a task, not inline)."""
        await asyncio.sleep(0.03)
        return text

    @app.tool()
    def fail(reason: str) -> str:
        """Always a tool error."""
        raise ToolError(reason)

    @app.prompt()
    def greet(name: str) -> str:
        """A greeting."""
        return f"Hello {name}"

    return app


def _count(metrics: MCPMetrics, **labels: str) -> float:
    full = {"gen_ai_tool_name": "", "gen_ai_prompt_name": "", "error_type": "", "mcp_protocol_version": "2025-11-25",
            "network_transport": "pipe", **labels}
    value = metrics.registry.get_sample_value(f"{OPS}_count", full)
    return 0.0 if value is None else value


async def test_a_workload_is_counted_with_exact_labels() -> None:
    metrics = MCPMetrics()
    observed = Observed(_server(), metrics=metrics, transport="pipe")
    async with Client(observed, protocol_version="2025-11-25") as c:
        for i in range(3):
            assert (await c.call_tool("add", {"a": i, "b": 1})).structured_content == {"result": i + 1}
        await c.call_tool("slow", {"text": "x"})
        assert (await c.call_tool("fail", {"reason": "no"})).is_error
        await c.list_tools()
        await c.list_tools()
        await c.get_prompt("greet", {"name": "Ada"})
        with pytest.raises(MCPError):
            await c.call_tool("made-up-name-1234", {})
        with pytest.raises(MCPError):
            await c.get_prompt("no-such-prompt", {})
    assert _count(metrics, mcp_method_name="tools/call", gen_ai_tool_name="add") == 3
    assert _count(metrics, mcp_method_name="tools/call", gen_ai_tool_name="slow") == 1
    assert _count(metrics, mcp_method_name="tools/call", gen_ai_tool_name="fail", error_type="tool_error") == 1
    assert _count(metrics, mcp_method_name="tools/list") == 2
    assert _count(metrics, mcp_method_name="prompts/get", gen_ai_prompt_name="greet") == 1
    # A name the server does not know is _OTHER: a client cannot grow the label set.
    assert _count(metrics, mcp_method_name="tools/call", gen_ai_tool_name="_OTHER", error_type="-32602") == 1
    assert _count(metrics, mcp_method_name="prompts/get", gen_ai_prompt_name="_OTHER", error_type="-32602") == 1
    text = metrics.exposition()[0].decode()
    assert "made-up-name" not in text and "no-such-prompt" not in text and "Ada" not in text  # never arguments
    # The slow call took at least its sleep; its histogram sum says so.
    slow_sum = metrics.registry.get_sample_value(f"{OPS}_sum", {
        "mcp_method_name": "tools/call", "gen_ai_tool_name": "slow", "gen_ai_prompt_name": "", "error_type": "",
        "mcp_protocol_version": "2025-11-25", "network_transport": "pipe"})
    assert slow_sum is not None and slow_sum >= 0.03
    # One memory connection served, one session ended.
    assert metrics.registry.get_sample_value("mcp_server_session_duration_seconds_count", {
        "mcp_protocol_version": "", "network_transport": "pipe"}) == 1


def test_scraped_over_http_next_to_a_real_server() -> None:
    """The HTTP app observed (network_transport tcp), its metrics served by a second ASGI app on a
    port of its own, scraped as Prometheus would: text format, and OpenMetrics when asked for."""
    metrics = MCPMetrics()
    mcp = create_app(Observed(_server(), metrics=metrics), stateless=True, json_response=True)
    with running(mcp) as base, running(metrics.asgi_app()) as scrape:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                   "MCP-Protocol-Version": "2025-11-25"}
        with httpx.Client(base_url=base, timeout=10) as h:
            for i in range(4):
                body: dict[str, Any] = {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                        "params": {"name": "add", "arguments": {"a": 1, "b": i}}}
                r = h.post("/mcp", json=body, headers=headers)
                assert r.status_code == 200 and r.json()["result"]["structuredContent"] == {"result": 1 + i}
        text = httpx.get(f"{scrape}/metrics", timeout=10).text
        line = next(li for li in text.splitlines() if li.startswith(f"{OPS}_count{{") and 'gen_ai_tool_name="add"' in li)
        assert 'network_transport="tcp"' in line and 'mcp_protocol_version="2025-11-25"' in line
        assert line.endswith(" 4.0")
        assert "# TYPE mcp_server_operation_duration_seconds histogram" in text
        assert 'le="0.01"' in text and 'le="300.0"' in text  # the conventions' buckets
        om = httpx.get(f"{scrape}/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=10)
        assert om.headers["content-type"].startswith("application/openmetrics-text") and om.text.rstrip().endswith("# EOF")


def test_gauges_read_what_the_transport_tracks_at_each_scrape() -> None:
    metrics = MCPMetrics()
    live = [3]
    metrics.track("sessions", lambda: live[0])
    assert metrics.registry.get_sample_value("anyport_live_sessions") == 3
    live[0] = 0
    assert metrics.registry.get_sample_value("anyport_live_sessions") == 0
    assert metrics.registry.get_sample_value("anyport_open_streams") == 0  # nothing tracked: 0
    metrics.reject("origin")
    metrics.reject("origin")
    assert metrics.registry.get_sample_value("anyport_rejected_requests_total", {"reason": "origin"}) == 2


def test_observing_twice_is_refused() -> None:
    observed = Observed(_server())
    with pytest.raises(TypeError):
        Observed(observed)  # type: ignore[arg-type]


def test_the_grafana_dashboard_queries_only_metrics_that_exist() -> None:
    """examples/grafana/anyport-mcp.json: every metric a panel queries is one MCPMetrics exposes,
    with only label names it has (a renamed metric or label breaks this test, not the dashboard)."""
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).parents[2] / "examples/grafana/anyport-mcp.json").read_text())
    metrics = MCPMetrics()
    metrics.observe(0.1, "tools/call", "t", "", "", "2025-11-25", "tcp")
    metrics.session_ended(1.0, "", "tcp")
    metrics.reject("origin")
    exposed = metrics.exposition()[0].decode()
    names = {li.split("{")[0].split(" ")[0] for li in exposed.splitlines() if li and not li.startswith("#")}
    labels = set(re.findall(r'([a-z_]+)="', exposed)) | {"le", "job"}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    for expr in exprs:
        used = set(re.findall(r"\b((?:mcp|anyport)_[a-z_]+)\b", expr)) - labels
        assert used and used <= names, (expr, used - names)
        for label in re.findall(r"\b([a-z_]+)\s*(?:=~|!=|=)\s*\"", expr) + re.findall(r"by \(([^)]*)\)", expr):
            for name in (n.strip() for n in label.split(",")):
                assert name in labels, (expr, name)


def test_requests_are_counted_by_endpoint_to_see_who_still_uses_sse() -> None:
    """anyport_http_requests_total{endpoint}: Streamable HTTP, the 2024-11-05 stream and its message
    POSTs apart, so an operator can tell when /sse can be turned off (docs/transports.md)."""
    metrics = MCPMetrics()
    app = create_app(Observed(_server(), metrics=metrics), stateless=True, json_response=True)
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as h:
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        for i in range(2):
            assert h.post("/mcp", json={"jsonrpc": "2.0", "id": i, "method": "tools/list"}, headers=headers).status_code == 200
        with h.stream("GET", "/sse", headers={"Accept": "text/event-stream"}) as r:
            lines = r.iter_lines()
            endpoint = next(li for li in lines if li.startswith("data:")).removeprefix("data:").strip()
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                    "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            assert h.post(endpoint, json=init).status_code == 202
        assert h.get("/healthz").status_code == 200  # not an MCP endpoint: not counted
    value = metrics.registry.get_sample_value
    assert value("anyport_http_requests_total", {"endpoint": "streamable_http"}) == 2
    assert value("anyport_http_requests_total", {"endpoint": "sse"}) == 1
    assert value("anyport_http_requests_total", {"endpoint": "sse_messages"}) == 1
