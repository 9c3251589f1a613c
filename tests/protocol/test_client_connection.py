"""``ClientConnection``: accepting initialize / discover answers and building modern _meta.

Covers L-03, L-04, L-06, M-02, M-03, M-09, T-STDIO-15. Pure unit tests: no event loop.
"""

from __future__ import annotations

from typing import Any

import pytest

from anyport._exceptions import LocalProtocolError
from anyport.protocol import (
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    META_SERVER_INFO,
    REVISIONS,
    ClientConnection,
    Reply,
    ServerConnection,
)

INFO = {"name": "cli", "version": "0.9"}


def make(**kw: Any) -> ClientConnection:
    return ClientConnection(client_info=dict(INFO), **kw)


def init_result(version: Any = "2025-11-25", **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": True}},
        "serverInfo": {"name": "srv", "version": "1"},
    }
    r.update(extra)
    return r


def test_initialize_params_L03() -> None:
    """L-03: initialize params carry protocolVersion, capabilities and clientInfo."""
    conn = make(capabilities={"roots": {"listChanged": True}})
    assert conn.initialize_params("2025-11-25") == {
        "protocolVersion": "2025-11-25",
        "capabilities": {"roots": {"listChanged": True}},
        "clientInfo": INFO,
    }


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
def test_accept_initialize_with_supported_version_L04(version: str) -> None:
    """L-04: the server's protocolVersion, capabilities, serverInfo and instructions are taken over."""
    conn = make()
    rev = conn.accept_initialize(init_result(version, instructions="be nice"))
    assert rev is REVISIONS[version]
    assert conn.revision is rev
    assert conn.server_capabilities == {"tools": {"listChanged": True}}
    assert conn.server_info == {"name": "srv", "version": "1"}
    assert conn.instructions == "be nice"


@pytest.mark.parametrize("version", ["2099-01-01", "1.0", "2026-07-28"])
def test_unsupported_server_version_is_refused_L06(version: str) -> None:
    """L-06: a version the client does not support (or a modern one in a legacy handshake) ends the connection."""
    conn = make()
    with pytest.raises(LocalProtocolError):
        conn.accept_initialize(init_result(version))
    assert conn.revision is None


def test_version_outside_the_clients_own_list_is_refused_L06() -> None:
    """L-06: acceptability is the client's list, not the library's."""
    conn = make()
    with pytest.raises(LocalProtocolError):
        conn.accept_initialize(init_result("2024-11-05"), acceptable=("2025-06-18", "2025-11-25"))
    assert conn.accept_initialize(init_result("2025-06-18"), acceptable=("2025-06-18", "2025-11-25")).version == "2025-06-18"


@pytest.mark.parametrize("result", [None, [], "x", {}, {"protocolVersion": 20251125}, {"protocolVersion": None}])
def test_initialize_result_without_version_is_refused_L04(result: Any) -> None:
    """L-04: a result without a string protocolVersion is a protocol error."""
    with pytest.raises(LocalProtocolError):
        make().accept_initialize(result)


def test_initialize_result_with_bad_optional_fields_is_tolerated_L04() -> None:
    """L-04: malformed optional parts (capabilities, serverInfo, instructions) degrade to empty, not crash."""
    conn = make()
    conn.accept_initialize({"protocolVersion": "2025-03-26", "capabilities": "x", "serverInfo": 5, "instructions": 7})
    assert conn.server_capabilities == {}
    assert conn.server_info == {}
    assert conn.instructions is None


def _discover(**extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resultType": "complete",
        "supportedVersions": ["2026-07-28", "2025-11-25"],
        "capabilities": {"prompts": {}},
        "ttlMs": 0,
        "cacheScope": "public",
        "_meta": {META_SERVER_INFO: {"name": "modern-srv", "version": "2"}},
    }
    r.update(extra)
    return r


def test_accept_discover_picks_modern_version_and_reads_server_info_from_meta_M09_M07() -> None:
    """M-09/M-07: discover gives supportedVersions and capabilities; serverInfo may be only in _meta."""
    conn = make()
    rev = conn.accept_discover(_discover(instructions="hello"))
    assert rev is REVISIONS["2026-07-28"]
    assert conn.server_capabilities == {"prompts": {}}
    assert conn.server_info == {"name": "modern-srv", "version": "2"}
    assert conn.instructions == "hello"


@pytest.mark.parametrize("offered", [["2025-11-25", "2025-06-18"], [], "2026-07-28", None, [2026]])
def test_accept_discover_without_mutual_modern_version_fails_M08_T_STDIO_15(offered: Any) -> None:
    """M-08/T-STDIO-15: no mutually supported modern version -> an error, never a silent pick."""
    conn = make()
    with pytest.raises(LocalProtocolError):
        conn.accept_discover(_discover(supportedVersions=offered))
    assert conn.revision is None


@pytest.mark.parametrize("result", [None, [], "x"])
def test_accept_discover_rejects_non_object_M09(result: Any) -> None:
    """M-09: a DiscoverResult is an object."""
    with pytest.raises(LocalProtocolError):
        make().accept_discover(result)


def test_modern_meta_carries_required_fields_M02_M03() -> None:
    """M-02/M-03: every modern request names version and capabilities, plus clientInfo; logLevel when set."""
    conn = make(capabilities={"elicitation": {}})
    m = conn.modern_meta()
    assert m[META_PROTOCOL_VERSION] == "2026-07-28"
    assert m[META_CLIENT_CAPABILITIES] == {"elicitation": {}}
    assert m[META_CLIENT_INFO] == INFO
    assert META_LOG_LEVEL not in m
    conn.log_level = "info"
    assert conn.modern_meta("2026-07-28")[META_LOG_LEVEL] == "info"


def test_client_meta_is_accepted_by_server_connection_M02_M09() -> None:
    """M-02/M-09: the client's _meta drives a real ServerConnection discover, and the client accepts the answer."""
    client = make(capabilities={"sampling": {}})
    server = ServerConnection(server_info={"name": "s", "version": "3"}, capabilities={"tools": {}}, instructions="hi")
    ev = server.receive({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": client.modern_meta()}})
    assert isinstance(ev, Reply)
    rev = client.accept_discover(ev.message["result"])
    assert rev.version == "2026-07-28"
    assert client.server_info == {"name": "s", "version": "3"}
    assert client.server_capabilities == {"tools": {}}
    assert client.instructions == "hi"


def test_legacy_round_trip_with_server_connection_L05_L06() -> None:
    """L-05/L-06: a client offering an unknown version accepts the server's supported counter-offer."""
    client = make()
    server = ServerConnection(server_info={"name": "s", "version": "3"}, capabilities={})
    ev = server.receive({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": client.initialize_params("2030-01-01")})
    assert isinstance(ev, Reply)
    rev = client.accept_initialize(ev.message["result"])
    assert rev.version == "2025-11-25"
    assert client.server_info["name"] == "s"
