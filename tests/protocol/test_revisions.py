"""The revision table and legacy version negotiation (J-08, J-11, J-13, L-05, M-12, F-RES-04, U-18).

Pure unit tests: no event loop.
"""

from __future__ import annotations

import pytest

from anyport.protocol import (
    LATEST_LEGACY_VERSION,
    LATEST_VERSION,
    LEGACY_VERSIONS,
    MODERN_VERSIONS,
    REVISIONS,
    SUPPORTED_VERSIONS,
    negotiate_legacy,
    revision,
)

ALL = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28")


def test_known_revisions_and_eras() -> None:
    """L-01/M-01 (info): the five published revisions; 24..25.11 are legacy, 26 is modern."""
    assert SUPPORTED_VERSIONS == ALL
    assert LEGACY_VERSIONS == ALL[:4]
    assert MODERN_VERSIONS == ("2026-07-28",)
    assert LATEST_LEGACY_VERSION == "2025-11-25"
    assert LATEST_VERSION == "2026-07-28"
    for v in LEGACY_VERSIONS:
        assert not REVISIONS[v].modern
    assert REVISIONS["2026-07-28"].modern


def test_unknown_revision_lookup_is_none() -> None:
    """L-05: an unknown version string has no revision entry (never treated as supported)."""
    assert revision("2099-01-01") is None
    assert revision("2025-11-25") is REVISIONS["2025-11-25"]


@pytest.mark.parametrize("version", ALL)
def test_batching_only_on_2025_03_26_J11_J13(version: str) -> None:
    """J-11: batches accepted only on 2025-03-26; J-13: 24 and >=25.06 have no batching."""
    assert REVISIONS[version].batching is (version == "2025-03-26")


@pytest.mark.parametrize("version", ALL)
def test_error_id_optional_from_2025_11_25_J08(version: str) -> None:
    """J-08: an error may omit an unreadable id only from 2025-11-25 on; earlier schemas require it."""
    assert REVISIONS[version].error_id_optional is (version in ("2025-11-25", "2026-07-28"))


@pytest.mark.parametrize("version", ALL)
def test_resource_not_found_code_F_RES_04(version: str) -> None:
    """F-RES-04: -32002 on legacy revisions, -32602 on 2026-07-28."""
    expected = -32602 if version == "2026-07-28" else -32002
    assert REVISIONS[version].resource_not_found_code == expected


@pytest.mark.parametrize("version", ALL)
def test_ping_and_server_requests_removed_on_modern_L18_M10(version: str) -> None:
    """L-18/M-10: ping and server->client requests exist only in the legacy era."""
    rev = REVISIONS[version]
    assert rev.ping is (not rev.modern)
    assert rev.server_requests is (not rev.modern)


@pytest.mark.parametrize("version", ALL)
def test_result_type_and_cache_hints_only_on_modern_J16_U18(version: str) -> None:
    """J-16/U-18: resultType and caching hints are 2026-07-28 features."""
    assert REVISIONS[version].result_type is (version == "2026-07-28")


@pytest.mark.parametrize("version", ALL)
def test_version_header_from_2025_06_18_L13(version: str) -> None:
    """L-13: MCP-Protocol-Version header from 2025-06-18 on."""
    assert REVISIONS[version].version_header is (version >= "2025-06-18")


@pytest.mark.parametrize("version", ALL)
def test_feature_gates_by_revision_L14_F_TOOL_06(version: str) -> None:
    """L-14/F-TOOL-06: completions/annotations >=25.03, structured output & titles >=25.06, icons >=25.11."""
    rev = REVISIONS[version]
    assert rev.annotations is (version >= "2025-03-26")
    assert rev.progress_message is (version >= "2025-03-26")
    assert rev.structured_output is (version >= "2025-06-18")
    assert rev.elicitation is (version >= "2025-06-18")
    assert rev.titles is (version >= "2025-06-18")
    assert rev.icons is (version >= "2025-11-25")
    assert rev.priming_event is (version == "2025-11-25")


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
def test_supported_version_is_echoed_L05(version: str) -> None:
    """L-05: a requested version the server supports is echoed."""
    assert negotiate_legacy(version) == version


@pytest.mark.parametrize("requested", ["2099-01-01", "1.0", "", "2025-11-26"])
def test_unknown_version_gets_counter_offer_L05(requested: str) -> None:
    """L-05: an unknown version is never echoed; the newest supported legacy version is offered."""
    assert negotiate_legacy(requested) == "2025-11-25"


@pytest.mark.parametrize("requested", [None, 20250326, ["2025-03-26"]])
def test_non_string_version_gets_counter_offer_L05(requested: object) -> None:
    """L-05: non-string input never matches; answer is still a supported version."""
    assert negotiate_legacy(requested) == "2025-11-25"


def test_initialize_never_negotiates_the_modern_version_M12() -> None:
    """M-12/L-05: initialize selects legacy semantics, so 2026-07-28 is answered with a legacy counter-offer."""
    assert negotiate_legacy("2026-07-28") == "2025-11-25"


def test_counter_offer_respects_a_restricted_supported_list_L05() -> None:
    """L-05: the counter-offer is the newest version *this server* supports (SHOULD be its newest)."""
    supported = ("2024-11-05", "2025-03-26")
    assert negotiate_legacy("2025-11-25", supported) == "2025-03-26"
    assert negotiate_legacy("2024-11-05", supported) == "2024-11-05"
