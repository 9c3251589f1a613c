"""The verifiers of anyport.auth against a real JWKS / introspection server on loopback (A-31, A-33,
A-34) and a trustme CA (mTLS). Each refusal names what was wrong; good credentials yield the right
principal."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
import trustme
from joserfc import jwk

from anyport.auth import (
    JWKS,
    APIKeys,
    AuthChain,
    AuthError,
    AuthRequest,
    ClientCertificates,
    IntrospectionVerifier,
    JWTVerifier,
    new_api_key,
)
from tests.auth._issuer import Issuer, thumbprint_and_proof

RESOURCE = "https://mcp.example.com/mcp"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bearer(token: str, scheme: str = "Bearer", **extra: str) -> AuthRequest:
    headers = {b"authorization": f"{scheme} {token}".encode()}
    headers.update({k.replace("_", "-").encode(): v.encode() for k, v in extra.items()})
    return AuthRequest(headers, method="POST", url=RESOURCE, peer="127.0.0.1")


def verifier(issuer: Issuer, **kw: object) -> JWTVerifier:
    v = JWTVerifier(issuer=issuer.issuer, jwks_url=issuer.jwks_url, refresh_interval=0.0, **kw)  # type: ignore[arg-type]
    v.bind(RESOURCE)
    return v


async def refused(v: object, request: AuthRequest) -> str:
    with pytest.raises(AuthError) as info:
        await v.authenticate(request)  # type: ignore[attr-defined]
    assert info.value.status == 401
    return info.value.description


async def test_a_good_jwt_yields_its_principal(issuer: Issuer) -> None:
    """A-31: signature, iss, aud = this resource, exp; the principal carries sub, client, scopes."""
    v = verifier(issuer)
    p = await v.authenticate(bearer(issuer.token(aud=RESOURCE, scope="tools.read tools.write")))
    assert p is not None
    assert (p.subject, p.client_id, p.method, p.issuer) == ("alice", "app-1", "jwt", issuer.issuer)
    assert p.scopes == {"tools.read", "tools.write"}
    assert p.expires_at is not None and p.expires_at > time.time()


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "https://other.example.com/mcp"}, "another resource"),
        ({"aud": RESOURCE, "iss": "https://evil.example.com"}, "another issuer"),
        ({"aud": RESOURCE, "exp": int(time.time()) - 3600}, "expired"),
        ({"aud": RESOURCE, "nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"aud": RESOURCE, "iat": int(time.time()) + 3600}, "future"),
        ({"aud": None}, "aud"),
    ],
)
async def test_jwt_claims_are_checked(issuer: Issuer, claims: dict[str, object], why: str) -> None:
    assert why in await refused(verifier(issuer), bearer(issuer.token(**claims)))


async def test_alg_none_and_hmac_with_the_public_key_are_refused(issuer: Issuer) -> None:
    """Never ``none``, never HMAC keyed with the public key (the classic confusion attack)."""
    v = verifier(issuer)
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"%s"}' % issuer.keys[0].kid.encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(b'{"sub":"mallory","aud":"%s","iss":"%s","exp":9999999999}' % (RESOURCE.encode(), issuer.issuer.encode()))
    assert "algorithm" in await refused(v, bearer(f"{header}.{body.rstrip(b'=').decode()}."))
    # joserfc itself refuses to make such a key, so the forgery is made by hand.
    public_pem = issuer.keys[0].as_pem(private=False)
    claims = {"sub": "mallory", "aud": RESOURCE, "iss": issuer.issuer, "exp": int(time.time()) + 60}
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': issuer.keys[0].kid}).encode())}.{b64(json.dumps(claims).encode())}"
    forged = f"{signing_input}.{b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"
    assert "algorithm" in await refused(v, bearer(forged))
    with pytest.raises(ValueError, match="never none or HMAC"):
        JWTVerifier(issuer=issuer.issuer, jwks_url=issuer.jwks_url, algorithms=["HS256"])


async def test_tampered_signature_and_unknown_kid(issuer: Issuer) -> None:
    v = verifier(issuer)
    token = issuer.token(aud=RESOURCE)
    head, body, sig = token.split(".")
    tampered_body = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(body + "==").replace(b'"alice"', b'"admin"')
    ).rstrip(b"=").decode()
    assert "signature" in await refused(v, bearer(f"{head}.{tampered_body}.{sig}"))
    stranger = jwk.ECKey.generate_key("P-256", parameters={"kid": "stranger"})
    assert "unknown key" in await refused(v, bearer(issuer.token(aud=RESOURCE, key=stranger)))


async def test_key_rotation_is_picked_up_without_restart_and_refetches_are_rate_limited(issuer: Issuer) -> None:
    v = JWTVerifier(issuer=issuer.issuer, jwks_url=issuer.jwks_url, refresh_interval=3600.0)
    v.bind(RESOURCE)
    assert await v.authenticate(bearer(issuer.token(aud=RESOURCE))) is not None
    assert v.keys.fetches == 1
    # Unknown kids within the refresh interval do not refetch: a flood of them cannot flood the AS.
    stranger = jwk.ECKey.generate_key("P-256", parameters={"kid": "stranger"})
    for n in range(5):
        await refused(v, bearer(issuer.token(aud=RESOURCE, key=stranger, sub=f"x{n}")))
    assert v.keys.fetches == 1 and issuer.requests["/jwks"] == 1
    # Rotation: the AS signs with a new key; an unknown kid after the interval refetches the JWKS.
    v.keys.refresh_interval = 0.0
    issuer.rotate()
    p = await v.authenticate(bearer(issuer.token(aud=RESOURCE, sub="carol")))
    assert p is not None and p.subject == "carol"
    assert v.keys.fetches == 2


async def test_verified_tokens_are_cached_by_digest_until_expiry(issuer: Issuer) -> None:
    v = verifier(issuer)
    token = issuer.token(aud=RESOURCE, exp=int(time.time()) + 2)
    first = await v.authenticate(bearer(token))
    assert await v.authenticate(bearer(token)) is first
    assert hashlib.blake2b(token.encode(), digest_size=32).digest() in v.cache._entries
    assert all(token not in repr(k) for k in v.cache._entries)


async def test_introspection_active_revoked_and_cached(issuer: Issuer) -> None:
    """RFC 7662: active tokens yield their principal; a revoked token is refused once the bounded
    cache forgets it; the AS is asked once per token while cached."""
    v = IntrospectionVerifier(issuer.url + "/introspect", client_id="mcp-server", client_secret="s3cret", cache_ttl=0.3,
                              negative_ttl=0.0)
    v.bind(RESOURCE)
    token = issuer.opaque(aud=RESOURCE)
    p = await v.authenticate(bearer(token))
    assert p is not None and (p.subject, p.method, p.client_id) == ("bob", "introspection", "app-2")
    await v.authenticate(bearer(token))
    assert v.calls == 1
    issuer.revoke(token)
    await asyncio.sleep(0.35)
    assert "not active" in await refused(v, bearer(token))
    other = issuer.opaque(aud="https://other.example.com/mcp")
    assert "another resource" in await refused(v, bearer(other))
    bad_client = IntrospectionVerifier(issuer.url + "/introspect", client_id="mcp-server", client_secret="wrong")
    bad_client.bind(RESOURCE)
    with pytest.raises(AuthError) as info:
        await bad_client.authenticate(bearer(issuer.opaque()))
    assert info.value.status == 503  # not the client's fault, not a 401


def test_api_keys_are_stored_as_digests_and_rotate_without_restart(tmp_path: Path) -> None:
    key, entry = new_api_key("ci", ["tools.read"])
    assert key.startswith("apk_") and len(key) > 40
    assert key not in entry.line() and entry.digest in entry.line()
    path = tmp_path / "keys.txt"
    path.write_text(f"# keys\n{entry.line()}\n")
    keys = APIKeys(path=path, reload_interval=0.0)
    p = keys.verify(key)
    assert (p.subject, p.method, p.scopes) == ("ci", "api_key", {"tools.read"})
    with pytest.raises(AuthError, match="unknown or revoked"):
        keys.verify(key[:-2] + ("AA" if not key.endswith("AA") else "BB"))
    # Revoked: the line is gone from the file.
    key2, entry2 = new_api_key("deploy", ["tools.write"])
    path.write_text(entry2.line() + "\n")
    with pytest.raises(AuthError, match="unknown or revoked"):
        keys.verify(key)
    assert keys.verify(key2).subject == "deploy"
    # Expired.
    key3, entry3 = new_api_key("old", expires_at=time.time() - 10)
    path.write_text(entry3.line() + "\n")
    with pytest.raises(AuthError, match="expired"):
        keys.verify(key3)
    # A broken file keeps the keys last loaded (and says why in the log).
    path.write_text("garbage\n")
    with pytest.raises(AuthError, match="expired"):
        keys.verify(key3)


async def test_api_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key, entry = new_api_key("env-key", ["a", "b"])
    monkeypatch.setenv("TEST_ANYPORT_KEYS", entry.line())
    keys = APIKeys(env="TEST_ANYPORT_KEYS")
    p = await keys.authenticate(AuthRequest({b"x-api-key": key.encode()}))
    assert p is not None and p.scopes == {"a", "b"}
    assert await keys.authenticate(AuthRequest({b"authorization": f"Bearer {key}".encode()})) is not None
    assert await keys.authenticate(AuthRequest({b"authorization": b"Bearer eyJ.a.b"})) is None


def _cert_der(ca: trustme.CA, *identities: str, **kw: object) -> bytes:
    cert = ca.issue_cert(*identities, **kw)  # type: ignore[arg-type]
    from cryptography import x509

    return x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER
    )


async def test_client_certificates_native_and_from_a_trusted_proxy() -> None:
    ca = trustme.CA()
    certs = ClientCertificates(header="x-forwarded-client-cert", trusted_proxies=["10.0.0.0/8"],
                               scopes={"*.prod.example.org": ["tools.read"]}, default_scopes=["ping"])
    der = _cert_der(ca, "agent.prod.example.org")
    p = await certs.authenticate(AuthRequest({}, client_cert=der))
    assert p is not None and (p.subject, p.method) == ("agent.prod.example.org", "mtls")
    assert p.scopes == {"tools.read", "ping"}
    pem = ca.issue_cert("agent.example.org").cert_chain_pems[0].bytes().decode()
    from urllib.parse import quote

    xfcc = f'By=spiffe://example.org/ns/mesh;Hash=abc;Cert="{quote(pem)}";DNS=agent.example.org'
    p = await certs.authenticate(AuthRequest({b"x-forwarded-client-cert": xfcc.encode()}, peer="10.1.2.3"))
    assert p is not None and (p.subject, p.method) == ("agent.example.org", "mtls_proxy")
    with pytest.raises(AuthError, match="untrusted peer"):
        await certs.authenticate(AuthRequest({b"x-forwarded-client-cert": xfcc.encode()}, peer="192.0.2.1"))
    expired = _cert_der(ca, "old.example.org", not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    with pytest.raises(AuthError, match="not valid now"):
        await certs.authenticate(AuthRequest({}, client_cert=expired))


async def test_dpop_bound_tokens_need_a_fresh_proof(issuer: Issuer) -> None:
    """RFC 9449: cnf.jkt binds the token; method, URL, iat, jti (replay) and ath are checked."""
    key = jwk.ECKey.generate_key("P-256")
    chain = AuthChain([verifier(issuer)], resource=RESOURCE, authorization_servers=[issuer.issuer])
    token = issuer.token(aud=RESOURCE, cnf={"jkt": key.thumbprint()})
    proof = thumbprint_and_proof(key, method="POST", url=RESOURCE, token=token)
    p = await chain.authenticate(bearer(token, "DPoP", dpop=proof))
    assert p.subject == "alice"
    for request, why in [
        (bearer(token, "DPoP", dpop=proof), "replay"),
        (bearer(token, "DPoP"), "needs exactly one"),
        (bearer(token, "Bearer", dpop=thumbprint_and_proof(key, method="POST", url=RESOURCE, token=token)), "DPoP scheme"),
        (bearer(token, "DPoP", dpop=thumbprint_and_proof(key, method="GET", url=RESOURCE, token=token)), "another request"),
        (bearer(token, "DPoP", dpop=thumbprint_and_proof(key, method="POST", url=RESOURCE, token="x")), "another access token"),
        (bearer(token, "DPoP", dpop=thumbprint_and_proof(key, method="POST", url=RESOURCE, token=token, iat=time.time() - 600)), "too old"),
        (bearer(token, "DPoP", dpop=thumbprint_and_proof(jwk.ECKey.generate_key("P-256"), method="POST", url=RESOURCE, token=token)), "another key"),
    ]:
        with pytest.raises(AuthError, match=why):
            await chain.authenticate(request)


async def test_the_chain_tries_each_way_and_challenges(issuer: Issuer, tmp_path: Path) -> None:
    """A-06/A-25/A-27: 401 with resource_metadata and scope; invalid_token names the error; a
    missing required scope is a 403 insufficient_scope naming it."""
    key, entry = new_api_key("ci", ["tools.read"])
    chain = AuthChain(
        [APIKeys([entry]), verifier(issuer)], resource=RESOURCE + "/", authorization_servers=[issuer.issuer],
        scopes_supported=["tools.read", "tools.write"],
    )
    assert chain.resource == RESOURCE
    assert chain.metadata_paths() == ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource")
    assert (await chain.authenticate(bearer(key))).method == "api_key"
    assert (await chain.authenticate(bearer(issuer.token(aud=RESOURCE)))).method == "jwt"
    nobody, none = await chain.admit({"type": "http", "method": "POST", "path": "/mcp", "client": ("127.0.0.1", 1)}, {})
    assert nobody is None and none is not None
    assert none.status == 401
    challenge = dict(none.headers)[b"www-authenticate"].decode()
    assert challenge == ('Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", '
                         'scope="tools.read tools.write"')
    _, bad = await chain.admit({"method": "POST", "path": "/mcp"}, {b"authorization": b"Bearer a.b.c"})
    assert bad is not None and 'error="invalid_token"' in dict(bad.headers)[b"www-authenticate"].decode()
    p = await chain.authenticate(bearer(issuer.token(aud=RESOURCE)))
    step_up = chain.refusal_for_scopes(p, ["tools.read", "tools.write"])
    assert step_up is not None and step_up.status == 403
    assert 'error="insufficient_scope", ' in dict(step_up.headers)[b"www-authenticate"].decode()
    assert 'scope="tools.read tools.write"' in dict(step_up.headers)[b"www-authenticate"].decode()
    assert chain.refusal_for_scopes(p, ["tools.read"]) is None
    assert await chain.well_known("/.well-known/oauth-authorization-server") is not None  # A-04, fetched from the AS


def test_a_static_jwks_skips_symmetric_keys() -> None:
    keys = JWKS(keys={"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]})
    assert keys._pick("h") is None


async def test_the_fast_path_remembers_verified_credentials_by_both_headers(issuer: Issuer) -> None:
    """Part 5 (speed): a credential verified before is found with one digest and one lookup; the key
    covers both credential headers, so the chain's order is never bypassed; DPoP-bound tokens and
    chains with client certificates never take the fast path."""
    key, entry = new_api_key("ci", ["tools.read"])
    chain = AuthChain([APIKeys([entry], reload_interval=60), verifier(issuer)], resource=RESOURCE)
    scope = {"type": "http", "method": "POST", "path": "/mcp"}
    token = issuer.token(aud=RESOURCE)
    both = {b"authorization": f"Bearer {token}".encode(), b"x-api-key": key.encode()}
    only_token = {b"authorization": f"Bearer {token}".encode()}
    assert chain.cached(both) is None
    p, _ = await chain.admit(scope, both)
    assert p is not None and p.method == "api_key" and chain.cached(both) is p
    assert chain.cached(only_token) is None
    p, _ = await chain.admit(scope, only_token)
    assert p is not None and p.method == "jwt" and chain.cached(only_token) is p
    dpop_key = jwk.ECKey.generate_key("P-256")
    bound = issuer.token(aud=RESOURCE, cnf={"jkt": dpop_key.thumbprint()})
    headers = {b"authorization": f"DPoP {bound}".encode(),
               b"dpop": thumbprint_and_proof(dpop_key, method="POST", url=RESOURCE, token=bound).encode()}
    p, _ = await chain.admit(scope, headers)
    assert p is not None and chain.cached(headers) is None
    with_certs = AuthChain([ClientCertificates(), verifier(issuer)], resource=RESOURCE)
    await with_certs.admit(scope, only_token)
    assert with_certs.cached(only_token) is None


def _spiffe_cert(ca: trustme.CA, uri: str) -> bytes:
    """A client certificate whose SAN is a URI (a SPIFFE id), signed by the trustme CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "workload")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.DER)


async def test_a_spiffe_id_is_the_identity_and_scopes_follow_patterns() -> None:
    certs = ClientCertificates(scopes={"spiffe://prod.example/ns/agents/*": ["notes.read"], "*": ["ping"]})
    p = await certs.authenticate(AuthRequest({}, client_cert=_spiffe_cert(trustme.CA(), "spiffe://prod.example/ns/agents/sa/bot")))
    assert p is not None and p.subject == "spiffe://prod.example/ns/agents/sa/bot" and p.scopes == {"notes.read", "ping"}
    cn_only = ClientCertificates(identity="cn")
    p = await cn_only.authenticate(AuthRequest({}, client_cert=_spiffe_cert(trustme.CA(), "spiffe://x/y")))
    assert p is not None and p.subject == "workload"


async def test_no_token_is_kept_or_passed_on(issuer: Issuer) -> None:
    """A-33: the principal a handler sees carries the claims, never the token itself."""
    token = issuer.token(aud=RESOURCE)
    p = await verifier(issuer).authenticate(bearer(token))
    assert p is not None
    assert token not in repr(p) and token not in repr(dict(p.claims)) and not hasattr(p, "token")


async def test_scope_hierarchies_and_no_offline_access_in_challenges(issuer: Issuer) -> None:
    """A-29: a granted scope that includes others satisfies them (transitively); offline_access is
    never advertised in the metadata or a challenge."""
    chain = AuthChain(
        [verifier(issuer)], resource=RESOURCE, scopes_supported=["notes.read", "notes.write", "offline_access"],
        implied_scopes={"notes.admin": ["notes.write"], "notes.write": ["notes.read"]},
    )
    p = await chain.authenticate(bearer(issuer.token(aud=RESOURCE, scope="notes.admin")))
    assert p.scopes == {"notes.admin", "notes.write", "notes.read"}
    assert chain.refusal_for_scopes(p, ["notes.read", "notes.write"]) is None
    assert b"offline_access" not in chain.metadata
    _, refusal = await chain.admit({"method": "POST", "path": "/mcp"}, {})
    assert refusal is not None and b"offline_access" not in dict(refusal.headers)[b"www-authenticate"]
