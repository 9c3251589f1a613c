"""The authorization-code flow end to end: anyport.Client -> a protected anyport server -> a toy AS.

Every test names the requirement IDs of /work/shared/spec/DIGEST.md §14 it checks.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from anyport import (
    AuthRequiredError,
    Client,
    InsufficientScopeError,
    OAuthDiscoveryError,
    OAuthRegistrationError,
    OAuthResponseError,
)
from anyport.oauth import MemoryTokenStore, OAuth
from tests.oauth._servers import Protected, ToyAS, s256

Servers = tuple[ToyAS, Protected]


def oauth(**kw: Any) -> OAuth:
    kw.setdefault("store", MemoryTokenStore())
    return OAuth(authorize="follow", **kw)


async def call(resource: Protected, auth: Any, era: str = "legacy") -> str:
    async with Client(resource.url, auth=auth, era=era, timeout=10) as c:
        result = await c.call_tool("whoami", {})
        return str(result.content[0]["text"])


async def test_full_flow_discovers_registers_and_sends_the_token_everywhere(servers: Servers) -> None:
    """A-08 (header URL first), A-12, A-14 (DCR), A-17 (application_type), A-20 (PKCE S256),
    A-23 (resource on both requests), A-30 (Bearer on every request)."""
    auth, resource = servers
    assert await call(resource, oauth()) == "hello"
    prm = [s.path for s in resource.seen if s.path.startswith("/.well-known")]
    assert prm == ["/.well-known/oauth-protected-resource/mcp"]  # the header's URL, nothing else
    assert [s.path for s in auth.seen][:1] == ["/.well-known/oauth-authorization-server"]
    (reg,) = auth.paths("/register")
    assert reg.form["application_type"] == "native" and "refresh_token" in reg.form["grant_types"]
    (authz,) = auth.paths("/authorize")
    (token,) = auth.paths("/token")
    assert authz.query["code_challenge_method"] == "S256"
    assert s256(token.form["code_verifier"]) == authz.query["code_challenge"]
    assert authz.query["resource"] == token.form["resource"] == resource.url
    mcp = [s for s in resource.seen if s.path == "/mcp"]
    assert mcp[0].headers.get("authorization") is None  # the first try, before any 401
    assert all(s.headers["authorization"].startswith("Bearer at-") for s in mcp[1:])
    assert {s.method for s in mcp[1:]} >= {"POST", "DELETE"}


async def test_without_the_header_path_inserted_then_root(servers: Servers) -> None:
    """A-08: no resource_metadata in the challenge -> path-inserted well-known URL, then the root."""
    auth, resource = servers
    resource.prm_in_header, resource.prm_at = False, "root"
    resource.prm_resource = resource.base  # a root PRM names the whole origin (A-09 prefix rule)
    assert await call(resource, oauth()) == "hello"
    prm = [s.path for s in resource.seen if s.path.startswith("/.well-known")]
    assert prm == ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]
    assert auth.paths("/authorize")[0].query["resource"] == resource.base  # exactly as the PRM says


async def test_issuer_with_a_path_uses_the_path_aware_order(servers: Servers) -> None:
    """A-12: issuer https://as/t1 -> oauth-authorization-server/t1, openid-configuration/t1,
    /t1/.well-known/openid-configuration (here the third answers)."""
    auth, resource = servers
    auth.issuer_path, auth.metadata_path = "/t1", "/t1/.well-known/openid-configuration"
    assert await call(resource, oauth()) == "hello"
    probes = [s.path for s in auth.seen if ".well-known" in s.path]
    assert probes == [
        "/.well-known/oauth-authorization-server/t1",
        "/.well-known/openid-configuration/t1",
        "/t1/.well-known/openid-configuration",
    ]


async def test_a_wrong_iss_is_refused_before_the_token_request(servers: Servers) -> None:
    """A-22: iss compared by exact string; a mismatch stops the flow (no token request)."""
    auth, resource = servers
    auth.iss_mode = "wrong"
    with pytest.raises(OAuthResponseError, match="issuer"):
        await call(resource, oauth())
    assert auth.paths("/authorize") and not auth.paths("/token")


async def test_a_missing_iss_is_refused_when_advertised(servers: Servers) -> None:
    """A-22: authorization_response_iss_parameter_supported and no iss -> refused."""
    auth, resource = servers
    auth.iss_mode = "omit"
    with pytest.raises(OAuthResponseError, match="promises an iss"):
        await call(resource, oauth())
    assert not auth.paths("/token")


async def test_a_missing_iss_is_fine_when_not_advertised(servers: Servers) -> None:
    """A-22: no advertisement, no iss -> proceed."""
    auth, resource = servers
    auth.iss_mode, auth.iss_advertised = "omit", False
    assert await call(resource, oauth()) == "hello"


async def test_prm_for_another_resource_is_refused(servers: Servers) -> None:
    """A-09: the PRM resource must name the server we talk to; no authorization request is made."""
    auth, resource = servers
    resource.prm_resource = "https://evil.example/mcp"
    with pytest.raises(OAuthDiscoveryError, match="A-09"):
        await call(resource, oauth())
    assert not auth.paths("/authorize") and not auth.paths("/register")


async def test_metadata_naming_another_issuer_is_discarded(servers: Servers) -> None:
    """A-13: the metadata's issuer must be the one we asked about."""
    auth, resource = servers
    auth.metadata_issuer = "https://attacker.example"
    with pytest.raises(OAuthDiscoveryError, match="A-13"):
        await call(resource, oauth())
    assert not auth.paths("/register") and not auth.paths("/authorize")


async def test_a_401_without_auth_is_a_clear_error(servers: Servers) -> None:
    """A-34: 401 = authentication; without auth= the client says so instead of hanging or
    trying the old HTTP+SSE transport (T-BC-03)."""
    _, resource = servers
    for era in ("legacy", "modern", "auto"):
        with pytest.raises(AuthRequiredError, match=r"auth=anyport\.oauth\.OAuth") as info:
            async with Client(resource.url, era=era, timeout=10):
                pass
        assert info.value.www_authenticate is not None and "resource_metadata" in info.value.www_authenticate
    assert not [s for s in resource.seen if s.method == "GET" and s.path == "/mcp"]  # no SSE fallback probe


async def test_modern_era_too(servers: Servers) -> None:
    """A-30 on 2026-07-28: every per-request POST carries the token."""
    _, resource = servers
    assert await call(resource, oauth(), era="modern") == "hello"


async def test_scope_selection_challenge_then_prm(servers: Servers) -> None:
    """A-26: the challenge's scope; else all PRM scopes_supported; offline_access only when the AS lists it (A-29)."""
    auth, resource = servers
    resource.scope_in_challenge = "mcp:read"
    resource.scopes_supported = ["mcp:read", "mcp:write"]
    auth.scopes_supported = ["mcp:read", "mcp:write", "offline_access"]
    await call(resource, oauth())
    assert auth.paths("/authorize")[-1].query["scope"] == "mcp:read offline_access"
    resource.scope_in_challenge = None
    auth.scopes_supported = None
    await call(resource, oauth())
    assert auth.paths("/authorize")[-1].query["scope"] == "mcp:read mcp:write"


async def test_step_up_unions_scopes_and_stops_at_the_limit(servers: Servers) -> None:
    """A-28: 403 insufficient_scope -> re-authorize with previous | challenged scopes, a bounded
    number of times; then InsufficientScopeError (the AS never grants the scope here)."""
    auth, resource = servers
    resource.scope_in_challenge = "mcp:basic"
    resource.required_scope = "mcp:admin"
    original = auth._authorize

    async def never_admin(seen: Any, send: Any) -> None:  # the AS drops mcp:admin from every grant
        granted = " ".join(s for s in seen.query.get("scope", "").split() if s != "mcp:admin")
        await original(dataclasses.replace(seen, query={**seen.query, "scope": granted}), send)

    auth._authorize = never_admin  # type: ignore[method-assign]
    with pytest.raises(InsufficientScopeError, match="mcp:admin") as info:
        await call(resource, oauth(max_step_ups=2))
    assert info.value.scopes == ("mcp:admin",)
    scopes = [s.query.get("scope") for s in auth.paths("/authorize")]
    assert scopes == ["mcp:basic", "mcp:basic mcp:admin", "mcp:basic mcp:admin"]  # 1 + 2 step-ups, then stop


async def test_step_up_succeeds_when_granted(servers: Servers) -> None:
    """A-28: one step-up, then the call goes through."""
    auth, resource = servers
    resource.scope_in_challenge = "mcp:basic"
    resource.required_scope = "mcp:write"
    assert await call(resource, oauth()) == "hello"
    assert [s.query.get("scope") for s in auth.paths("/authorize")] == ["mcp:basic", "mcp:basic mcp:write"]


async def test_pre_registered_client_skips_registration(servers: Servers) -> None:
    """A-14/A-18: pre-registered credentials first; no DCR; client_secret_basic when listed."""
    auth, resource = servers
    assert await call(resource, oauth(client_id="known", client_secret="s3cret")) == "hello"
    assert not auth.paths("/register")
    assert auth.paths("/token")[0].headers["authorization"].startswith("Basic ")


async def test_cimd_when_the_as_supports_it(servers: Servers) -> None:
    """A-14/A-15: a client metadata document URL as client_id when the AS says it supports them."""
    auth, resource = servers
    auth.cimd = True
    url = "https://client.example/metadata.json"
    assert await call(resource, oauth(client_metadata_url=url)) == "hello"
    assert not auth.paths("/register")
    assert auth.paths("/authorize")[0].query["client_id"] == url


async def test_dcr_is_stored_per_issuer_and_reused(servers: Servers) -> None:
    """A-19: the registration is kept under the issuer; a new OAuth object with the same store reuses it."""
    auth, resource = servers
    store = MemoryTokenStore()
    await call(resource, oauth(store=store))
    assert (await store.get(f"client {auth.issuer}") or {}).get("client_id") == "dcr-1"
    auth.live.clear()  # every token and refresh token revoked: the next run must authorize again
    auth.refresh.clear()
    await call(resource, oauth(store=store))
    assert len(auth.paths("/register")) == 1 and len(auth.paths("/authorize")) == 2


async def test_pre_registered_credentials_stay_with_their_issuer(servers: Servers) -> None:
    """A-19: client_id registered with another issuer -> refused before anything is sent to this AS."""
    auth, resource = servers
    flow = oauth(client_id="known", client_secret="s3cret", client_issuer="https://other-as.example")
    with pytest.raises(OAuthRegistrationError, match="A-19"):
        await call(resource, flow)
    assert not auth.paths("/authorize") and not auth.paths("/token")
    assert await call(resource, oauth(client_id="known", client_issuer=auth.issuer)) == "hello"


async def test_the_standalone_get_stream_carries_the_token(servers: Servers) -> None:
    """A-30: the legacy session's standalone SSE GET (T-HTTP-19) goes through the same auth."""
    _, resource = servers
    async with Client(resource.url, auth=oauth(), era="legacy", listen=True, timeout=10) as c:
        await c.list_tools()
        for _ in range(100):  # the listener starts in the background: wait (bounded) for its GET
            if any(s.method == "GET" and s.path == "/mcp" for s in resource.seen):
                break
            await asyncio.sleep(0.02)
    gets = [s for s in resource.seen if s.method == "GET" and s.path == "/mcp"]
    assert gets and all(s.headers["authorization"].startswith("Bearer at-") for s in gets)
