"""Tokens after the first grant: refresh with rotation, DPoP, no leak, grants without a person.

Requirement IDs: /work/shared/spec/DIGEST.md §14 (A-*), RFC 9449 for DPoP.
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import httpx
import pytest

from anyport import Client, OAuthTokenError
from anyport.oauth import ClientCredentials, MemoryTokenStore, OAuth
from tests.oauth._servers import Protected, ToyAS, s256
from tests.transports._http_helpers import running

Servers = tuple[ToyAS, Protected]


def oauth(**kw: Any) -> OAuth:
    kw.setdefault("store", MemoryTokenStore())
    return OAuth(authorize="follow", **kw)


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in token.split(".")[:2])
    return head, body


async def test_refresh_rotates_and_sends_resource(servers: Servers) -> None:
    """A-23 (resource on refresh), A-35 (rotation: the old refresh token is spent, the new one stored)."""
    auth, resource = servers
    store = MemoryTokenStore()
    flow = oauth(store=store)
    async with Client(resource.url, auth=flow, era="legacy", timeout=10) as c:
        await c.list_tools()
        auth.live.clear()  # the access token is revoked; its refresh token still works
        await c.list_tools()
    (refresh,) = [s for s in auth.paths("/token") if s.form["grant_type"] == "refresh_token"]
    assert refresh.form["resource"] == resource.url and refresh.form["refresh_token"] == "rt-3"
    stored = await store.get(f"tokens {auth.issuer} {resource.url}")
    assert stored is not None and stored["refresh_token"] == "rt-4" and stored["access_token"] == "at-4"
    assert "rt-3" not in auth.refresh  # spent: a replay would fail
    assert len(auth.paths("/authorize")) == 1  # no second authorization


async def test_a_dead_refresh_token_falls_back_to_authorization(servers: Servers) -> None:
    """A refresh refused with invalid_grant leads to a new authorization, once (bounded)."""
    auth, resource = servers
    async with Client(resource.url, auth=oauth(), era="legacy", timeout=10) as c:
        await c.list_tools()
        auth.live.clear()
        auth.refresh.clear()
        await c.list_tools()
    assert len(auth.paths("/authorize")) == 2


async def test_stored_tokens_serve_a_new_process(servers: Servers) -> None:
    """The token store: a second OAuth object (another process) sends the stored token on its first request."""
    auth, resource = servers
    store = MemoryTokenStore()
    async with Client(resource.url, auth=oauth(store=store), era="legacy", timeout=10) as c:
        await c.list_tools()
    resource.seen.clear()
    async with Client(resource.url, auth=oauth(store=store), era="legacy", timeout=10) as c:
        await c.list_tools()
    first = next(s for s in resource.seen if s.path == "/mcp")
    assert first.headers["authorization"] == "Bearer at-3"
    assert len(auth.paths("/authorize")) == 1


async def test_dpop_bound_token_and_proof_contents(servers: Servers) -> None:
    """RFC 9449 §4.2/§5/§7.1: a proof at the token request; the token used with the DPoP scheme and a
    fresh proof per request: typ dpop+jwt, public jwk only, htm/htu of the request, ath of the token,
    a new jti each time; the resource's nonce challenge answered once (§9)."""
    auth, resource = servers
    auth.dpop = True
    auth.dpop_nonce = "as-nonce"
    resource.rs_nonce = "rs-nonce"
    async with Client(resource.url, auth=oauth(), era="legacy", timeout=10) as c:
        await c.call_tool("whoami", {})
    tokens = [s for s in auth.paths("/token") if "dpop" in s.headers]
    assert len(tokens) == 2  # the first without the nonce (400 use_dpop_nonce), the retry with it
    assert jwt_parts(tokens[1].headers["dpop"])[1]["nonce"] == "as-nonce"
    authed = [s for s in resource.seen if s.path == "/mcp" and "authorization" in s.headers]
    assert authed and all(s.headers["authorization"].startswith("DPoP at-") for s in authed)
    jtis = set()
    for s in authed:
        head, claims = jwt_parts(s.headers["dpop"])
        assert head["typ"] == "dpop+jwt" and head["alg"] == "ES256" and "d" not in head["jwk"]
        assert claims["htm"] == s.method and claims["htu"] == resource.url
        assert claims["ath"] == s256(s.headers["authorization"].split(" ", 1)[1])
        jtis.add(claims["jti"])
    assert len(jtis) == len(authed)
    nonced = [jwt_parts(s.headers["dpop"])[1].get("nonce") for s in authed]
    assert nonced[0] is None and nonced[1:] and all(n == "rs-nonce" for n in nonced[1:])


async def test_no_token_for_another_origin(servers: Servers) -> None:
    """A-32/A-33: the same auth object, holding a token, sends none to another origin."""
    _, resource = servers
    seen: list[dict[str, str]] = []

    async def other(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    flow = oauth()
    async with Client(resource.url, auth=flow, era="legacy", timeout=10) as c:
        await c.list_tools()
    with running(other) as other_base:
        async with httpx.AsyncClient(auth=flow, timeout=10) as http:
            r = await http.get(f"{other_base}/anything")
    assert r.status_code == 200 and seen and "authorization" not in seen[0]


async def test_client_credentials_with_a_secret(servers: Servers) -> None:
    """OAuth 2.1 §4.2 with client_secret_basic; resource and scope from the challenge (A-23, A-26)."""
    auth, resource = servers
    auth.secrets["svc"] = "pw"
    resource.scope_in_challenge = "mcp:read"
    async with Client(resource.url, auth=ClientCredentials("svc", client_secret="pw"), timeout=10) as c:
        await c.list_tools()
    (token,) = auth.paths("/token")
    assert token.form["grant_type"] == "client_credentials" and token.form["resource"] == resource.url
    assert token.form["scope"] == "mcp:read" and token.headers["authorization"].startswith("Basic ")
    assert not auth.paths("/authorize") and not auth.paths("/register")


async def test_client_credentials_with_private_key_jwt(servers: Servers) -> None:
    """RFC 7523 §2.2: a signed assertion (iss = sub = client id, aud = issuer), verified by the AS."""
    from joserfc.jwk import ECKey

    auth, resource = servers
    key = ECKey.generate_key("P-256")
    auth.client_keys["svc"] = ECKey.import_key(key.as_dict(private=False))
    pem = key.as_pem(private=True).decode()
    async with Client(resource.url, auth=ClientCredentials("svc", private_key_pem=pem), timeout=10) as c:
        await c.list_tools()
    (token,) = auth.paths("/token")
    assert token.form["client_assertion_type"].endswith("jwt-bearer")


async def test_a_refused_grant_is_a_typed_error(servers: Servers) -> None:
    """A wrong secret: OAuthTokenError carrying the AS's error code, no retry."""
    auth, resource = servers
    auth.secrets["svc"] = "pw"
    with pytest.raises(OAuthTokenError, match="invalid_client") as info:
        async with Client(resource.url, auth=ClientCredentials("svc", client_secret="nope"), timeout=10):
            pass
    assert info.value.error == "invalid_client" and info.value.status == 401
    assert len(auth.paths("/token")) == 1


async def test_authorization_server_migration(servers: Servers) -> None:
    """A-10/A-19: the PRM now names another AS: register there anew; neither the old client id nor
    the old refresh token is shown to the new AS; the same holds for a new process with the store."""
    as1, resource = servers
    as2 = ToyAS(_n=itertools.count(100))  # AS2's ids and tokens: dcr-100.., at-1xx, rt-1xx
    store = MemoryTokenStore()
    with running(as2) as as2_base:
        as2.base = as2_base
        async with Client(resource.url, auth=oauth(store=store), era="legacy", timeout=10) as c:
            await c.list_tools()
            resource.auth = as2  # the server moves: AS1's tokens are no longer accepted
            await c.list_tools()
        assert len(as2.paths("/register")) == 1
        client_ids = {s.query.get("client_id") for s in as2.paths("/authorize")}
        client_ids |= {s.form.get("client_id") for s in as2.paths("/token")}
        assert client_ids == {"dcr-100"}  # never AS1's dcr-1
        as2.live.clear()
        async with Client(resource.url, auth=oauth(store=store), era="legacy", timeout=10) as c:
            await c.list_tools()  # a new process: the stored AS2 refresh token goes to AS2 only
    refreshes = [s.form["refresh_token"] for s in as2.paths("/token") if s.form.get("grant_type") == "refresh_token"]
    assert refreshes and all(int(t.split("-")[1]) >= 100 for t in refreshes)  # AS2's own refresh tokens
    assert not [s for s in as1.paths("/token") if s.form.get("grant_type") == "refresh_token"]


async def test_stored_tokens_of_a_former_as_stay_with_it(servers: Servers) -> None:
    """A-19: a new process loads tokens from AS1, but the server now names AS2: AS1's refresh token
    is not sent to AS2; the client registers and authorizes there."""
    _, resource = servers
    as2 = ToyAS(_n=itertools.count(100))
    store = MemoryTokenStore()
    with running(as2) as as2_base:
        as2.base = as2_base
        async with Client(resource.url, auth=oauth(store=store), era="legacy", timeout=10) as c:
            await c.list_tools()
        resource.auth = as2
        async with Client(resource.url, auth=oauth(store=store), era="legacy", timeout=10) as c:
            await c.list_tools()
    assert not [s for s in as2.paths("/token") if s.form.get("grant_type") == "refresh_token"]
    assert len(as2.paths("/register")) == 1 and len(as2.paths("/authorize")) == 1


async def test_an_expiring_token_is_refreshed_before_it_is_sent(servers: Servers) -> None:
    """Refresh ahead of expiry (no 401 needed): a token within 30 s of its end is refreshed first,
    with resource (A-23) and rotation."""
    auth, resource = servers
    auth.expires_in = 5  # always "about to expire" for the client
    async with Client(resource.url, auth=oauth(), era="legacy", timeout=10) as c:
        await c.list_tools()
        resource.seen.clear()
        await c.list_tools()
    refreshes = [s for s in auth.paths("/token") if s.form["grant_type"] == "refresh_token"]
    assert refreshes and all(s.form["resource"] == resource.url for s in refreshes)
    assert len(auth.paths("/authorize")) == 1
    assert [s for s in resource.seen if s.path == "/mcp"]  # requests went on ...
    assert all("authorization" in s.headers for s in resource.seen if s.path == "/mcp")  # ... each with a token
