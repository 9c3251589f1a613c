"""Property tests of the codec, the line framer and ``classify`` (J-01..J-03, J-06, J-09, T-STDIO-02)."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given, strategies as st

from anyport._exceptions import InvalidRequestError, ParseError
from anyport.protocol import Notification, Request, Response, classify, dumps, dumps_line, loads
from anyport.protocol._codec import dumps_canonical
from anyport.protocol._framing import LineFramer, Oversized
from tests.fuzz._oracle import valid_id
from tests.fuzz._strategies import hostile_values, json_values, materialize, messages


def _same(a: Any, b: Any) -> bool:
    """JSON equality, with -0.0 == 0.0 and ints/floats kept apart as JSON keeps them."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


# -- codec ---------------------------------------------------------------------------------------------


@given(json_values)
def test_codec_round_trip_J01(value: Any) -> None:
    """loads(dumps(v)) == v; the line form is the same bytes plus one newline and has no other (T-STDIO-02)."""
    data = dumps(value)
    assert _same(loads(data), value)
    line = dumps_line(value)
    assert line == data + b"\n" and b"\n" not in data
    assert _same(loads(dumps_canonical(value)), value)


@given(st.binary(max_size=200) | st.text(max_size=50).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_codec_any_bytes_is_a_value_or_ParseError_J02(data: bytes) -> None:
    """Any bytes (invalid UTF-8 included, J-02) give a value or ParseError (-32700), never another exception."""
    for form in (data, bytearray(data), memoryview(data)):
        try:
            value = loads(form)
        except ParseError as exc:
            assert exc.code == -32700
            continue
        assert _same(value, orjson.loads(data))


@given(st.text(max_size=30))
def test_codec_any_text_is_a_value_or_ParseError(text: str) -> None:
    """A str input, lone surrogates included."""
    try:
        loads(text)
    except ParseError as exc:
        assert exc.code == -32700


@pytest.mark.parametrize("depth", [1, 254, 1024, 1025, 5000])
def test_codec_deep_nesting_is_a_value_or_ParseError(depth: int) -> None:
    data = b"[" * depth + b"]" * depth
    try:
        loads(data)
    except ParseError:
        assert depth > 1024


# -- line framing ----------------------------------------------------------------------------------------


def _model(stream: bytes, limit: int) -> tuple[list[bytes | int], bytes]:
    """T-STDIO-02 by hand: lines; a line over ``limit`` is its size; blank lines vanish; \\r\\n accepted."""
    *lines, tail = stream.split(b"\n")
    out: list[bytes | int] = []
    for line in lines:
        if len(line) > limit:
            out.append(len(line))
            continue
        line = line.rstrip(b"\r")
        if line.strip():
            out.append(line)
    return out, (b"" if len(tail) > limit else tail.strip())


_line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))


@given(
    st.lists(st.tuples(_line_bytes, st.sampled_from([b"\n", b"\r\n", b""])), max_size=12),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    st.integers(min_value=1, max_value=48),
)
def test_framer_any_split_gives_the_same_lines_T_STDIO_02(parts: list[tuple[bytes, bytes]], cuts: list[int], limit: int) -> None:
    """Fed in any chunks, the framer yields the lines of the whole stream; an oversized line is reported
    once as Oversized(its size); nothing over the limit is ever buffered (T-STDIO-02, T-STDIO-17)."""
    stream = b"".join(a + b for a, b in parts)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[i:j] for i, j in zip([0, *points], [*points, len(stream)], strict=True)]
    framer = LineFramer(limit)
    got: list[bytes | int] = []
    for chunk in chunks:
        for item in framer.feed(chunk):
            got.append(item.size if isinstance(item, Oversized) else item)
            if isinstance(item, bytes):
                assert len(item) <= limit
        assert len(framer._buf) <= limit, f"{len(framer._buf)} bytes buffered over a limit of {limit}"
    expected, tail = _model(stream, limit)
    assert got == expected
    assert framer.pending() == tail
    whole = LineFramer(limit)
    assert [i.size if isinstance(i, Oversized) else i for i in whole.feed(stream)] == expected


@given(st.integers(min_value=2, max_value=64), st.integers(min_value=0, max_value=5000), st.integers(min_value=1, max_value=97))
def test_framer_streamed_oversized_line_is_never_held_T_STDIO_02(limit: int, extra: int, step: int) -> None:
    """A line far over the limit, trickled in: the buffer never exceeds the limit, one Oversized, then the next line."""
    line = b"x" * (limit + 1 + extra)
    framer = LineFramer(limit)
    for i in range(0, len(line), step):
        assert framer.feed(line[i : i + step]) == []
        assert len(framer._buf) <= limit
    out = framer.feed(b"\nok\n")
    assert [o.size if isinstance(o, Oversized) else o for o in out] == [len(line), b"ok"]


# -- classify ----------------------------------------------------------------------------------------------


@given(messages() | hostile_values)
def test_classify_any_value_J01_J03_J06_J09(obj: Any) -> None:
    """Any JSON value is a Request, a Notification, a Response or InvalidRequestError (-32600), nothing else;
    what passes obeys JSON-RPC 2.0 and MCP (J-01, J-03, J-06, J-09, J-10)."""
    obj = materialize(obj)
    try:
        msg = classify(obj)
    except InvalidRequestError as exc:
        assert exc.code == -32600
        if exc.data is not None:
            assert isinstance(exc.data, dict) and set(exc.data) == {"id"} and valid_id(exc.data["id"])
            assert exc.data["id"] == obj.get("id")
        return
    assert isinstance(obj, dict) and obj.get("jsonrpc") == "2.0"
    assert isinstance(msg, Request | Notification | Response)
    if isinstance(msg, Request):
        assert valid_id(msg.id) and msg.id == obj["id"]
        assert isinstance(msg.method, str) and msg.method and isinstance(msg.params, dict)
    elif isinstance(msg, Notification):
        assert "id" not in obj and isinstance(msg.method, str) and msg.method and isinstance(msg.params, dict)
    else:
        assert "method" not in obj and valid_id(msg.id) and ("result" in obj) != ("error" in obj)
