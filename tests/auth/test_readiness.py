"""/readyz tells the truth about authentication (issue 14, item 6): a server whose JWKS was never
reached is not ready (503 with the reason), and becomes ready once it is, without a restart; a
reachable JWKS, API keys alone, or no auth at all are ready. /healthz stays 200 throughout."""

from __future__ import annotations

import socket

import httpx

from anyport.auth import APIKeys, AuthChain, JWTVerifier
from tests.auth._issuer import Issuer
from tests.auth._serving import app_with, served


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_jwks_is_not_ready_until_it_answers(issuer: Issuer) -> None:
    port = _closed_port()
    verifier = JWTVerifier(issuer=issuer.issuer, jwks_url=f"http://127.0.0.1:{port}/jwks", refresh_interval=0.0)

    def chain(resource: str) -> AuthChain:
        return AuthChain([verifier], resource=resource, authorization_servers=[issuer.issuer])

    with served(app_with(chain)) as base:
        r = httpx.get(f"{base}/readyz", timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["status"] == "unavailable" and issuer.issuer in r.json()["reason"]
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        verifier.keys.url = issuer.jwks_url  # the JWKS comes up (here: is reachable at last)
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        token = issuer.token(aud=f"{base}/mcp", sub="alice")
        opened = httpx.post(
            f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}, timeout=10,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
                     "MCP-Protocol-Version": "2025-11-25"},
        )
        assert opened.status_code == 200  # and the token verifies with the keys now fetched


def test_api_keys_alone_are_ready(issuer: Issuer) -> None:
    def chain(resource: str) -> AuthChain:
        return AuthChain([APIKeys({})], resource=resource)

    with served(app_with(chain)) as base:
        assert httpx.get(f"{base}/readyz", timeout=10).json() == {"status": "ready"}
