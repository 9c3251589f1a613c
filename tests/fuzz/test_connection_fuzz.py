"""Property tests of ``ServerConnection.receive_obj`` / ``receive_data`` with hostile input.

Whatever the client sends (any JSON value, any bytes, a ``params._meta`` whose reserved keys hold
values of every JSON type nested 300 or 1,100 deep or 100 KB long, an ``initialize`` or
``logging/setLevel`` with unusable params), no exception escapes, and every reply is a valid
JSON-RPC response (J-01, J-06, J-07) whose ``id`` is the request's when that id was readable
(J-03, J-08), that ``codec.dumps`` serialises as it stands (not replaced by a -32603) and that
stays small (< 64 KiB for an error). Requirements: J-01..J-03, J-06..J-13, L-05, L-07, L-19, M-02,
M-04, M-08, M-12, M-19, U-11.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import given, strategies as st

from anyport.protocol import (
    LOG_LEVELS,
    CancelRequested,
    IncomingRequest,
    NotificationReceived,
    Received,
    Reply,
    ResponseReceived,
    ServerConnection,
    dumps,
)
from anyport.protocol._revisions import REVISIONS
from tests.fuzz._gen import CAPS, INFO, LEGACY, LEVEL, MODERN, PV
from tests.fuzz._oracle import INTERNAL_ERROR, MAX_ERROR_BYTES, id_key, response_problem, valid_id
from tests.fuzz._strategies import BIG, hostile_values, materialize, messages, nested_list, to_json

#: Connection states: not initialized, after a handshake on each legacy revision, stateless HTTP (assumed).
KINDS = ("fresh", *LEGACY, "assumed-2025-03-26")
INFO_SERVER = {"name": "fuzz", "version": "1"}


def connection(kind: str) -> ServerConnection:
    if kind.startswith("assumed-"):
        return ServerConnection(server_info=INFO_SERVER, capabilities={"tools": {}}, assume_initialized=REVISIONS[kind[8:]])
    conn = ServerConnection(server_info=INFO_SERVER, capabilities={"tools": {}, "logging": {}})
    if kind != "fresh":
        init = {"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {"protocolVersion": kind, "capabilities": {}}}
        (reply,) = conn.receive_obj(init).events
        assert isinstance(reply, Reply) and reply.message["result"]["protocolVersion"] == kind
        conn.receive_obj({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return conn


def sendable(msg: dict[str, Any]) -> bytes:
    """``msg`` serialised by the codec, checked: valid JSON-RPC, as built (no -32603 stand-in), bounded."""
    problem = response_problem(msg)
    assert problem is None, f"{problem}: {str(msg)[:300]}"
    data = dumps(msg)  # must not raise
    decoded = orjson.loads(data)
    assert decoded.get("id") == msg.get("id")
    if "error" in msg:
        assert decoded["error"]["code"] == msg["error"]["code"], f"the reply was not serialisable as built: {data[:300]!r}"
        assert msg["error"]["code"] != INTERNAL_ERROR, f"-32603 for client input: {data[:300]!r}"
        assert len(data) < MAX_ERROR_BYTES, f"an error reply of {len(data)} bytes: {data[:300]!r}"
    return data


def check(conn: ServerConnection, sent: Any, received: Received) -> None:
    assert isinstance(received, Received)
    for ev in received.events:
        assert isinstance(ev, IncomingRequest | Reply | NotificationReceived | CancelRequested | ResponseReceived), ev
        if isinstance(ev, Reply):
            sendable(ev.message)
        elif isinstance(ev, IncomingRequest):
            # What passed the gate is usable: M-19's level is a real level, capabilities an object.
            assert valid_id(ev.id) and isinstance(ev.params, dict)
            assert ev.log_level is None or ev.log_level in LOG_LEVELS, f"admitted log level {str(ev.log_level)[:80]}"
            assert isinstance(ev.client_capabilities, dict)
            assert ev.client_info is None or isinstance(ev.client_info, dict)
            if ev.revision.modern:
                meta = ev.params.get("_meta")
                assert isinstance(meta, dict) and meta.get(PV) == MODERN and isinstance(meta.get(CAPS), dict)  # M-02, M-04
    items = sent if isinstance(sent, list) and received.batch else [sent]
    requests = Counter(id_key(i["id"]) for i in items if isinstance(i, dict) and "method" in i and valid_id(i.get("id")))
    # A response-shaped message that is itself invalid may get one error naming its id.
    others = Counter(id_key(i["id"]) for i in items if isinstance(i, dict) and "method" not in i and valid_id(i.get("id")))
    for key in requests.keys() | others.keys():
        about = [
            ev for ev in received.events
            if (isinstance(ev, Reply) and "id" in ev.message and id_key(ev.message["id"]) == key)
            or (isinstance(ev, IncomingRequest) and id_key(ev.id) == key)
        ]
        n = requests[key]
        assert n <= len(about) <= n + others[key], (
            f"id {key[1]!r} on {n} request(s): {len(about)} answers/admissions (J-06) in {received.events!r:.500}")
    if isinstance(sent, list) and not received.batch:
        # J-13: a refused batch is one id-less error; nothing in it runs.
        assert len(received.events) == 1 and isinstance(received.events[0], Reply)
        assert received.events[0].message.get("id") is None


@given(st.sampled_from(KINDS), messages())
def test_receive_obj_any_message_J01_J06_M04(kind: str, msg: Any) -> None:
    conn = connection(kind)
    sent = materialize(msg)
    check(conn, sent, conn.receive_obj(sent))


@given(st.sampled_from(KINDS), st.lists(messages(), max_size=5))
def test_receive_obj_batches_J11_J12_J13(kind: str, batch: list[Any]) -> None:
    conn = connection(kind)
    sent = materialize(batch)
    check(conn, sent, conn.receive_obj(sent))


@given(st.sampled_from(KINDS), messages())
def test_receive_data_encoded_messages_J02(kind: str, msg: Any) -> None:
    """The same messages from the wire: nesting past orjson's 1,024 read levels is a -32700."""
    conn = connection(kind)
    sent = materialize(msg)
    received = conn.receive_data(to_json(sent))
    try:
        decoded = orjson.loads(to_json(sent))
    except orjson.JSONDecodeError:
        (reply,) = received.events
        assert isinstance(reply, Reply) and reply.message["error"]["code"] == -32700
        sendable(reply.message)
        return
    check(conn, decoded, received)


@given(st.sampled_from(KINDS), st.binary(max_size=300))
def test_receive_data_any_bytes_never_raises_J02(kind: str, data: bytes) -> None:
    conn = connection(kind)
    received = conn.receive_data(data)
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        (reply,) = received.events  # -32700, no id (J-08)
        assert isinstance(reply, Reply) and reply.message["error"]["code"] == -32700
        sendable(reply.message)
        return
    check(conn, decoded, received)


@given(st.sampled_from(KINDS), st.sampled_from(["tools/list", "tools/call", "server/discover", "ping", "initialize"]),
       st.fixed_dictionaries({}, optional={PV: hostile_values, CAPS: hostile_values, INFO: hostile_values, LEVEL: hostile_values}))
def test_hostile_meta_of_every_json_type_M02_M04_M08_M19(kind: str, method: str, meta: dict[str, Any]) -> None:
    conn = connection(kind)
    msg = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {"_meta": materialize(meta)}}
    check(conn, msg, conn.receive_obj(msg))


# -- the shapes behind the known defects, named ---------------------------------------------------------

MODERN_META = {PV: MODERN, CAPS: {}, INFO: {"name": "f", "version": "1"}}
NON_LEVELS = [[], ["debug"], {}, {"level": "debug"}, 0, 1.5, True, "", "DEBUG", "loud", nested_list(300), BIG["string of 100k"]]
NON_LEVEL_IDS = ["empty-list", "list", "empty-object", "object", "int", "float", "bool", "empty", "upper", "unknown", "nested300", "100k"]


def _one_error(conn: ServerConnection, msg: dict[str, Any], code: int) -> dict[str, Any]:
    received = conn.receive_obj(msg)
    assert len(received.events) == 1, received.events
    (reply,) = received.events
    assert isinstance(reply, Reply), reply
    sendable(reply.message)
    assert reply.message["id"] == msg["id"]
    assert reply.message["error"]["code"] == code, str(reply.message)[:300]
    error: dict[str, Any] = reply.message["error"]
    return error


@pytest.mark.parametrize("level", NON_LEVELS, ids=NON_LEVEL_IDS)
def test_modern_log_level_that_is_not_a_level_is_32602_M19(level: Any) -> None:
    """M-19: an invalid per-request logLevel (a list, an object, a number...) is -32602, never an exception."""
    msg = {"jsonrpc": "2.0", "id": "lvl", "method": "tools/list", "params": {"_meta": {**MODERN_META, LEVEL: level}}}
    _one_error(connection("fresh"), msg, -32602)


@pytest.mark.parametrize("version", LEGACY)
@pytest.mark.parametrize("level", NON_LEVELS[:8], ids=NON_LEVEL_IDS[:8])
def test_set_level_that_is_not_a_level_is_32602_U11(version: str, level: Any) -> None:
    """U-11: logging/setLevel with a level of another JSON type is -32602, and the level stays."""
    conn = connection(version)
    before = conn.log_level
    _one_error(conn, {"jsonrpc": "2.0", "id": 5, "method": "logging/setLevel", "params": {"level": level}}, -32602)
    assert conn.log_level == before


@pytest.mark.parametrize("name", sorted(BIG))
def test_deep_or_huge_protocol_version_in_meta_is_32022_and_sendable_M08(name: str) -> None:
    """M-08: an unusable _meta protocolVersion is -32022 naming data.supported; however deep or long the
    value, the reply serialises (orjson writes 254 levels, repr fails near 1,000) and stays small."""
    msg = {"jsonrpc": "2.0", "id": 11, "method": "tools/list", "params": {"_meta": {**MODERN_META, PV: BIG[name]}}}
    err = _one_error(connection("fresh"), msg, -32022)
    assert err["data"]["supported"] == [MODERN]


@pytest.mark.parametrize("name", sorted(n for n in BIG if not isinstance(BIG[n], str)))
def test_deep_or_huge_initialize_protocol_version_is_32602_and_sendable_L07(name: str) -> None:
    """L-05/L-07: initialize with a protocolVersion that is not a string is -32602 (a string one gets a
    counter-offer); the reply serialises."""
    conn = connection("fresh")
    _one_error(conn, {"jsonrpc": "2.0", "id": "i", "method": "initialize", "params": {"protocolVersion": BIG[name], "capabilities": {}}}, -32602)
    assert conn.revision is None


@pytest.mark.parametrize("depth", [254, 300, 1000, 1020])
@pytest.mark.parametrize("key", [PV, CAPS, INFO, LEVEL])
def test_deep_meta_value_from_the_wire_M02_M19(depth: int, key: str) -> None:
    """The same through receive_data: JSON text nested up to orjson's 1,024 read levels (with the envelope) in each reserved key."""
    head = orjson.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": {**MODERN_META, key: "X"}}})
    data = head.replace(b'"X"', b"[" * depth + b"]" * depth)
    received = connection("fresh").receive_data(data)
    (reply,) = received.events
    assert isinstance(reply, Reply)
    sendable(reply.message)
    assert reply.message["id"] == 3
    assert reply.message["error"]["code"] == (-32022 if key == PV else -32602)
