"""The HTTP wire rules of the core, without a socket or an event loop (issue 11: every protocol
decision in ``anyport.protocol``): message sorting and era, metadata headers both ways, the
``Mcp-Param-*`` check, and the tools a client may use."""

from __future__ import annotations

from typing import Any

from anyport.protocol import (
    MODERN_VERSIONS,
    carries_request,
    header_values,
    is_initialize,
    is_modern_post,
    is_request_id,
    meta_version,
    metadata_headers,
    metadata_mismatch,
    param_mismatch,
    readable_id,
    scan_param_headers,
    usable_tools,
)

V = "2026-07-28"


def _call(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": name, "arguments": arguments or {}, "_meta": {"io.modelcontextprotocol/protocolVersion": V}},
    }


def test_request_ids_and_shapes_J_03() -> None:
    assert is_request_id("a") and is_request_id(0) and is_request_id(-5)
    assert not is_request_id(True) and not is_request_id(None) and not is_request_id(1.5)
    assert readable_id({"id": False}) is None and readable_id({"id": 7}) == 7 and readable_id([1]) is None
    assert carries_request([{"method": "x"}, {"method": "y", "id": 2}])
    assert not carries_request([{"method": "x"}, {"id": 2, "result": {}}]) and not carries_request("text")
    assert is_initialize({"id": 1, "method": "initialize"}) and not is_initialize({"method": "initialize"})


def test_the_era_of_a_post_T_H26_01() -> None:
    modern = _call("t")
    assert meta_version(modern) == V and is_modern_post(None, modern, MODERN_VERSIONS)
    legacy = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert not is_modern_post(None, legacy, MODERN_VERSIONS) and not is_modern_post("2025-06-18", legacy, MODERN_VERSIONS)
    assert is_modern_post(V, legacy, MODERN_VERSIONS)  # the header alone decides too
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": V}}}
    assert meta_version(init) is None and not is_modern_post(None, init, MODERN_VERSIONS)


def test_what_the_client_sends_the_server_accepts_T_H26_12_T_H26_15() -> None:
    body = _call("café tool")
    headers = metadata_headers(body)
    assert headers["mcp-protocol-version"] == V and headers["mcp-method"] == "tools/call"
    assert headers["mcp-name"].startswith("=?base64?")  # T-H26-16: not plain ASCII
    assert metadata_mismatch(lambda k: headers.get(k.decode()), body, V) is None
    wrong = {**headers, "mcp-name": "other"}
    message, data = metadata_mismatch(lambda k: wrong.get(k.decode()), body, V) or ("", {})
    assert "Mcp-Name" in message and data["header"] == "Mcp-Name"
    missing = metadata_mismatch(lambda k: None, body, None)
    assert missing is not None and missing[1]["header"] == "MCP-Protocol-Version"


def test_param_headers_round_trip_and_mismatch_T_H26_19_T_H26_21() -> None:
    schema = {"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "n": {"type": "integer", "x-mcp-header": "N"}}}
    decls = scan_param_headers(schema)
    assert isinstance(decls, list)
    args = {"region": " Zürich", "n": 3}
    headers = header_values(decls, args)
    assert metadata_headers(_call("t", args), decls)["mcp-param-region"] == headers["mcp-param-region"]
    assert param_mismatch(lambda k: headers.get(k.decode()), args, decls) is None
    assert param_mismatch(lambda k: {**headers, "mcp-param-n": "03"}.get(k.decode()), args, decls) is None  # integers as numbers
    bad = param_mismatch(lambda k: {**headers, "mcp-param-n": "4"}.get(k.decode()), args, decls)
    assert bad is not None and bad[1] == {"header": "Mcp-Param-N"}
    absent = param_mismatch(lambda k: None, args, decls)
    assert absent is not None and "required" in absent[0]


def test_usable_tools_drops_invalid_annotations_T_H26_20() -> None:
    good = {"name": "ok", "inputSchema": {"type": "object", "properties": {"r": {"type": "string", "x-mcp-header": "R"}}}}
    bad = {"name": "bad", "inputSchema": {"type": "object", "properties": {"r": {"type": "object", "x-mcp-header": "R"}}}}
    kept, decls, dropped = usable_tools([good, bad, "not a tool"])
    assert kept == [good, "not a tool"] and list(decls) == ["ok"] and [name for name, _ in dropped] == ["bad"]
