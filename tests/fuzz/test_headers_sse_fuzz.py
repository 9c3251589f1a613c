"""Property tests of the HTTP header rules and the client's SSE parser.

- ``transports/http/_headers.py``: Host / Origin allow-lists (T-HTTP-01, T-HTTP-02, T-SSE-05),
  Accept / Content-Type (T-HTTP-06), request-metadata header values with the ``=?base64?...?=``
  sentinel (T-H26-16..18): any header text gives a verdict, and only ``HeaderValueError`` is raised.
- ``protocol/_param_headers.py``: ``scan_param_headers`` of any input schema gives the annotations or a reason,
  and ``values`` of any arguments gives visible-ASCII headers that decode back (T-H26-19/20).
- ``protocol/_sse.py`` ``SSEParser`` (WHATWG event streams) and ``http/sse_client.py`` ``resolve_endpoint``
  (T-SSE-02, T-SSE-06): any bytes in any chunking give the same events; a hostile ``endpoint``
  event is refused with ``NotAnSSEEndpointError``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from hypothesis import given, strategies as st

from anyport import HeaderValueError, NotAnSSEEndpointError
from anyport.protocol import (
    SSEEvent,
    SSEParser,
    _param_headers as ph,
    accepts_json_and_sse,
    accepts_sse,
    comment,
    decode_field_value,
    encode_field_value,
    is_json_content_type,
    message_event,
    named_event,
    priming_event,
    retry_field,
)
from anyport.transports.http._headers import DEFAULT_LOCAL_HOSTS, HostAllowList, OriginAllowList, split_host
from anyport.transports.http.sse_client import resolve_endpoint
from tests.fuzz._strategies import hostile_values, json_values, materialize, to_json

#: What an ASGI server hands the app: header bytes decoded as latin-1.
header_text = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=60)
any_text = header_text | st.text(max_size=40)
_VISIBLE = {chr(c) for c in range(0x20, 0x7F)}


# -- Host / Origin ----------------------------------------------------------------------------------


@given(any_text)
def test_split_host_any_value(value: str) -> None:
    host, port = split_host(value)
    assert isinstance(host, str) and host == host.lower()
    assert port is None or isinstance(port, str)
    if not value.strip().startswith("["):
        assert port is None or port.isdigit()


@given(st.none() | any_text, st.sampled_from([None, ["*"], ["mcp.example.com"], ["mcp.example.com:8443", "localhost"]]))
def test_host_allow_list_any_value_T_HTTP_02(value: str | None, hosts: list[str] | None) -> None:
    allowed = HostAllowList(hosts).allows(value)
    assert isinstance(allowed, bool)
    if hosts == ["*"]:
        assert allowed


@given(st.sampled_from(DEFAULT_LOCAL_HOSTS), st.integers(min_value=1, max_value=65535) | st.none(),
       st.from_regex(r"[a-z]{1,12}\.(example|com|evil)", fullmatch=True))
def test_host_allow_list_default_is_local_only_T_HTTP_02(local: str, port: int | None, foreign: str) -> None:
    hosts = HostAllowList(None)
    assert hosts.allows(local if port is None else f"{local}:{port}")
    assert hosts.allows(local.upper())
    assert not hosts.allows(foreign if port is None else f"{foreign}:{port}")
    assert not hosts.allows(f"{local}.{foreign}")  # DNS rebinding: localhost.evil.com


@given(any_text, st.sampled_from([None, ["*"], ["https://app.example.com"], ["http://localhost:3000/"]]))
def test_origin_allow_list_any_value_T_HTTP_02_T_SSE_05(origin: str, origins: list[str] | None) -> None:
    allowed = OriginAllowList(origins).allows(origin)
    assert isinstance(allowed, bool)
    if origins == ["*"]:
        assert allowed


@given(st.sampled_from(["http", "https"]), st.sampled_from(["localhost", "127.0.0.1", "[::1]"]),
       st.integers(min_value=1, max_value=65535) | st.none(), st.from_regex(r"[a-z]{1,12}\.(example|com)", fullmatch=True))
def test_origin_default_allows_local_origins_only_T_HTTP_02(scheme: str, local: str, port: int | None, foreign: str) -> None:
    origins = OriginAllowList(None)
    suffix = "" if port is None else f":{port}"
    assert origins.allows(f"{scheme}://{local}{suffix}")
    assert not origins.allows(f"{scheme}://{foreign}{suffix}")
    assert not origins.allows(f"{scheme}://{local}.{foreign}{suffix}")
    assert not origins.allows("null")


# -- Accept / Content-Type ------------------------------------------------------------------------------


media = st.sampled_from(["application/json", "text/event-stream", "*/*", "text/*", "application/*", "text/html",
                         "APPLICATION/JSON", "application/json;q=0.9", "text/event-stream; charset=utf-8", ""])


@given(any_text | st.lists(media, max_size=4).map(", ".join))
def test_accept_and_content_type_any_value_T_HTTP_06(value: str) -> None:
    for fn in (accepts_json_and_sse, accepts_sse, is_json_content_type):
        assert isinstance(fn(value), bool)
    assert accepts_sse(None) is True and accepts_json_and_sse(None) is False and is_json_content_type(None) is False


@given(st.lists(media, min_size=1, max_size=4))
def test_accept_both_iff_both_listed_T_HTTP_06(types: list[str]) -> None:
    names = {t.split(";")[0].strip().lower() for t in types}
    json_ok = bool(names & {"application/json", "application/*", "*/*"})
    sse_ok = bool(names & {"text/event-stream", "text/*", "*/*"})
    assert accepts_json_and_sse(", ".join(types)) == (json_ok and sse_ok)


# -- request-metadata header values (T-H26-16..18) ---------------------------------------------------------


@given(any_text)
def test_decode_field_value_raises_only_HeaderValueError_T_H26_16(raw: str) -> None:
    try:
        value = decode_field_value(raw)
    except HeaderValueError:
        return
    assert isinstance(value, str)
    stripped = raw.strip(" \t")
    if not stripped.startswith("=?base64?"):
        assert value == stripped and set(value) <= _VISIBLE


@given(st.text(max_size=40))
def test_header_value_encodings_round_trip_T_H26_16(value: str) -> None:
    """Both encoders (server-side param headers, client-side metadata headers) give visible ASCII that decodes back."""
    for encoded in (encode_field_value(value, empty_as_sentinel=True), encode_field_value(value)):
        assert set(encoded) <= _VISIBLE
        assert decode_field_value(encoded) == value


# -- x-mcp-header parameter headers (T-H26-19/20) ------------------------------------------------------------


def _schema_chain(keyword: str, depth: int) -> Any:
    node: Any = {"type": "string", "x-mcp-header": "Deep"}
    for _ in range(depth):
        if keyword == "properties":
            node = {"type": "object", "properties": {"a": node}}
        elif keyword in ("anyOf", "allOf", "oneOf", "prefixItems"):
            node = {keyword: [node]}
        elif keyword in ("$defs", "patternProperties"):
            node = {keyword: {"a": node}}
        else:
            node = {keyword: node}
    return node


@given(hostile_values | st.recursive(
    st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "boolean", "object", "array", 3])},
                          optional={"x-mcp-header": st.sampled_from(["Region", "region", "", "bad name", 5, "X-Id"])}),
    lambda inner: st.fixed_dictionaries({"type": st.just("object")}, optional={
        "properties": st.dictionaries(st.sampled_from(["a", "b", "region"]), inner, max_size=3),
        "items": inner, "anyOf": st.lists(inner, max_size=2), "$defs": st.dictionaries(st.just("d"), inner, max_size=1),
    }),
    max_leaves=8,
))
def test_param_header_scan_any_schema_T_H26_20(schema: Any) -> None:
    result = ph.scan_param_headers(materialize(schema))
    assert isinstance(result, str) or (isinstance(result, list) and all(isinstance(d, ph.ParamHeader) for d in result))


#: JSON levels each step of a chain adds (``{"properties": {"a": ...}}`` is two).
_LEVELS = {"properties": 2, "items": 1, "anyOf": 2, "not": 1, "$defs": 2, "additionalProperties": 1}


@pytest.mark.parametrize("keyword", sorted(_LEVELS))
@pytest.mark.parametrize("json_depth", [100, 400, 1000])
def test_param_header_scan_deep_schema_T_H26_20(keyword: str, json_depth: int) -> None:
    """A server's tools/list can carry an inputSchema nested as deep as orjson reads (1,024 levels):
    the client's scan (``_filter_tools``) gives annotations or a reason, never RecursionError."""
    schema = orjson.loads(to_json(_schema_chain(keyword, json_depth // _LEVELS[keyword])))  # reachable from the wire
    result = ph.scan_param_headers(schema)
    assert isinstance(result, str | list)


@given(json_values | hostile_values)
def test_param_header_values_any_arguments_T_H26_19(arguments: Any) -> None:
    schema = {"type": "object", "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "n": {"type": "integer", "x-mcp-header": "N"},
        "flag": {"type": "boolean", "x-mcp-header": "Flag"},
        "inner": {"type": "object", "properties": {"id": {"type": "string", "x-mcp-header": "Inner-Id"}}},
    }}
    decls = ph.scan_param_headers(schema)
    assert isinstance(decls, list) and len(decls) == 4
    args = materialize(arguments)
    if isinstance(args, dict) and args:
        args = {"region": args.get(next(iter(args))), "n": args, "inner": {"id": args.get("x")}, **args}
    headers = ph.header_values(decls, args)
    assert isinstance(headers, dict)
    for name, value in headers.items():
        assert name.startswith(ph.HEADER_PREFIX) and name == name.lower()
        assert set(value) <= _VISIBLE and value
        decode_field_value(value)  # never HeaderValueError for our own encoding


# -- SSE parsing (client side) ------------------------------------------------------------------------------


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[i:j] for i, j in zip([0, *points], [*points, len(data)], strict=True)]


def _parse(chunks: list[bytes]) -> tuple[list[SSEEvent], str, int | None]:
    parser = SSEParser()
    events = [ev for chunk in chunks for ev in parser.feed(chunk)]
    return events, parser.last_event_id, parser.retry


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=10))
def test_sse_parser_any_bytes_any_chunking(data: bytes, cuts: list[int]) -> None:
    """Any bytes, cut anywhere (a CRLF split between chunks too), give the same events as in one piece."""
    assert _parse(_chunked(data, cuts)) == _parse([data])


_field_text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=15)


@st.composite
def _event_streams(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    """A stream written field by field with mixed line ends, and the events it must give (WHATWG)."""
    out: list[str] = []
    expected: list[SSEEvent] = []
    last_id = ""
    eols = st.sampled_from(["\n", "\r\n", "\r"])
    for _ in range(draw(st.integers(0, 5))):
        data: list[str] = []
        name = ""
        for _ in range(draw(st.integers(0, 5))):
            kind = draw(st.sampled_from(["data", "data", "event", "id", "retry", "comment", "unknown"]))
            value = draw(_field_text)
            if kind == "data":
                data.append(value)
            elif kind == "event":
                name = value
            elif kind == "id" and "\x00" not in value:
                last_id = value
            line = f": {value}" if kind == "comment" else f"{kind}: {value}" if kind != "unknown" else f"x-{value.replace(':', '')}: 1"
            out.append(line + draw(eols))
        # The blank line ends the event; after a CR, a LF would only complete that CRLF.
        out.append(draw(st.sampled_from(["\r", "\r\n"]) if out and out[-1].endswith("\r") else eols))
        if data:
            expected.append(SSEEvent(name or "message", "\n".join(data), last_id))
    return "".join(out).encode(), expected


@given(_event_streams(), st.lists(st.integers(min_value=0), max_size=10))
def test_sse_parser_gives_the_events_written(stream: tuple[bytes, list[SSEEvent]], cuts: list[int]) -> None:
    data, expected = stream
    events, _, _ = _parse(_chunked(data, cuts))
    assert events == expected


@given(st.lists(json_values.map(lambda v: {"jsonrpc": "2.0", "id": 1, "result": {"v": v}}), max_size=4),
       st.text(st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]), max_size=10), st.integers(min_value=0, max_value=10**6),
       st.lists(st.integers(min_value=0), max_size=10))
def test_sse_server_writer_to_client_parser_round_trip_T_HTTP_11(messages: list[dict[str, Any]], event_id: str,
                                                                 retry: int, cuts: list[int]) -> None:
    """What the app writes (priming event, retry, comments, messages, named events) the client reads back."""
    stream = priming_event(event_id, retry_ms=retry) + comment("keep\nalive") + retry_field(retry)
    stream += b"".join(message_event(m, event_id=f"{event_id}:{i}") for i, m in enumerate(messages))
    stream += named_event("endpoint", "/messages/?session_id=ab")
    parser = SSEParser()
    events = [ev for chunk in _chunked(stream, cuts) for ev in parser.feed(chunk)]
    assert events[0] == SSEEvent("message", "", event_id)  # the priming event: empty data (T-HTTP-11)
    assert [orjson.loads(e.data) for e in events[1:-1]] == messages
    assert [e.id for e in events[1:-1]] == [f"{event_id}:{i}" for i in range(len(messages))]
    assert events[-1].event == "endpoint" and events[-1].data == "/messages/?session_id=ab"
    assert parser.retry == retry


@given(any_text | st.tuples(st.sampled_from(["http://127.0.0.1:", "http://[", "//", "http://127.0.0.1:8000", "https://", "/"]), any_text).map("".join))
def test_resolve_endpoint_any_data_T_SSE_06(data: str) -> None:
    """Any ``endpoint`` event data gives a URL on the SSE URL's origin or NotAnSSEEndpointError (never
    a ValueError from URL parsing, which no caller expects)."""
    sse_url = "http://127.0.0.1:8000/sse"
    try:
        url = resolve_endpoint(sse_url, data)
    except NotAnSSEEndpointError:
        return
    parts = urlsplit(url)  # the same origin, however it is spelled ("HTTP://127.0.0.1:8000" is)
    assert (parts.scheme.lower(), parts.hostname, parts.port) == ("http", "127.0.0.1", 8000)


@pytest.mark.parametrize("data", ["http://127.0.0.1:99999/messages/", "http://[::1/messages/", "http://127.0.0.1:x/m"])
def test_resolve_endpoint_malformed_url_is_refused_T_SSE_06(data: str) -> None:
    with pytest.raises(NotAnSSEEndpointError):
        resolve_endpoint("http://127.0.0.1:8000/sse", data)
