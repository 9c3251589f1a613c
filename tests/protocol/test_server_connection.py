"""``ServerConnection``: the sans-IO server state machine for both eras.

Covers lifecycle (L-*), the modern per-request ``_meta`` model (M-*), batching (J-11..J-13),
error ids (J-08), duplicate ids (J-05), cancellation bookkeeping (U-02/U-04/U-05),
discover (M-09/U-18) and capability gating per revision (L-04/L-14).

Pure unit tests: no event loop.
"""

from __future__ import annotations

from typing import Any

import pytest

from anyport._exceptions import LocalProtocolError
from anyport.protocol import (
    LEGACY_VERSIONS,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    META_SERVER_INFO,
    REVISIONS,
    CancelRequested,
    IncomingRequest,
    NotificationReceived,
    Reply,
    ResponseReceived,
    ServerConnection,
    dumps,
)

MODERN = "2026-07-28"

SERVER_INFO = {
    "name": "srv",
    "version": "1.2.3",
    "title": "Server Title",
    "description": "A test server",
    "websiteUrl": "https://example.com",
    "icons": [{"src": "https://example.com/i.png"}],
}
CAPS = {
    "tools": {"listChanged": False},
    "resources": {"subscribe": True, "listChanged": False},
    "prompts": {"listChanged": False},
    "logging": {},
    "completions": {},
    "tasks": {"list": {}},
}


def make(**kw: Any) -> ServerConnection:
    kw.setdefault("server_info", dict(SERVER_INFO))
    kw.setdefault("capabilities", {k: dict(v) for k, v in CAPS.items()})
    kw.setdefault("instructions", "Use the tools wisely.")
    return ServerConnection(**kw)


def req(id_: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def note(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def meta(version: Any = MODERN, caps: Any = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {META_PROTOCOL_VERSION: version}
    if caps is not ...:
        m[META_CLIENT_CAPABILITIES] = {} if caps is None else caps
    m.update(extra)
    return m


def modern_req(id_: Any, method: str, params: dict[str, Any] | None = None, **meta_kw: Any) -> dict[str, Any]:
    p = dict(params or {})
    p["_meta"] = meta(**meta_kw)
    return req(id_, method, p)


def reply(conn: ServerConnection, obj: Any) -> dict[str, Any]:
    ev = conn.receive(obj)
    assert isinstance(ev, Reply), f"expected a Reply, got {ev!r}"
    return ev.message


def error_of(conn: ServerConnection, obj: Any) -> dict[str, Any]:
    msg = reply(conn, obj)
    assert "error" in msg and "result" not in msg, msg
    return msg


def admitted(conn: ServerConnection, obj: Any) -> IncomingRequest:
    ev = conn.receive(obj)
    assert isinstance(ev, IncomingRequest), f"expected an IncomingRequest, got {ev!r}"
    return ev


def initialize(conn: ServerConnection, version: str = "2025-11-25", id_: Any = 0, **params: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "protocolVersion": version,
        "capabilities": {"roots": {"listChanged": True}},
        "clientInfo": {"name": "client", "version": "9"},
    }
    p.update(params)
    msg = reply(conn, req(id_, "initialize", p))
    assert "result" in msg, msg
    assert conn.receive(note("notifications/initialized")) is None
    return msg["result"]


# -- lifecycle (L-*) --------------------------------------------------------------------------------


def test_ping_before_initialize_is_answered_with_empty_result_L19() -> None:
    """L-19: ping is answered with {} at any time, also before initialization."""
    conn = make()
    assert reply(conn, req(1, "ping")) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert conn.revision is None


def test_ping_after_initialize_L19() -> None:
    """L-19: ping works after initialization too, with the id echoed."""
    conn = make()
    initialize(conn, "2024-11-05")
    assert reply(conn, req("p", "ping")) == {"jsonrpc": "2.0", "id": "p", "result": {}}


def test_request_before_initialize_without_meta_is_rejected_L02_M04() -> None:
    """L-02/M-04: a non-ping request with no handshake and no modern _meta gets -32602 (id echoed), no handler."""
    conn = make()
    msg = error_of(conn, req(5, "tools/list"))
    assert msg["id"] == 5
    assert msg["error"]["code"] == -32602
    assert META_PROTOCOL_VERSION in msg["error"]["message"]
    assert conn.inflight == {}


def test_legacy_only_method_before_initialize_is_rejected_L02() -> None:
    """L-02: legacy-only methods (logging/setLevel) before initialize are rejected, not run."""
    conn = make()
    msg = error_of(conn, req(6, "logging/setLevel", {"level": "info"}))
    assert msg["id"] == 6
    assert msg["error"]["code"] == -32600
    assert conn.log_level == "debug"  # unchanged


def test_initialize_echoes_supported_version_and_answers_L04_L05() -> None:
    """L-04/L-05: echo a supported version; reply carries protocolVersion, capabilities, serverInfo."""
    conn = make()
    msg = reply(conn, req(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}))
    assert msg["id"] == 1
    result = msg["result"]
    assert result["protocolVersion"] == "2025-06-18"
    assert isinstance(result["capabilities"], dict)
    assert result["serverInfo"]["name"] == "srv"
    assert result["serverInfo"]["version"] == "1.2.3"
    assert conn.revision is REVISIONS["2025-06-18"]


@pytest.mark.parametrize("requested", ["2099-12-31", "2024-01-01", MODERN])
def test_unknown_version_gets_counter_offer_L05(requested: str) -> None:
    """L-05/M-12: an unknown (or modern) version is not echoed; the newest legacy version is offered."""
    conn = make()
    result = initialize(conn, requested)
    assert result["protocolVersion"] == "2025-11-25"
    assert conn.revision is REVISIONS["2025-11-25"]


@pytest.mark.parametrize("bad", [None, 20251125, ["2025-11-25"]])
def test_initialize_with_unusable_version_is_32602_with_supported_L07(bad: Any) -> None:
    """L-07: unusable input (missing / non-string version) gets -32602 with data.supported and data.requested."""
    conn = make()
    params: dict[str, Any] = {"capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}
    if bad is not None:
        params["protocolVersion"] = bad
    msg = error_of(conn, req(2, "initialize", params))
    assert msg["id"] == 2
    assert msg["error"]["code"] == -32602
    assert msg["error"]["data"]["supported"] == list(LEGACY_VERSIONS)
    assert msg["error"]["data"]["requested"] == bad
    assert conn.revision is None  # not initialized: can still try again
    assert "result" in reply(conn, req(3, "initialize", {"protocolVersion": "2025-03-26", "capabilities": {}}))


def test_second_initialize_is_rejected_L02() -> None:
    """L-02: initialize happens once; a second one is an error and does not renegotiate."""
    conn = make()
    initialize(conn, "2025-03-26")
    msg = error_of(conn, req(9, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}))
    assert msg["id"] == 9
    assert msg["error"]["code"] == -32600
    assert conn.revision is REVISIONS["2025-03-26"]


def test_second_initialize_before_initialized_notification_is_rejected_L02() -> None:
    """L-02: a second initialize is rejected even before notifications/initialized arrived."""
    conn = make()
    assert "result" in reply(conn, req(1, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}))
    msg = error_of(conn, req(2, "initialize", {"protocolVersion": "2024-11-05", "capabilities": {}}))
    assert msg["error"]["code"] == -32600
    assert conn.revision is REVISIONS["2025-11-25"]


def test_initialized_notification_completes_handshake_and_gets_no_reply_L08_J09() -> None:
    """L-08/J-09: notifications/initialized marks the connection initialized; nothing is sent back."""
    conn = make()
    assert conn.receive(note("notifications/initialized")) is None  # before initialize: ignored
    assert conn.initialized is False
    reply(conn, req(1, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}))
    assert conn.initialized is False
    assert conn.receive(note("notifications/initialized")) is None
    assert conn.initialized is True


def test_initialize_records_client_capabilities_and_info_L03_L11() -> None:
    """L-03/L-11: client capabilities/info from initialize travel with every admitted legacy request."""
    conn = make()
    initialize(conn, "2025-06-18", capabilities={"sampling": {}}, clientInfo={"name": "cl", "version": "2"})
    ev = admitted(conn, req(10, "tools/call", {"name": "x"}))
    assert ev.revision is REVISIONS["2025-06-18"]
    assert ev.client_capabilities == {"sampling": {}}
    assert ev.client_info == {"name": "cl", "version": "2"}
    assert ev.method == "tools/call"
    assert ev.params == {"name": "x"}


def test_instructions_only_from_2025_03_26_L04() -> None:
    """L-04: optional instructions exist from 2025-03-26; 2024-11-05 results do not carry them."""
    assert "instructions" not in initialize(make(), "2024-11-05")
    assert initialize(make(), "2025-03-26")["instructions"] == "Use the tools wisely."


def test_assume_initialized_admits_without_handshake() -> None:
    """M-12 (stateless legacy HTTP): with assume_initialized, legacy requests run with no handshake; initialize is refused."""
    conn = make(assume_initialized=REVISIONS["2025-06-18"])
    ev = admitted(conn, req(1, "tools/list"))
    assert ev.revision is REVISIONS["2025-06-18"]
    assert error_of(conn, req(2, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}}))["error"]["code"] == -32600


@pytest.mark.parametrize("method", ["server/discover", "subscriptions/listen"])
def test_modern_only_methods_on_legacy_connection_are_32601(method: str) -> None:
    """M-09/M-20: modern-only methods requested in the legacy era (no _meta) are -32601."""
    conn = make()
    initialize(conn, "2025-11-25")
    msg = error_of(conn, req(3, method))
    assert msg["id"] == 3
    assert msg["error"]["code"] == -32601


# -- legacy logging/setLevel (U-11) -------------------------------------------------------------------


def test_set_level_valid_and_invalid_U11() -> None:
    """U-11: logging/setLevel sets the minimum level; an invalid level is -32602 and changes nothing."""
    conn = make()
    initialize(conn, "2025-11-25")
    assert reply(conn, req(1, "logging/setLevel", {"level": "warning"})) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert admitted(conn, req(2, "tools/list")).log_level == "warning"
    for bad in ("verbose", None, 3, "WARNING"):
        msg = error_of(conn, req(3, "logging/setLevel", {"level": bad}))
        assert msg["error"]["code"] == -32602
        assert msg["id"] == 3
    assert conn.log_level == "warning"


# -- batching (J-11, J-12, J-13) ----------------------------------------------------------------------


def test_batch_before_initialize_is_rejected_J13() -> None:
    """J-13: no revision negotiated yet, so no batching: one -32600 error, id omitted (J-08)."""
    conn = make()
    out = conn.receive_data(dumps([req(1, "ping"), req(2, "ping")]))
    assert out.batch is False
    assert len(out.events) == 1
    ev = out.events[0]
    assert isinstance(ev, Reply)
    assert ev.message["error"]["code"] == -32600
    assert "id" not in ev.message


@pytest.mark.parametrize("version", ["2024-11-05", "2025-06-18", "2025-11-25"])
def test_batch_rejected_outside_2025_03_26_J13_J08(version: str) -> None:
    """J-13: 24 and >=25.06 reject arrays with -32600; J-08: id null before 25.11, omitted from 25.11."""
    conn = make()
    initialize(conn, version)
    out = conn.receive_data(dumps([req(1, "ping")]))
    assert len(out.events) == 1 and not out.batch
    ev = out.events[0]
    assert isinstance(ev, Reply)
    assert ev.message["error"]["code"] == -32600
    if version == "2025-11-25":
        assert "id" not in ev.message
    else:
        assert ev.message["id"] is None
    assert conn.inflight == {}


def test_batch_accepted_on_2025_03_26_J11() -> None:
    """J-11: on 2025-03-26 a batch is accepted; each member becomes its own event; notifications get none."""
    conn = make()
    initialize(conn, "2025-03-26")
    out = conn.receive_data(dumps([
        req(1, "ping"),
        req(2, "tools/list"),
        note("notifications/roots/list_changed"),
        req("x", "tools/call", {"name": "echo"}),
    ]))
    assert out.batch is True
    kinds = [type(e) for e in out.events]
    assert kinds == [Reply, IncomingRequest, NotificationReceived, IncomingRequest]
    assert out.events[0].message == {"jsonrpc": "2.0", "id": 1, "result": {}}  # type: ignore[union-attr]
    assert [e.id for e in out.events if isinstance(e, IncomingRequest)] == [2, "x"]


def test_initialize_inside_batch_is_rejected_J12() -> None:
    """J-12: initialize is never part of a batch: that member gets -32600 (id echoed), the rest runs."""
    conn = make()
    initialize(conn, "2025-03-26")
    out = conn.receive_data(dumps([
        req(7, "initialize", {"protocolVersion": "2025-03-26", "capabilities": {}}),
        req(8, "ping"),
    ]))
    assert out.batch is True
    first, second = out.events
    assert isinstance(first, Reply) and first.message["id"] == 7 and first.message["error"]["code"] == -32600
    assert isinstance(second, Reply) and second.message == {"jsonrpc": "2.0", "id": 8, "result": {}}
    assert conn.revision is REVISIONS["2025-03-26"]


def test_empty_batch_is_invalid_J11() -> None:
    """J-11 (JSON-RPC 2.0 batch rules): an empty array is a single -32600."""
    conn = make()
    initialize(conn, "2025-03-26")
    out = conn.receive_data(b"[]")
    assert len(out.events) == 1
    ev = out.events[0]
    assert isinstance(ev, Reply) and ev.message["error"]["code"] == -32600


def test_invalid_members_of_a_batch_get_their_own_errors_J11() -> None:
    """J-11: each invalid member of an accepted batch is answered with its own -32600; id null on 25.03 (J-08)."""
    conn = make()
    initialize(conn, "2025-03-26")
    out = conn.receive_data(b'[1, {"jsonrpc":"2.0","id":4,"method":"ping"}]')
    assert out.batch is True
    bad, good = out.events
    assert isinstance(bad, Reply) and bad.message["error"]["code"] == -32600 and bad.message["id"] is None
    assert isinstance(good, Reply) and good.message["result"] == {}


# -- J-08: error ids per revision ----------------------------------------------------------------------


def test_parse_error_before_initialize_omits_id_J08() -> None:
    """J-08/-32700: malformed input before any revision is known -> id omitted."""
    out = make().receive_data(b"{nope")
    (ev,) = out.events
    assert isinstance(ev, Reply)
    assert ev.message["error"]["code"] == -32700
    assert "id" not in ev.message
    assert ev.message["jsonrpc"] == "2.0"


@pytest.mark.parametrize(("version", "omitted"), [
    ("2024-11-05", False), ("2025-03-26", False), ("2025-06-18", False), ("2025-11-25", True),
])
def test_parse_error_id_per_revision_J08(version: str, omitted: bool) -> None:
    """J-08: id-less errors omit `id` for >=2025-11-25 peers and send "id": null to older ones."""
    conn = make()
    initialize(conn, version)
    (ev,) = conn.receive_data(b'{"jsonrpc":"2.0","id":3,').events
    assert isinstance(ev, Reply)
    assert ev.message["error"]["code"] == -32700
    if omitted:
        assert "id" not in ev.message
    else:
        assert "id" in ev.message and ev.message["id"] is None


@pytest.mark.parametrize("payload", [b"42", b'"x"', b"null", b"true"])
def test_non_object_message_is_32600_J01(payload: bytes) -> None:
    """J-01: a non-object message is -32600 with no id (before initialize: omitted)."""
    (ev,) = make().receive_data(payload).events
    assert isinstance(ev, Reply)
    assert ev.message["error"]["code"] == -32600
    assert "id" not in ev.message


def test_invalid_request_with_readable_id_echoes_it_J08() -> None:
    """J-08: when the id could be read, the -32600 error echoes it."""
    conn = make()
    msg = error_of(conn, {"jsonrpc": "1.0", "id": "abc", "method": "ping"})
    assert msg["id"] == "abc"
    assert msg["error"]["code"] == -32600


def test_null_id_request_is_rejected_with_unreadable_id_J03_J08() -> None:
    """J-03: "id": null is forbidden; the reply cannot echo an id (null on 24, omitted on 25.11)."""
    old = make()
    initialize(old, "2024-11-05")
    msg = error_of(old, req(None, "tools/list"))
    assert msg["error"]["code"] == -32600 and msg["id"] is None
    new = make()
    initialize(new, "2025-11-25")
    msg = error_of(new, req(None, "tools/list"))
    assert msg["error"]["code"] == -32600 and "id" not in msg


def test_error_replies_have_exactly_one_of_result_or_error_J06() -> None:
    """J-06: answers carry either result or error."""
    conn = make()
    for obj in (req(1, "ping"), req(2, "tools/list"), 42):
        msg = reply(conn, obj)
        assert ("result" in msg) != ("error" in msg)


# -- modern per-request _meta (M-*) --------------------------------------------------------------------


def test_modern_request_is_admitted_without_handshake_M02_M12() -> None:
    """M-02/M-12: a request whose _meta names 2026-07-28 is served statelessly with no initialize."""
    conn = make()
    ev = admitted(conn, modern_req(1, "tools/list", caps={"elicitation": {}}, **{META_CLIENT_INFO: {"name": "c", "version": "1"}}))
    assert ev.revision is REVISIONS[MODERN]
    assert ev.client_capabilities == {"elicitation": {}}
    assert ev.client_info == {"name": "c", "version": "1"}
    assert ev.log_level is None  # M-19: no logLevel -> no log notifications
    assert conn.revision is None  # nothing about the connection changed (M-05)


def test_missing_client_capabilities_is_32602_M04() -> None:
    """M-04: a request missing a required _meta field (clientCapabilities) is -32602, id echoed."""
    conn = make()
    msg = error_of(conn, modern_req(11, "tools/list", caps=...))
    assert msg["id"] == 11
    assert msg["error"]["code"] == -32602
    assert META_CLIENT_CAPABILITIES in msg["error"]["message"]
    assert conn.inflight == {}


@pytest.mark.parametrize("caps", [None, "all", [1]])
def test_non_object_client_capabilities_is_32602_M04(caps: Any) -> None:
    """M-04: clientCapabilities must be an object; null / string / array are -32602."""
    conn = make()
    p = {"_meta": {META_PROTOCOL_VERSION: MODERN, META_CLIENT_CAPABILITIES: caps}}
    msg = error_of(conn, req(1, "tools/list", p))
    assert msg["error"]["code"] == -32602


@pytest.mark.parametrize("requested", ["2099-01-01", "2025-11-25", "2024-11-05", 7])
def test_unsupported_version_is_32022_with_supported_and_requested_M08(requested: Any) -> None:
    """M-08: unknown/unsupported _meta version -> -32022 with data.supported (modern only, DIGEST §19) and data.requested."""
    conn = make()
    msg = error_of(conn, modern_req("q", "tools/list", version=requested))
    assert msg["id"] == "q"
    assert msg["error"]["code"] == -32022
    assert msg["error"]["data"] == {"supported": [MODERN], "requested": requested}


def test_32022_is_checked_before_other_meta_fields_M08() -> None:
    """M-08: with an unsupported version the client learns the versions, even if capabilities are missing too."""
    conn = make()
    msg = error_of(conn, modern_req(1, "tools/list", version="1999-01-01", caps=...))
    assert msg["error"]["code"] == -32022


@pytest.mark.parametrize("level", ["verbose", "INFO", 3, ""])
def test_bad_log_level_in_meta_is_32602_M19(level: Any) -> None:
    """M-19: an invalid _meta logLevel SHOULD be -32602."""
    conn = make()
    msg = error_of(conn, modern_req(1, "tools/call", {"name": "x"}, **{META_LOG_LEVEL: level}))
    assert msg["error"]["code"] == -32602
    assert msg["id"] == 1


@pytest.mark.parametrize("level", ["debug", "warning", "emergency"])
def test_valid_log_level_travels_with_the_request_M19(level: str) -> None:
    """M-19: a valid per-request level is recorded on that request only."""
    conn = make()
    ev = admitted(conn, modern_req(1, "tools/call", {"name": "x"}, **{META_LOG_LEVEL: level}))
    assert ev.log_level == level
    assert admitted(conn, modern_req(2, "tools/list")).log_level is None  # not inherited (M-05)


def test_non_object_client_info_is_32602_M03() -> None:
    """M-03: clientInfo, when sent, is an object; anything else is invalid params."""
    conn = make()
    msg = error_of(conn, modern_req(1, "tools/list", **{META_CLIENT_INFO: "me"}))
    assert msg["error"]["code"] == -32602


@pytest.mark.parametrize("method", ["ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"])
def test_legacy_only_methods_on_modern_are_32601(method: str) -> None:
    """M-01/M-12: methods removed in 2026-07-28 requested with modern _meta are -32601 (method not found)."""
    conn = make()
    msg = error_of(conn, modern_req(4, method, {"level": "info", "uri": "res://x"}))
    assert msg["id"] == 4
    assert msg["error"]["code"] == -32601
    assert conn.log_level == "debug"


def test_modern_requests_derive_nothing_from_earlier_requests_M05() -> None:
    """M-05: capabilities come from each request's own _meta, never from a previous one."""
    conn = make()
    a = admitted(conn, modern_req(1, "tools/list", caps={"sampling": {}}))
    b = admitted(conn, modern_req(2, "tools/list", caps={}))
    assert a.client_capabilities == {"sampling": {}}
    assert b.client_capabilities == {}
    # a modern request does not open a legacy session either
    assert error_of(conn, req(3, "tools/list"))["error"]["code"] == -32602
    with pytest.raises(LocalProtocolError):
        conn.start_request("roots/list")  # M-10: no server->client requests without a legacy session


def test_both_eras_on_one_connection_M12() -> None:
    """M-12: after a legacy initialize, modern requests are still served as 2026-07-28 and legacy ones as negotiated."""
    conn = make()
    initialize(conn, "2025-06-18", capabilities={"roots": {}})
    legacy = admitted(conn, req(1, "tools/list"))
    modern = admitted(conn, modern_req(2, "tools/list", caps={"elicitation": {}}))
    assert legacy.revision is REVISIONS["2025-06-18"]
    assert legacy.client_capabilities == {"roots": {}}
    assert modern.revision is REVISIONS[MODERN]
    assert modern.client_capabilities == {"elicitation": {}}


def test_progress_token_from_meta_U06() -> None:
    """U-06: the progress token is params._meta.progressToken (string or integer), nothing else."""
    conn = make()
    assert admitted(conn, modern_req(1, "tools/call", progressToken="t1")).progress_token == "t1"
    assert admitted(conn, modern_req(2, "tools/call", progressToken=5)).progress_token == 5
    assert admitted(conn, modern_req(3, "tools/call", progressToken=True)).progress_token is None
    assert admitted(conn, modern_req(4, "tools/call")).progress_token is None


# -- server/discover (M-09, U-18) ----------------------------------------------------------------------


def test_discover_result_M09_U18_M07() -> None:
    """M-09: versions, capabilities, instructions, serverInfo in _meta (M-07); U-18: ttlMs >= 0 and cacheScope."""
    conn = make()
    msg = reply(conn, modern_req(1, "server/discover"))
    assert msg["id"] == 1
    result = msg["result"]
    assert result["resultType"] == "complete"  # J-16
    assert MODERN in result["supportedVersions"]
    assert set(LEGACY_VERSIONS) <= set(result["supportedVersions"])
    assert result["supportedVersions"][0] == MODERN  # preferred first
    assert isinstance(result["capabilities"], dict) and "tools" in result["capabilities"]
    assert result["instructions"] == "Use the tools wisely."
    assert result["_meta"][META_SERVER_INFO]["name"] == "srv"
    assert result["_meta"][META_SERVER_INFO]["version"] == "1.2.3"
    ttl = result["ttlMs"]
    assert isinstance(ttl, int) and not isinstance(ttl, bool) and ttl >= 0
    assert result["cacheScope"] in ("public", "private")
    assert conn.inflight == {}  # answered by the connection itself


def test_discover_caching_hints_from_server_settings_U18() -> None:
    """U-18: configured ttlMs / cacheScope are reported as given."""
    conn = make(discover_extra={"ttlMs": 60000, "cacheScope": "private"})
    result = reply(conn, modern_req(1, "server/discover"))["result"]
    assert result["ttlMs"] == 60000
    assert result["cacheScope"] == "private"


def test_discover_with_unsupported_version_is_32022_M08_M09() -> None:
    """M-08/M-09: discover probes with a version too; an unsupported one is -32022 listing what is supported."""
    msg = error_of(make(), modern_req(1, "server/discover", version="2030-01-01"))
    assert msg["error"]["code"] == -32022
    assert msg["error"]["data"]["supported"] == [MODERN]


def test_discover_without_meta_before_initialize_is_an_error_T_STDIO_15() -> None:
    """T-STDIO-15/M-04: a probe without modern _meta is not a DiscoverResult (the client falls back to legacy)."""
    msg = error_of(make(), req(1, "server/discover"))
    assert "result" not in msg
    assert msg["error"]["code"] == -32602


# -- capability / serverInfo gating per revision (L-04, L-14) ------------------------------------------


def test_capabilities_2024_11_05_drop_completions_and_tasks_L14() -> None:
    """L-14: completions exist from 2025-03-26 and tasks only on 2025-11-25."""
    caps = initialize(make(), "2024-11-05")["capabilities"]
    assert "completions" not in caps and "tasks" not in caps
    assert caps["tools"] == {"listChanged": False}
    assert caps["resources"] == {"subscribe": True, "listChanged": False}


def test_capabilities_2025_03_26_have_completions_not_tasks_L14() -> None:
    """L-14: completions from 2025-03-26; no tasks before 2025-11-25."""
    caps = initialize(make(), "2025-03-26")["capabilities"]
    assert "completions" in caps and "tasks" not in caps


def test_capabilities_2025_11_25_have_tasks_L14() -> None:
    """L-14: tasks capability appears on 2025-11-25."""
    caps = initialize(make(), "2025-11-25")["capabilities"]
    assert caps["tasks"] == {"list": {}}
    assert "completions" in caps


def test_capabilities_modern_drop_resource_subscribe_and_tasks_M20() -> None:
    """M-20/F-RES-03: no resources.subscribe on 2026-07-28 (subscriptions/listen instead); tasks is an extension."""
    caps = reply(make(), modern_req(1, "server/discover"))["result"]["capabilities"]
    assert caps["resources"] == {"listChanged": False}
    assert "tasks" not in caps
    assert "completions" in caps


def test_capability_gating_does_not_mutate_the_servers_capabilities_L14() -> None:
    """L-14: per-revision views are copies; the server's own capabilities stay intact."""
    conn = make()
    reply(conn, modern_req(1, "server/discover"))
    initialize(conn, "2024-11-05")
    assert conn.capabilities["resources"] == {"subscribe": True, "listChanged": False}
    assert "completions" in conn.capabilities and "tasks" in conn.capabilities


@pytest.mark.parametrize(("version", "title", "icons"), [
    ("2024-11-05", False, False), ("2025-03-26", False, False), ("2025-06-18", True, False), ("2025-11-25", True, True),
])
def test_server_info_fields_per_revision_L03_L04(version: str, title: bool, icons: bool) -> None:
    """L-03/L-04: serverInfo title from 25.06; description/icons/websiteUrl from 25.11."""
    info = initialize(make(), version)["serverInfo"]
    assert info["name"] == "srv" and info["version"] == "1.2.3"
    assert ("title" in info) is title
    for key in ("description", "icons", "websiteUrl"):
        assert (key in info) is icons


# -- J-05 duplicate in-flight ids ------------------------------------------------------------------------


def test_duplicate_inflight_id_is_rejected_J05() -> None:
    """J-05: an id equal to a request still outstanding is -32600; after completion it may be reused."""
    conn = make()
    first = admitted(conn, modern_req(1, "tools/call", {"name": "sleep"}))
    dup = error_of(conn, modern_req(1, "tools/list"))
    assert dup["error"]["code"] == -32600
    assert dup["id"] == 1
    assert conn.inflight == {1: False}  # the original is still the one in flight
    assert conn.finish(first.id) is True
    again = admitted(conn, modern_req(1, "tools/list"))
    assert again.method == "tools/list"


def test_duplicate_inflight_id_legacy_J04_J05() -> None:
    """J-04/J-05: a legacy client reusing an outstanding id is rejected too."""
    conn = make()
    initialize(conn, "2025-11-25")
    admitted(conn, req("a", "tools/call"))
    assert error_of(conn, req("a", "tools/call"))["error"]["code"] == -32600


def test_string_and_integer_ids_are_distinct_J03_J05() -> None:
    """J-03/J-05: "1" and 1 are different ids; both may be in flight."""
    conn = make()
    admitted(conn, modern_req(1, "tools/list"))
    admitted(conn, modern_req("1", "tools/list"))
    assert set(conn.inflight) == {1, "1"}


# -- cancellation bookkeeping (U-02, U-04, U-05) -----------------------------------------------------------


def test_cancel_of_inflight_request_U01_U04() -> None:
    """U-01/U-04: a cancel for a running request is reported; finish() then says: send nothing."""
    conn = make()
    admitted(conn, modern_req(7, "tools/call"))
    ev = conn.receive(note("notifications/cancelled", {"requestId": 7, "reason": "user"}))
    assert isinstance(ev, CancelRequested)
    assert ev.request_id == 7
    assert ev.reason == "user"
    assert conn.finish(7) is False
    assert 7 not in conn.inflight


def test_finish_without_cancel_returns_true_U04() -> None:
    """U-04: a request that was not cancelled is answered normally."""
    conn = make()
    admitted(conn, modern_req("r", "tools/call"))
    assert conn.finish("r") is True
    assert conn.inflight == {}


def test_cancel_of_unknown_id_is_ignored_U02_U04() -> None:
    """U-02/U-04: a cancel for an id that is not running is ignored silently (no event, no reply)."""
    conn = make()
    admitted(conn, modern_req(1, "tools/call"))
    assert conn.receive(note("notifications/cancelled", {"requestId": 999})) is None
    assert conn.receive(note("notifications/cancelled", {"requestId": "1"})) is None  # "1" != 1
    assert conn.finish(1) is True


def test_cancel_after_completion_is_ignored_U04_U05() -> None:
    """U-04/U-05: the cancel-vs-complete race: a cancel arriving after finish() is ignored."""
    conn = make()
    admitted(conn, modern_req(3, "tools/call"))
    assert conn.finish(3) is True
    assert conn.receive(note("notifications/cancelled", {"requestId": 3})) is None


def test_shared_connection_hands_on_cancels_of_requests_running_elsewhere_U04() -> None:
    """U-04 across replicas: on a shared session a cancel for an id not running here is reported
    (the transport passes it to the replica running it) without marking anything here; malformed
    ids are still ignored, and a local request is cancelled as before."""
    conn = make()
    conn.shared = True
    ev = conn.receive(note("notifications/cancelled", {"requestId": 999, "reason": "user"}))
    assert isinstance(ev, CancelRequested) and ev.request_id == 999 and ev.reason == "user"
    assert conn.inflight == {}
    assert conn.receive(note("notifications/cancelled", {"requestId": True})) is None
    admitted(conn, modern_req(5, "tools/call"))
    assert isinstance(conn.receive(note("notifications/cancelled", {"requestId": 5})), CancelRequested)
    assert conn.finish(5) is False


@pytest.mark.parametrize("params", [
    {}, {"requestId": None}, {"requestId": True}, {"requestId": [1]}, {"requestId": 1.0}, {"requestId": {"id": 1}},
])
def test_malformed_cancel_is_ignored_silently_U04(params: dict[str, Any]) -> None:
    """U-04: invalid/malformed cancellations are ignored silently; the request keeps running."""
    conn = make()
    admitted(conn, modern_req(1, "tools/call"))
    assert conn.receive(note("notifications/cancelled", params)) is None
    assert conn.inflight == {1: False}
    assert conn.finish(1) is True


def test_cancel_with_non_string_reason_U01() -> None:
    """U-01: reason is an optional string; anything else is dropped, the cancel still counts."""
    conn = make()
    admitted(conn, modern_req(1, "tools/call"))
    ev = conn.receive(note("notifications/cancelled", {"requestId": 1, "reason": 42}))
    assert isinstance(ev, CancelRequested) and ev.reason is None


def test_finish_of_unknown_id_is_true() -> None:
    """U-04: finish() for an id never admitted does not pretend it was cancelled."""
    assert make().finish("ghost") is True


def test_cancel_of_initialize_has_no_effect_L12_U02() -> None:
    """L-12/U-02: initialize is answered synchronously and never in flight, so a cancel for it is ignored."""
    conn = make()
    reply(conn, req(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}))
    assert conn.receive(note("notifications/cancelled", {"requestId": 0})) is None
    assert conn.revision is REVISIONS["2025-11-25"]


# -- notifications (J-09) ---------------------------------------------------------------------------------


def test_other_notifications_are_events_never_replies_J09() -> None:
    """J-09: notifications are passed on as events; the connection never answers one."""
    conn = make()
    ev = conn.receive(note("notifications/roots/list_changed", {"x": 1}))
    assert isinstance(ev, NotificationReceived)
    assert ev.method == "notifications/roots/list_changed"
    assert ev.params == {"x": 1}
    out = conn.receive_data(b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"nope"}}')
    assert not any(isinstance(e, Reply) for e in out.events)


# -- server->client requests and responses (M-10, U-05, J-04) ----------------------------------------------


def test_server_requests_need_a_legacy_session_M10() -> None:
    """M-10: no server->client requests before a legacy handshake."""
    with pytest.raises(LocalProtocolError):
        make().start_request("roots/list")


def test_outgoing_ids_unique_and_responses_correlated_J04_U05() -> None:
    """J-04: outgoing ids never repeat; U-05: responses correlate once, late/unknown ones are ignored."""
    conn = make()
    initialize(conn, "2025-11-25")
    a = conn.start_request("roots/list")
    b = conn.start_request("sampling/createMessage")
    assert a != b
    ev = conn.receive({"jsonrpc": "2.0", "id": b, "result": {"role": "assistant"}})
    assert isinstance(ev, ResponseReceived)
    assert ev.id == b and ev.method == "sampling/createMessage" and ev.result == {"role": "assistant"}
    assert conn.receive({"jsonrpc": "2.0", "id": b, "result": {}}) is None  # duplicate/late
    assert conn.receive({"jsonrpc": "2.0", "id": 12345, "result": {}}) is None  # unknown
    err = conn.receive({"jsonrpc": "2.0", "id": a, "error": {"code": -1, "message": "rejected"}})
    assert isinstance(err, ResponseReceived) and err.error == {"code": -1, "message": "rejected"}
    c = conn.start_request("roots/list")
    assert c not in (a, b)  # J-04: not reused even after completion
