"""End to end with clients nobody here wrote: the official Python SDK client (mcp) and the
TypeScript SDK client, each with its own OAuth implementation, authenticate against an anyport
server through a real authorization server (node-oidc-provider: dynamic registration, PKCE,
RFC 8707 resource indicators, JWT access tokens), then call a scoped tool after a step-up
(A-05..A-09, A-23, A-25, A-27, A-28, A-31)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from anyport.auth import AuthChain, JWTVerifier
from tests.auth._as import TS_PEERS, authorization_server, ensure_installed, follow_to_redirect, node
from tests.auth._serving import app_with, served

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def oidc() -> Iterator[dict[str, str]]:
    why = ensure_installed()
    if why is not None:
        pytest.skip(why)
    with authorization_server() as info:
        yield info


def chain_for(oidc: dict[str, str]) -> Any:
    def make(resource: str) -> AuthChain:
        return AuthChain(
            [JWTVerifier(issuer=oidc["issuer"], jwks_url=oidc["jwks_uri"])], resource=resource,
            authorization_servers=[oidc["issuer"]], scopes_supported=["tools.read", "tools.write"],
            required_scopes=["tools.read"],
        )

    return make


@pytest.mark.parametrize("mode", ["legacy", "auto", "sse"])
async def test_the_python_sdk_client_logs_in_and_steps_up(oidc: dict[str, str], mode: str) -> None:
    """``legacy``: the 2025-11-25 handshake and a session; ``auto``: the SDK's default, 2026-07-28;
    ``sse``: the 2024-11-05 HTTP+SSE transport (the resource is still the server's /mcp URL)."""
    import httpx2
    from mcp import Client
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

    redirect_uri = "http://127.0.0.1:9/callback"
    visits: list[str] = []
    results: list[dict[str, str]] = []

    class Memory:
        tokens: OAuthToken | None = None
        client: OAuthClientInformationFull | None = None

        async def get_tokens(self) -> OAuthToken | None:
            return self.tokens

        async def set_tokens(self, tokens: OAuthToken) -> None:
            self.tokens = tokens

        async def get_client_info(self) -> OAuthClientInformationFull | None:
            return self.client

        async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
            self.client = client_info

    async def redirect(url: str) -> None:
        visits.append(url)
        results.append(await asyncio.to_thread(follow_to_redirect, url, redirect_uri))

    async def callback() -> AuthorizationCodeResult:
        got = results.pop()
        assert "code" in got, got
        return AuthorizationCodeResult(code=got["code"], state=got.get("state"), iss=got.get("iss"))

    storage = Memory()
    with served(app_with(chain_for(oidc))) as base:
        url = f"{base}/mcp"
        provider = OAuthClientProvider(
            url, OAuthClientMetadata(client_name="mcp-python-sdk", redirect_uris=[redirect_uri],  # type: ignore[list-item]
                                     grant_types=["authorization_code", "refresh_token"], token_endpoint_auth_method="none"),
            storage, redirect_handler=redirect, callback_handler=callback,
        )
        async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
            transport = sse_client(f"{base}/sse", auth=provider) if mode == "sse" else streamable_http_client(url, http_client=http)
            async with Client(transport, mode="legacy" if mode == "sse" else mode) as client:  # type: ignore[arg-type]
                assert client.protocol_version == {"legacy": "2025-11-25", "auto": "2026-07-28"}.get(mode, client.protocol_version)
                who = await client.call_tool("whoami", {})
                assert who.structured_content is not None
                assert who.structured_content["subject"] == "alice"
                assert who.structured_content["scopes"] == ["tools.read"]  # the 401 challenge's scope
                wrote = await client.call_tool("write", {"text": "hello"})  # 403 insufficient_scope -> step-up
                assert wrote.content[0].text == "wrote hello"  # type: ignore[union-attr]
                who = await client.call_tool("whoami", {})
                assert who.structured_content is not None and set(who.structured_content["scopes"]) >= {"tools.read", "tools.write"}
    assert len(visits) == 2  # the first authorization and the step-up
    assert "resource=" in visits[0] and "code_challenge_method=S256" in visits[0]
    assert "tools.write" in visits[1]
    assert storage.tokens is not None


def test_the_typescript_sdk_client_logs_in_and_steps_up(oidc: dict[str, str]) -> None:
    exe = node()
    if exe is None or not (TS_PEERS / "node_modules" / "@modelcontextprotocol" / "client").is_dir():
        pytest.skip("the TypeScript SDK peers are not installed (make test installs them)")
    script = __import__("pathlib").Path(__file__).with_name("ts_oauth_client.mjs")
    with served(app_with(chain_for(oidc))) as base:
        done = subprocess.run([exe, str(script), f"{base}/mcp"], capture_output=True, text=True, timeout=120, check=False,
                              cwd=TS_PEERS)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["whoami"]["subject"] == "alice" and report["whoami"]["scopes"] == ["tools.read"]
    assert report["write"] == "wrote hello"
    assert report["authorizations"] == 2
    assert set(report["after"]["scopes"]) >= {"tools.read", "tools.write"}
