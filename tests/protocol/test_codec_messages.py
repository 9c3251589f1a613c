"""Codec and message classification: the single gate for JSON-RPC shapes (J-01..J-10, T-STDIO-02).

Pure unit tests: no event loop.
"""

from __future__ import annotations

import pytest

from anyport._exceptions import InvalidRequestError, ParseError
from anyport.protocol import (
    Notification,
    Request,
    Response,
    classify,
    dumps,
    dumps_line,
    error_message,
    loads,
    notification,
    request,
    result_message,
)

# -- codec ---------------------------------------------------------------------------------------


def test_malformed_json_raises_parse_error_E32700() -> None:
    """-32700: malformed JSON is a ParseError with the JSON-RPC parse error code."""
    with pytest.raises(ParseError) as info:
        loads(b'{"jsonrpc": "2.0", ')
    assert info.value.code == -32700
    assert info.value.to_error()["code"] == -32700


def test_invalid_utf8_is_a_parse_error_J02() -> None:
    """J-02: messages are UTF-8; invalid UTF-8 bytes cannot be decoded and are a parse error."""
    with pytest.raises(ParseError):
        loads(b'{"jsonrpc":"2.0","method":"x\xff\xfe"}')


def test_dumps_line_is_one_compact_line_T_STDIO_02() -> None:
    """T-STDIO-02: serialised compactly, newlines inside strings escaped, exactly one trailing newline."""
    msg = {"jsonrpc": "2.0", "id": 1, "result": {"text": "a\nb\r\nc", "n": [1, 2]}}
    line = dumps_line(msg)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert b"\r" not in line
    assert b", " not in line and b": " not in line
    assert loads(line) == msg
    assert dumps(msg) + b"\n" == line


def test_dumps_is_utf8_not_ascii_escaped_J02() -> None:
    """J-02: output is UTF-8 bytes (non-ASCII text stays UTF-8 and round-trips)."""
    data = dumps({"t": "héllo ✓"})
    assert "héllo ✓".encode() in data
    assert loads(data) == {"t": "héllo ✓"}


# -- classify: J-01 -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [42, "x", None, True, 3.5])
def test_non_object_is_invalid_request_J01(bad: object) -> None:
    """J-01: a message must be a JSON-RPC object; scalars are -32600 without an id."""
    with pytest.raises(InvalidRequestError) as info:
        classify(bad)
    assert info.value.code == -32600
    assert info.value.data is None


@pytest.mark.parametrize("version", [None, "1.0", 2.0, "2.1"])
def test_wrong_or_missing_jsonrpc_version_is_invalid_request_J01(version: object) -> None:
    """J-01: "jsonrpc" must be exactly "2.0"; a readable id is kept for the error reply."""
    obj: dict[str, object] = {"id": 7, "method": "ping"}
    if version is not None:
        obj["jsonrpc"] = version
    with pytest.raises(InvalidRequestError) as info:
        classify(obj)
    assert info.value.code == -32600
    assert info.value.data == {"id": 7}


# -- classify: J-03 ids --------------------------------------------------------------------------


@pytest.mark.parametrize("good_id", [0, 1, -5, 2**53, "", "abc"])
def test_string_and_integer_ids_are_accepted_J03(good_id: str | int) -> None:
    """J-03: request ids are strings or integers."""
    msg = classify({"jsonrpc": "2.0", "id": good_id, "method": "tools/list"})
    assert isinstance(msg, Request)
    assert msg.id == good_id
    assert msg.method == "tools/list"


@pytest.mark.parametrize("bad_id", [None, 1.5, True, False, [1], {"a": 1}])
def test_null_float_bool_and_structured_ids_are_rejected_J03(bad_id: object) -> None:
    """J-03: null is forbidden (stricter than JSON-RPC); floats, booleans and containers are not ids."""
    with pytest.raises(InvalidRequestError) as info:
        classify({"jsonrpc": "2.0", "id": bad_id, "method": "ping"})
    assert info.value.code == -32600
    # the id could not be read, so nothing is offered for echoing (J-08)
    assert info.value.data is None


# -- classify: J-06 responses --------------------------------------------------------------------


def test_response_with_result_J06() -> None:
    """J-06: a response echoes the id and carries a result."""
    msg = classify({"jsonrpc": "2.0", "id": "r1", "result": {"ok": True}})
    assert isinstance(msg, Response)
    assert msg.id == "r1"
    assert msg.result == {"ok": True}
    assert not msg.is_error


def test_response_with_error_J06_J07() -> None:
    """J-06/J-07: an error response carries `error` and no result."""
    err = {"code": -32601, "message": "nope"}
    msg = classify({"jsonrpc": "2.0", "id": 3, "error": err})
    assert isinstance(msg, Response)
    assert msg.is_error
    assert msg.error == err
    assert msg.result is None


def test_response_with_both_result_and_error_is_invalid_J06() -> None:
    """J-06: exactly one of result / error, never both."""
    with pytest.raises(InvalidRequestError):
        classify({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "x"}})


def test_response_with_neither_result_nor_error_is_invalid_J06() -> None:
    """J-06: a message with an id but neither method, result nor error is not a response."""
    with pytest.raises(InvalidRequestError):
        classify({"jsonrpc": "2.0", "id": 1})


def test_response_with_null_id_is_invalid_J03_J06() -> None:
    """J-03/J-06: a response must echo a real request id (string/integer)."""
    with pytest.raises(InvalidRequestError):
        classify({"jsonrpc": "2.0", "id": None, "result": {}})


# -- classify: J-09 notifications ----------------------------------------------------------------


def test_message_without_id_is_a_notification_J09() -> None:
    """J-09: a message with a method and no id is a notification."""
    msg = classify({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert isinstance(msg, Notification)
    assert msg.method == "notifications/initialized"
    assert msg.params == {}


def test_null_id_is_not_treated_as_a_notification_J03_J09() -> None:
    """J-03/J-09: an explicit "id": null is an invalid request, not a notification."""
    with pytest.raises(InvalidRequestError):
        classify({"jsonrpc": "2.0", "id": None, "method": "notifications/initialized"})


# -- classify: J-10 params / method --------------------------------------------------------------


@pytest.mark.parametrize("params", [[1, 2], "x", 5, True])
def test_positional_or_scalar_params_are_invalid_J10(params: object) -> None:
    """J-10: params are by-name (an object); positional arrays and scalars are rejected with the id kept."""
    with pytest.raises(InvalidRequestError) as info:
        classify({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": params})
    assert info.value.data == {"id": 9}


def test_absent_or_null_params_become_empty_object_J10() -> None:
    """J-10: params are optional; absent or null is treated as {}."""
    a = classify({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    b = classify({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": None})
    assert isinstance(a, Request) and a.params == {}
    assert isinstance(b, Request) and b.params == {}


def test_object_params_are_kept_J10() -> None:
    """J-10: object params pass through unchanged."""
    msg = classify({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {}}})
    assert isinstance(msg, Request)
    assert msg.params == {"name": "echo", "arguments": {}}


@pytest.mark.parametrize("method", ["", 5, None, ["ping"]])
def test_method_must_be_a_nonempty_string_J01(method: object) -> None:
    """J-01: "method" must be a non-empty string."""
    with pytest.raises(InvalidRequestError) as info:
        classify({"jsonrpc": "2.0", "id": 4, "method": method})
    assert info.value.data == {"id": 4}


# -- builders ------------------------------------------------------------------------------------


def test_builders_produce_jsonrpc_2_messages_J01_J06() -> None:
    """J-01/J-06: builders stamp "jsonrpc":"2.0"; results carry only `result`, errors only `error`."""
    req = request(1, "tools/list", {"cursor": "c"})
    assert req == {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"cursor": "c"}}
    assert "params" not in request(2, "ping")
    note = notification("notifications/initialized")
    assert note == {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert "id" not in note  # J-09
    res = result_message("a", {})
    assert res == {"jsonrpc": "2.0", "id": "a", "result": {}}
    err = error_message(5, {"code": -32601, "message": "x"})
    assert err == {"jsonrpc": "2.0", "id": 5, "error": {"code": -32601, "message": "x"}}
    assert "result" not in err


def test_error_without_readable_id_omitted_or_null_J08() -> None:
    """J-08: without a readable id, omit `id` (>=2025-11-25 peers) or send null (older revisions)."""
    omitted = error_message(None, {"code": -32700, "message": "p"})
    assert "id" not in omitted
    nulled = error_message(None, {"code": -32700, "message": "p"}, omit_missing_id=False)
    assert "id" in nulled and nulled["id"] is None
    # a readable id is always echoed, whatever the flag says
    assert error_message(0, {"code": 1, "message": "m"}, omit_missing_id=True)["id"] == 0


def test_built_messages_classify_back_J01_J06_J09() -> None:
    """J-01/J-06/J-09: what the builders make, classify accepts as the same kind."""
    assert isinstance(classify(request(1, "ping")), Request)
    assert isinstance(classify(notification("notifications/progress", {"progressToken": 1, "progress": 1})), Notification)
    assert isinstance(classify(result_message(1, {})), Response)
    assert isinstance(classify(error_message(1, {"code": -32603, "message": "x"})), Response)
