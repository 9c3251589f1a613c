"""Spans after the MCP conventions with their parent taken from ``_meta`` (SEP-414), asserted with the
OTel SDK's in-memory exporter; the access log's lines, human and JSON (issue 14, items 3 and 4)."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from anyport import Client
from anyport.observe import AccessLog, JSONFormatter, MCPMetrics, Observed, Tracing, inject_meta
from anyport.transports.http import create_app
from tests.observe.test_metrics import _server
from tests.transports._http_helpers import running


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def test_a_span_per_request_named_after_method_and_target(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    observed = Observed(_server(), tracing=Tracing(provider), transport="pipe")
    async with Client(observed, protocol_version="2025-11-25") as c:
        await c.call_tool("add", {"a": 1, "b": 2})
        await c.call_tool("fail", {"reason": "nope"})
        await c.list_tools()
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    add = by_name["tools/call add"]
    assert add.kind is SpanKind.SERVER
    assert add.attributes is not None and add.attributes["mcp.method.name"] == "tools/call"
    assert add.attributes["gen_ai.tool.name"] == "add" and add.attributes["gen_ai.operation.name"] == "execute_tool"
    assert add.attributes["mcp.protocol.version"] == "2025-11-25" and add.status.status_code is StatusCode.UNSET
    fail = by_name["tools/call fail"]
    assert fail.attributes is not None and fail.attributes["error.type"] == "tool_error"
    assert fail.status.status_code is StatusCode.ERROR
    assert "tools/list" in by_name


def test_the_clients_context_in_meta_is_the_parent_of_the_server_span(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    """SEP-414: ``traceparent`` in ``params._meta`` makes the server span a child of the client's,
    over a real HTTP server; an error answer sets error.type and rpc.response.status_code."""
    provider, exporter = spans
    tracer = provider.get_tracer("test-client")
    app = create_app(Observed(_server(), tracing=Tracing(provider)), stateless=True, json_response=True)
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as h:
        with tracer.start_as_current_span("agent step") as parent:
            params: dict[str, Any] = inject_meta({"name": "add", "arguments": {"a": 2, "b": 2}})
            assert "traceparent" in params["_meta"]
            r = h.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}, headers=headers)
            assert r.json()["result"]["structuredContent"] == {"result": 4}
            bad: dict[str, Any] = inject_meta({"name": "add", "arguments": {"a": "x"}})
            r = h.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": bad}, headers=headers)
    finished = exporter.get_finished_spans()
    server = [s for s in finished if s.kind is SpanKind.SERVER]
    assert len(server) == 2
    for span in server:
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
        assert span.context.trace_id == parent.get_span_context().trace_id
    failed = next(s for s in server if s.status.status_code is StatusCode.ERROR)
    assert failed.attributes is not None and failed.attributes.get("error.type") in ("-32602", "tool_error")


def test_no_active_span_means_meta_is_left_alone() -> None:
    params = {"name": "add"}
    assert inject_meta(params) is params


async def test_one_json_line_per_request_with_its_fields() -> None:
    stream = io.BytesIO()
    access = AccessLog(stream, fmt="json", flush_interval=60)
    observed = Observed(_server(), access=access, metrics=MCPMetrics(), transport="pipe")
    async with Client(observed, protocol_version="2025-11-25") as c:
        await c.call_tool("add", {"a": 1, "b": 2})
        await c.call_tool("fail", {"reason": "secret-argument"})
        assert stream.getvalue() == b""  # buffered, not a write per request
    access.flush()
    lines = [orjson.loads(li) for li in stream.getvalue().splitlines()]
    calls = [li for li in lines if li.get("method") == "tools/call"]
    assert [(c["name"], c["status"]) for c in calls] == [("add", "ok"), ("fail", "tool_error")]
    for line in calls:
        assert line["protocol_version"] == "2025-11-25" and line["duration_ms"] >= 0 and line["ts"].endswith("Z")
        assert len(line["session"]) <= 8
    assert b"secret-argument" not in stream.getvalue()  # never arguments


async def test_lines_are_written_out_within_the_flush_interval() -> None:
    stream = io.BytesIO()
    access = AccessLog(stream, fmt="text", flush_interval=0.05)
    async with Client(Observed(_server(), access=access, transport="pipe"), protocol_version="2025-11-25") as c:
        await c.call_tool("add", {"a": 1, "b": 1})
        access.enabled = False
        await c.call_tool("add", {"a": 1, "b": 1})
        await asyncio.sleep(0.2)
        lines = [li for li in stream.getvalue().decode().splitlines() if " tools/call " in li]
    assert len(lines) == 1 and " tools/call add ok " in lines[0] and " ms session=" in lines[0]


def test_json_formatter_writes_one_object_per_record() -> None:
    record = logging.LogRecord("anyport.http", logging.WARNING, __file__, 1, "Redis at %s is down", ("x",), None)
    out = orjson.loads(JSONFormatter().format(record))
    assert out["level"] == "warning" and out["logger"] == "anyport.http" and out["message"] == "Redis at x is down"


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_an_anyport_client_span_is_the_parent_of_the_server_span(
    spans: tuple[TracerProvider, InMemorySpanExporter], era: str,
) -> None:
    """The client puts its active context in ``_meta`` (SEP-414) by itself; over a real HTTP server
    the server's span is its child, in both eras."""
    provider, exporter = spans
    tracer = provider.get_tracer("agent")
    app = create_app(Observed(_server(), tracing=Tracing(provider)))
    with running(app) as base:
        async with Client(f"{base}/mcp", era=era) as c:
            with tracer.start_as_current_span("agent step") as step:
                assert (await c.call_tool("add", {"a": 2, "b": 3})).structured_content == {"result": 5}
            await c.list_tools()  # no active span: no parent, a trace of its own
    server = {s.name: s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER}
    call = server["tools/call add"]
    assert call.parent is not None and call.parent.span_id == step.get_span_context().span_id
    assert call.context.trace_id == step.get_span_context().trace_id
    listed = server["tools/list"]
    assert listed.parent is None and listed.context.trace_id != step.get_span_context().trace_id
