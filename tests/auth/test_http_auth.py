"""Authentication wired into the HTTP app, against a real uvicorn and a real JWKS/introspection
server on loopback: challenges (A-06, A-07, A-25, A-27, A-31, A-34), the metadata (A-05, A-09),
ctx.principal, scopes per tool/resource/prompt, sessions bound to their principal (A-37), the
HTTP+SSE transport (T-SSE-05), and a server that keeps serving after every refusal."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwk

from anyport.auth import APIKeys, AuthChain, IntrospectionVerifier, JWTVerifier, new_api_key
from tests.auth._issuer import Issuer, thumbprint_and_proof
from tests.auth._serving import app_with, make_server, served
from tests.transports._http_helpers import POST_HEADERS, modern_body, modern_headers

SCOPES = ["tools.read", "tools.write", "secrets.read", "prompts.use"]


def chain_for(issuer: Issuer, keys: APIKeys | None = None, **kw: Any) -> Any:
    def make(resource: str) -> AuthChain:
        verifiers: list[Any] = [JWTVerifier(issuer=issuer.issuer, jwks_url=issuer.jwks_url, refresh_interval=0.0)]
        if keys is not None:
            verifiers.insert(0, keys)
        verifiers.append(IntrospectionVerifier(issuer.url + "/introspect", client_id="mcp-server", client_secret="s3cret",
                                               cache_ttl=0.0, negative_ttl=0.0))
        return AuthChain(verifiers, resource=resource, authorization_servers=[issuer.issuer], scopes_supported=SCOPES, **kw)

    return make


@pytest.fixture
def base(issuer: Issuer) -> Iterator[str]:
    with served(app_with(chain_for(issuer), json_response=True, stateless=True)) as url:
        yield url


def call(c: httpx.Client, token: str | None, name: str, arguments: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    h = {**POST_HEADERS, "mcp-protocol-version": "2025-11-25", **headers}
    if token is not None:
        h["authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}}
    return c.post("/mcp", headers=h, json=body)


def challenge(r: httpx.Response) -> dict[str, str]:
    raw = r.headers["www-authenticate"]
    scheme, _, rest = raw.partition(" ")
    params = {"scheme": scheme}
    for part in rest.split('", '):
        key, _, value = part.partition("=")
        params[key.strip()] = value.strip().strip('"')
    return params


def test_no_token_is_a_401_naming_the_metadata_which_is_served(base: str, issuer: Issuer) -> None:
    """A-06/A-07/A-25: 401 + Bearer resource_metadata + scope; the metadata at the path-inserted
    and root well-known URIs names this resource and its authorization server (A-05, A-09)."""
    with httpx.Client(base_url=base) as c:
        r = call(c, None, "whoami")
        assert r.status_code == 401
        ch = challenge(r)
        assert ch["scheme"] == "Bearer" and "error" not in ch
        assert ch["resource_metadata"] == f"{base}/.well-known/oauth-protected-resource/mcp"
        assert ch["scope"] == " ".join(SCOPES)
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            meta = c.get(path).json()
            assert meta["resource"] == f"{base}/mcp"
            assert meta["authorization_servers"] == [issuer.issuer]
            assert meta["scopes_supported"] == SCOPES
        assert c.get("/.well-known/oauth-authorization-server").json()["issuer"] == issuer.issuer  # A-04 (2025-03-26)
        assert c.get("/healthz").status_code == 200  # never authenticated
        assert c.get("/.well-known/unknown").status_code == 404


def test_a_good_token_yields_ctx_principal_and_bad_ones_are_401(base: str, issuer: Issuer) -> None:
    resource = f"{base}/mcp"
    with httpx.Client(base_url=base) as c:
        r = call(c, issuer.token(aud=resource), "whoami")
        assert r.status_code == 200, r.text
        assert r.json()["result"]["structuredContent"] == {
            "subject": "alice", "method": "jwt", "client": "app-1", "scopes": ["tools.read"],
        }
        stranger = jwk.ECKey.generate_key("P-256", parameters={"kid": "stranger"})
        for token, why in [
            (issuer.token(aud="https://other.example.com/mcp"), "another resource"),
            (issuer.token(aud=resource, iss="https://evil.example.com"), "another issuer"),
            (issuer.token(aud=resource, exp=int(time.time()) - 120), "expired"),
            (issuer.token(aud=resource, nbf=int(time.time()) + 3600), "not valid yet"),
            (issuer.token(aud=resource, key=stranger), "unknown key"),
            (issuer.token(aud=resource)[:-4] + "AAAA", "signature"),
            ("not-a-token", "not active"),
        ]:
            r = call(c, token, "whoami")
            assert r.status_code == 401, (why, r.text)
            ch = challenge(r)
            assert ch["error"] == "invalid_token" and why in ch["error_description"], (why, ch)
            assert why in r.json()["error"]["message"]
        # Still serving.
        assert call(c, issuer.token(aud=resource), "whoami").status_code == 200


def test_introspected_tokens_and_revocation_over_http(base: str, issuer: Issuer) -> None:
    with httpx.Client(base_url=base) as c:
        token = issuer.opaque(aud=f"{base}/mcp")
        r = call(c, token, "whoami")
        assert r.json()["result"]["structuredContent"]["method"] == "introspection"
        issuer.revoke(token)
        r = call(c, token, "whoami")
        assert r.status_code == 401 and "not active" in challenge(r)["error_description"]


def test_scopes_per_tool_resource_and_prompt_step_up(base: str, issuer: Issuer) -> None:
    """A-27: 403 insufficient_scope naming the scopes the operation needs; with them it runs."""
    resource = f"{base}/mcp"
    weak = issuer.token(aud=resource, scope="tools.read")
    strong = issuer.token(aud=resource, scope="tools.read tools.write secrets.read prompts.use")
    with httpx.Client(base_url=base) as c:
        r = call(c, weak, "write", {"text": "x"})
        assert r.status_code == 403
        ch = challenge(r)
        assert (ch["error"], ch["scope"]) == ("insufficient_scope", "tools.write")
        assert ch["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
        assert r.json()["id"] == 1
        assert call(c, strong, "write", {"text": "x"}).json()["result"]["content"][0]["text"] == "wrote x"
        for method, params, scope in [
            ("resources/read", {"uri": "secret://plans"}, "secrets.read"),
            ("prompts/get", {"name": "greet"}, "prompts.use"),
        ]:
            body = {"jsonrpc": "2.0", "id": 2, "method": method, "params": params}
            r = c.post("/mcp", headers={**POST_HEADERS, "authorization": f"Bearer {weak}"}, json=body)
            assert r.status_code == 403 and challenge(r)["scope"] == scope
            r = c.post("/mcp", headers={**POST_HEADERS, "authorization": f"Bearer {strong}"}, json=body)
            assert r.status_code == 200 and "result" in r.json()
        # A batch names every scope it needs, once (A-27, 2026-07-28 wording).
        batch = [{"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "write", "arguments": {"text": "y"}}} for i in (1, 2)]
        batch.append({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "secret://plans"}})
        r = c.post("/mcp", headers={**POST_HEADERS, "authorization": f"Bearer {weak}"}, json=batch)
        assert r.status_code == 403 and challenge(r)["scope"] == "tools.write secrets.read"


def test_the_modern_stateless_path_is_authenticated_too(base: str, issuer: Issuer) -> None:
    with httpx.Client(base_url=base) as c:
        body = modern_body(1, "tools/call", {"name": "whoami", "arguments": {}})
        r = c.post("/mcp", headers=modern_headers("tools/call", "whoami"), json=body)
        assert r.status_code == 401
        headers = {**modern_headers("tools/call", "whoami"), "authorization": f"Bearer {issuer.token(aud=base + '/mcp')}"}
        r = c.post("/mcp", headers=headers, json=body)
        assert r.status_code == 200 and r.json()["result"]["structuredContent"]["subject"] == "alice"


def test_listings_hide_what_the_principal_cannot_use(issuer: Issuer) -> None:
    with served(app_with(chain_for(issuer), make_server(hide_unauthorized=True), json_response=True, stateless=True)) as url, httpx.Client(base_url=url) as c:
        def names(scope: str, method: str, key: str) -> list[str]:
            h = {**POST_HEADERS, "authorization": f"Bearer {issuer.token(aud=url + '/mcp', scope=scope)}"}
            r = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 1, "method": method})
            return [t.get("name") for t in r.json()["result"][key]]

        assert names("tools.read", "tools/list", "tools") == ["whoami"]
        assert names("tools.read tools.write", "tools/list", "tools") == ["whoami", "write"]
        assert names("tools.read", "resources/list", "resources") == []
        assert names("secrets.read", "resources/list", "resources") == ["plans"]
        assert names("tools.read", "prompts/list", "prompts") == []


def _initialize(c: httpx.Client, token: str) -> str:
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    r = c.post("/mcp", headers={**POST_HEADERS, "authorization": f"Bearer {token}"}, json=body)
    assert r.status_code == 200, r.text
    return r.headers["mcp-session-id"]


def test_a_session_belongs_to_its_principal(issuer: Issuer) -> None:
    """A-37 / T-HTTP-34: another principal presenting the session id gets 404, as for an unknown id;
    the owner with a refreshed token keeps its session."""
    with served(app_with(chain_for(issuer), json_response=True)) as base, httpx.Client(base_url=base) as c:
        resource = f"{base}/mcp"
        alice, bob = issuer.token(aud=resource), issuer.token(aud=resource, sub="bob")
        sid = _initialize(c, alice)
        session = {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        r = call(c, bob, "whoami", **session)
        assert r.status_code == 404 and r.json()["error"]["message"] == "Not Found: unknown or terminated session"
        assert c.delete("/mcp", headers={**session, "authorization": f"Bearer {bob}"}).status_code == 404
        refreshed = issuer.token(aud=resource, jti=secrets.token_hex(4))
        r = call(c, refreshed, "whoami", **session)
        assert r.status_code == 200 and r.json()["result"]["structuredContent"]["subject"] == "alice"
        assert call(c, None, "whoami", **session).status_code == 401  # a session id is never a credential


def test_http_sse_is_authenticated_and_bound(issuer: Issuer) -> None:
    """The 2024-11-05 transport: GET /sse and POST /messages/ authenticate; a connection belongs to
    the principal that opened it (T-SSE-05, A-37)."""
    with served(app_with(chain_for(issuer))) as url, httpx.Client(base_url=url, timeout=10) as c:
        assert c.get("/sse", headers={"accept": "text/event-stream"}).status_code == 401
        alice = issuer.token(aud=url + "/mcp")
        bob = issuer.token(aud=url + "/mcp", sub="bob")
        with c.stream("GET", "/sse", headers={"accept": "text/event-stream", "authorization": f"Bearer {alice}"}) as stream:
            lines = stream.iter_lines()
            endpoint = next(line for line in lines if line.startswith("data:"))[5:].strip()
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                    "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            h = {"content-type": "application/json"}
            assert c.post(endpoint, json=init, headers=h).status_code == 401
            assert c.post(endpoint, json=init, headers={**h, "authorization": f"Bearer {bob}"}).status_code == 404
            assert c.post(endpoint, json=init, headers={**h, "authorization": f"Bearer {alice}"}).status_code == 202
            write = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "write", "arguments": {"text": "x"}}}
            r = c.post(endpoint, json=write, headers={**h, "authorization": f"Bearer {alice}"})
            assert r.status_code == 403 and "insufficient_scope" in r.headers["www-authenticate"]
            who = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
            c.post(endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers={**h, "authorization": f"Bearer {alice}"})
            assert c.post(endpoint, json=who, headers={**h, "authorization": f"Bearer {alice}"}).status_code == 202
            for line in lines:
                if line.startswith("data:") and '"id":2' in line.replace(" ", ""):
                    assert json.loads(json.loads(line[5:])["result"]["content"][0]["text"])["subject"] == "alice"
                    break
            # Step-up on the same connection: the same caller with a stronger token; the handler sees it.
            stronger = issuer.token(aud=url + "/mcp", scope="tools.read tools.write")
            write["id"] = 3
            assert c.post(endpoint, json=write, headers={**h, "authorization": f"Bearer {stronger}"}).status_code == 202
            for line in lines:
                if line.startswith("data:") and '"id":3' in line.replace(" ", ""):
                    assert json.loads(line[5:])["result"]["content"][0]["text"] == "wrote x"
                    break


def test_api_keys_over_http_and_revocation_without_restart(issuer: Issuer, tmp_path: Path) -> None:
    key, entry = new_api_key("ci-bot", ["tools.read", "tools.write"])
    path = tmp_path / "keys.txt"
    path.write_text(entry.line() + "\n")
    keys = APIKeys(path=path, reload_interval=0.0)
    with served(app_with(chain_for(issuer, keys), json_response=True, stateless=True)) as url, httpx.Client(base_url=url) as c:
        r = call(c, None, "whoami", **{"x-api-key": key})
        assert r.json()["result"]["structuredContent"] == {
            "subject": "ci-bot", "method": "api_key", "client": f"apk_{entry.id}", "scopes": ["tools.read", "tools.write"],
        }
        assert call(c, key, "write", {"text": "k"}).status_code == 200
        assert call(c, key[:-3] + "xyz", "whoami").status_code == 401
        path.write_text("")  # revoked
        r = call(c, key, "whoami")
        assert r.status_code == 401 and "unknown or revoked" in r.headers["www-authenticate"]


def test_dpop_bound_tokens_over_http(issuer: Issuer) -> None:
    key = jwk.ECKey.generate_key("P-256")
    with served(app_with(chain_for(issuer), json_response=True, stateless=True)) as url, httpx.Client(base_url=url) as c:
        token = issuer.token(aud=url + "/mcp", cnf={"jkt": key.thumbprint()})
        proof = thumbprint_and_proof(key, method="POST", url=url + "/mcp", token=token)
        h = {"authorization": f"DPoP {token}", "dpop": proof}
        assert call(c, None, "whoami", **h).status_code == 200
        r = call(c, None, "whoami", **h)  # the same proof again
        assert r.status_code == 401
        assert challenge(r)["scheme"] == "DPoP" and challenge(r)["error"] == "invalid_dpop_proof"
        assert "replay" in challenge(r)["error_description"]
        assert call(c, token, "whoami").status_code == 401  # a bound token as a plain Bearer token


def test_origin_is_checked_before_credentials(base: str, issuer: Issuer) -> None:
    """The fixed order (DIGEST §21): Origin/Host first (403), then authentication (401)."""
    with httpx.Client(base_url=base) as c:
        r = call(c, None, "whoami", origin="https://evil.example.com")
        assert r.status_code == 403 and "www-authenticate" not in r.headers
        r = call(c, issuer.token(aud=f"{base}/mcp"), "whoami", origin="https://evil.example.com")
        assert r.status_code == 403
        assert call(c, None, "whoami").status_code == 401


async def test_a_session_stays_bound_on_every_replica(issuer: Issuer) -> None:
    """Two replicas sharing the session store and bus: the owner is kept in the session's record,
    so the replica that restores the session refuses another principal too (A-37)."""
    from anyport.state import MemoryBus, MemoryEventLog, MemorySessionStore
    from anyport.transports.http import create_app

    resource = "http://127.0.0.1:1/mcp"
    store, bus, events = MemorySessionStore(), MemoryBus(), MemoryEventLog()
    apps = [create_app(make_server(), auth=chain_for(issuer)(resource), json_response=True, session_store=store, bus=bus,
                       event_log=events) for _ in range(2)]
    alice, bob = issuer.token(aud=resource), issuer.token(aud=resource, sub="bob")
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://127.0.0.1:1") for a in apps]
    try:
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        r = await clients[0].post("/mcp", headers={**POST_HEADERS, "authorization": f"Bearer {alice}"}, json=body)
        sid = r.headers["mcp-session-id"]
        session = {**POST_HEADERS, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        who = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
        r = await clients[1].post("/mcp", headers={**session, "authorization": f"Bearer {bob}"}, json=who)
        assert r.status_code == 404
        r = await clients[1].post("/mcp", headers={**session, "authorization": f"Bearer {alice}"}, json=who)
        assert r.status_code == 200 and r.json()["result"]["structuredContent"]["subject"] == "alice"
        assert (await store.get(sid)).principal is not None  # type: ignore[union-attr]
    finally:
        for c in clients:
            await c.aclose()
        for a in apps:
            await a.aclose()


def test_a_task_belongs_to_its_principal(issuer: Issuer) -> None:
    """Without a session (stateless), a task is bound to the principal that created it: another one
    is told the task is unknown, and lists only its own (A-37)."""
    import asyncio as _asyncio

    server = make_server()

    @server.tool(task_support="optional")
    async def slow() -> str:
        await _asyncio.sleep(0.01)
        return "done"

    with served(app_with(chain_for(issuer), server, json_response=True, stateless=True)) as base, httpx.Client(base_url=base) as c:
        alice, bob = issuer.token(aud=f"{base}/mcp"), issuer.token(aud=f"{base}/mcp", sub="bob")

        def rpc(token: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
            h = {**POST_HEADERS, "mcp-protocol-version": "2025-11-25", "authorization": f"Bearer {token}"}
            reply: dict[str, Any] = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
            return reply

        created = rpc(alice, "tools/call", {"name": "slow", "arguments": {}, "task": {}})
        task_id = created["result"]["task"]["taskId"]
        assert "error" in rpc(bob, "tasks/get", {"taskId": task_id})
        assert rpc(alice, "tasks/get", {"taskId": task_id})["result"]["taskId"] == task_id
        assert rpc(bob, "tasks/list", {})["result"]["tasks"] == []
        assert [t["taskId"] for t in rpc(alice, "tasks/list", {})["result"]["tasks"]] == [task_id]
