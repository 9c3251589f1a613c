"""Client values echoed into errors stay small and serialisable; oversized lines keep their id.

Requirements: J-08 (an error names its request when the id can be read), T-STDIO-02 (oversized
lines), DIGEST §2 error codes. Pure tests, no event loop.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from anyport.protocol import ServerConnection, bounded, brief, dumps
from anyport.protocol._framing import HEAD_BYTES, LineFramer, Oversized, head_id

MODERN = "2026-07-28"


def nested(levels: int, leaf: Any = None) -> Any:
    value: Any = [] if leaf is None else leaf
    for _ in range(levels):
        value = [value]
    return value


def conn() -> ServerConnection:
    return ServerConnection(server_info={"name": "t", "version": "1"}, capabilities={"tools": {}})


@pytest.mark.parametrize("levels", [10, 300, 1000, 1020])
def test_bounded_is_shallow_and_serialisable(levels: int) -> None:
    out = bounded(nested(levels))
    assert len(orjson.dumps(out)) < 200
    assert len(brief(nested(levels))) <= 120


def test_bounded_cuts_strings_members_and_total() -> None:
    out = bounded({"s": "x" * 10**6, "l": list(range(1000)), **{f"k{i}": i for i in range(100)}})
    assert out["s"].endswith("…") and len(out["s"]) <= 257
    assert out["l"][-1].startswith("… ") and len(out["l"]) <= 17
    assert "…" in out and len(orjson.dumps(out)) < 8192
    wide = [["y" * 300] * 16] * 16
    assert len(orjson.dumps(bounded(wide))) < 64 * 300  # a total budget, not 16 x 16 strings


def test_bounded_turns_non_json_into_text() -> None:
    assert bounded([float("nan"), (1, 2), object(), 3, "ok", None, True]) == ["nan", "<tuple>", "<object>", 3, "ok", None, True]


def test_brief_of_a_short_string_is_its_repr() -> None:
    assert brief("2099-01-01") == "'2099-01-01'"


@pytest.mark.parametrize("levels", [300, 1000, 1020])
@pytest.mark.parametrize("where", ["modern_version", "initialize_version", "log_level", "set_level"])
def test_deep_client_values_get_a_bounded_error_M08_L07(levels: int, where: str) -> None:
    """Issue 10 defects 1-3: deep values in the fields that errors echo -> a serialisable error with the id."""
    c = conn()
    deep = nested(levels)
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
    if where == "modern_version":
        msg = {"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": {**meta, "io.modelcontextprotocol/protocolVersion": deep}}}
        code = -32022
    elif where == "initialize_version":
        msg = {"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {"protocolVersion": deep}}
        code = -32602
    elif where == "log_level":
        msg = {"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": {**meta, "io.modelcontextprotocol/logLevel": deep}}}
        code = -32602
    else:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}}}
        c.receive_obj(init)
        msg = {"jsonrpc": "2.0", "id": 7, "method": "logging/setLevel", "params": {"level": deep}}
        code = -32602
    raw = orjson.dumps(msg) if levels < 250 else _deep_json(msg, deep)
    events = c.receive_data(raw).events
    assert len(events) == 1
    out = dumps(events[0].message)  # type: ignore[union-attr]
    assert len(out) < 2048
    reply = orjson.loads(out)
    assert reply["id"] == 7 and reply["error"]["code"] == code


def _deep_json(msg: dict[str, Any], deep: Any) -> bytes:
    """orjson writes at most 254 levels: splice the deep value in as text."""
    depth = 0
    probe = deep
    while isinstance(probe, list) and probe:
        depth += 1
        probe = probe[0]
    marker = "__DEEP__"
    text = orjson.dumps(_replace(msg, deep, marker))
    return text.replace(b'"' + marker.encode() + b'"', b"[" * (depth + 1) + b"]" * (depth + 1))


def _replace(value: Any, old: Any, new: Any) -> Any:
    if value is old:
        return new
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("level", "ok"), [("info", True), ([], False), ({}, False), (3, False), ("loud", False)])
def test_log_level_of_any_type_in_meta_M19(level: Any, ok: bool) -> None:
    """Issue 10 defect 1: a list or object logLevel was a TypeError; now -32602 like any unknown level."""
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/logLevel": level}
    ev = conn().receive_obj({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": meta}}).events[0]
    if ok:
        assert ev.__class__.__name__ == "IncomingRequest"
    else:
        assert ev.message["error"]["code"] == -32602 and ev.message["id"] == 3  # type: ignore[union-attr]


def test_unserialisable_response_becomes_internal_error_with_its_id() -> None:
    deep = nested(300)
    out = orjson.loads(dumps({"jsonrpc": "2.0", "id": "r", "error": {"code": 1, "message": "m", "data": deep}}))
    assert out == {"jsonrpc": "2.0", "id": "r", "error": {"code": -32603, "message": "Internal error: the response could not be serialised"}}
    batch = orjson.loads(dumps([{"jsonrpc": "2.0", "id": 1, "result": {}}, {"jsonrpc": "2.0", "id": 2, "result": {"x": object()}}]))
    assert batch[0]["result"] == {} and batch[1]["error"]["code"] == -32603
    with pytest.raises(TypeError):
        dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": object()}})


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"x":"', 77),
        (b'{"jsonrpc":"2.0","id":"abc","method"', "abc"),
        (b' {\t"id" : -3 ,', -3),
        (b'{"id":"a\\"b","m"', 'a"b'),
        (b'{"params":{"id":5,"arguments":{"id":6}},"id":9,', 9),
        (b'{"params":{"id":5},"method":"x","text":"', None),  # the nested id is not the request's
        (b'{"a":[1,{"id":2},"]"],"id":"z",', "z"),
        (b'{"id":123', None),  # may go on: 1234...
        (b'{"id":"unterminated', None),
        (b'{"id":true,', None),
        (b'{"id":null,', None),
        (b'{"id":1.5,', None),
        (b'[{"id":1},', None),
        (b"garbage", None),
        (b"", None),
    ],
)
def test_head_id_reads_only_the_top_level_id_J08(head: bytes, expected: Any) -> None:
    assert head_id(head) == expected


def test_oversized_line_keeps_its_head_in_one_chunk_or_many_T_STDIO_02() -> None:
    line = b'{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{"t":"' + b"x" * 50_000 + b'"}}\n'
    whole = LineFramer(1000).feed(line)
    assert whole == [Oversized(len(line) - 1)]
    assert isinstance(whole[0], Oversized) and head_id(whole[0].head) == "big" and len(whole[0].head) == HEAD_BYTES
    f = LineFramer(1000)
    out: list[Any] = []
    for i in range(0, len(line), 777):
        out += f.feed(line[i : i + 777])
    assert out == [Oversized(len(line) - 1)] and head_id(out[0].head) == "big"
