"""The pure rules: canonical URIs (A-24), well-known URLs (A-08, A-12), PRM resource match (A-09),
WWW-Authenticate parsing (A-25, A-27), PKCE S256 (A-20)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from anyport.oauth._urls import (
    as_metadata_urls,
    canonical_resource,
    parse_challenges,
    pkce_pair,
    prm_urls,
    resource_matches,
)


def test_canonical_resource_a24() -> None:
    assert canonical_resource("HTTPS://Example.COM/mcp/") == "https://example.com/mcp"
    assert canonical_resource("https://example.com/mcp#frag") == "https://example.com/mcp"
    assert canonical_resource("https://example.com") == "https://example.com"
    with pytest.raises(ValueError, match="absolute"):
        canonical_resource("/mcp")


def test_prm_urls_path_inserted_then_root_a08() -> None:
    assert prm_urls("https://h/api/mcp") == [
        "https://h/.well-known/oauth-protected-resource/api/mcp",
        "https://h/.well-known/oauth-protected-resource",
    ]
    assert prm_urls("https://h") == ["https://h/.well-known/oauth-protected-resource"]


def test_as_metadata_order_a12() -> None:
    assert as_metadata_urls("https://as/t1") == [
        "https://as/.well-known/oauth-authorization-server/t1",
        "https://as/.well-known/openid-configuration/t1",
        "https://as/t1/.well-known/openid-configuration",
    ]
    assert as_metadata_urls("https://as") == [
        "https://as/.well-known/oauth-authorization-server",
        "https://as/.well-known/openid-configuration",
    ]


def test_resource_match_a09() -> None:
    assert resource_matches("https://h/mcp", "https://h/mcp")
    assert resource_matches("https://h", "https://h/mcp")  # a root PRM names the whole origin
    assert resource_matches("https://H/mcp/", "https://h/mcp")
    assert not resource_matches("https://h/mc", "https://h/mcp")  # not a whole path segment
    assert not resource_matches("https://evil.example/mcp", "https://h/mcp")
    assert not resource_matches("http://h/mcp", "https://h/mcp")
    assert not resource_matches("https://h:8443/mcp", "https://h/mcp")


def test_www_authenticate_challenges() -> None:
    (bearer, dpop) = parse_challenges(
        'Bearer error="insufficient_scope", scope="a b", resource_metadata="https://h/x", '
        'error_description="needs, \\"more\\"", DPoP algs="ES256"'
    )
    assert bearer.scheme == "Bearer" and bearer.scopes == ("a", "b")
    assert bearer.params["error_description"] == 'needs, "more"'
    assert dpop.scheme == "DPoP" and dpop.params == {"algs": "ES256"}
    assert parse_challenges(None) == [] and parse_challenges("Bearer")[0].scopes is None


def test_pkce_s256_a20() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert pkce_pair()[0] != verifier
