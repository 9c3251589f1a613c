"""Browser and headless modes, login(), and the error paths a user meets.

Requirement IDs: /work/shared/spec/DIGEST.md §14 (A-*).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from anyport import AuthError, Client, OAuthDiscoveryError, OAuthRegistrationError, OAuthResponseError
from anyport.oauth import BrowserAuthorizer, MemoryTokenStore, OAuth, login
from tests.oauth._servers import Protected, ToyAS

Servers = tuple[ToyAS, Protected]


async def test_browser_mode_uses_a_loopback_listener(servers: Servers) -> None:
    """A-21/RFC 8252: the redirect URI is http://127.0.0.1:<random port>/callback; the 'browser'
    (here: httpx following the redirect to the listener) completes the flow."""
    auth, resource = servers
    opened: list[str] = []

    def browser(url: str) -> None:
        opened.append(url)

        async def visit() -> None:
            async with httpx.AsyncClient(follow_redirects=True, timeout=10) as http:
                r = await http.get(url)
                assert r.status_code == 200 and "close this window" in r.text

        asyncio.get_running_loop().create_task(visit())

    flow = OAuth(authorizer=BrowserAuthorizer(open_browser=browser, timeout=10), store=MemoryTokenStore())
    async with Client(resource.url, auth=flow, era="legacy", timeout=10) as c:
        await c.list_tools()
    (authz,) = auth.paths("/authorize")
    redirect = authz.query["redirect_uri"]
    assert redirect.startswith("http://127.0.0.1:") and redirect.endswith("/callback") and len(opened) == 1
    assert auth.paths("/register")[0].form["redirect_uris"] == [redirect]
    posts = [s for s in resource.seen if s.method == "POST" and s.path == "/mcp"]
    bare = [s for s in posts if "authorization" not in s.headers]
    assert len(bare) == 1  # the one probe (a ping); then authorized before the handshake
    assert posts[0] is bare[0] and all("authorization" in s.headers for s in posts[1:])


async def test_browser_wait_is_bounded() -> None:
    """Nobody comes back: a clear error after the timeout, the listener closed."""
    authorizer = BrowserAuthorizer(open_browser=lambda url: None, timeout=0.2)
    redirect = await authorizer.redirect_uri()
    with pytest.raises(OAuthResponseError, match="within"):
        await authorizer.authorize("https://as.example/authorize?x=1")
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=2) as http:
            await http.get(redirect)


async def test_headless_callback_gets_the_url(servers: Servers) -> None:
    """Headless mode: the caller's callback receives the authorization URL and returns the redirect."""
    from anyport.oauth import follow_redirect

    auth, resource = servers
    urls: list[str] = []

    async def callback(url: str) -> str:
        urls.append(url)
        return await follow_redirect(url)

    async with Client(resource.url, auth=OAuth(authorize=callback, store=MemoryTokenStore()), timeout=10) as c:
        await c.list_tools()
    assert len(urls) == 1 and urls[0].startswith(auth.issuer + "/authorize?")


async def test_login_stores_tokens_for_a_later_client(servers: Servers) -> None:
    """login(url) (what `anyport call URL --login` runs): authorize without an MCP request; a later
    Client with the same store needs no new authorization."""
    auth, resource = servers
    store = MemoryTokenStore()
    tokens = await login(resource.url, auth=OAuth(authorize="follow", store=store))
    assert tokens.access_token == "at-3"
    assert len([s for s in resource.seen if s.method == "POST"]) == 1  # the probe that met the 401
    async with Client(resource.url, auth=OAuth(authorize="follow", store=store), timeout=10) as c:
        await c.list_tools()
    assert len(auth.paths("/authorize")) == 1


async def test_no_way_to_register_is_explained(servers: Servers) -> None:
    """A-14 step 4: no pre-registration, no CIMD, no DCR -> OAuthRegistrationError saying what to do."""
    auth, resource = servers
    original = auth.metadata

    def without_dcr() -> dict[str, Any]:
        md = original()
        md.pop("registration_endpoint")
        return md

    auth.metadata = without_dcr  # type: ignore[method-assign]
    with pytest.raises(OAuthRegistrationError, match="pass its client_id"):
        async with Client(resource.url, auth=OAuth(authorize="follow", store=MemoryTokenStore()), timeout=10):
            pass


async def test_no_pkce_s256_no_authorization(servers: Servers) -> None:
    """A-20: metadata without S256 in code_challenge_methods_supported -> refuse to proceed."""
    auth, resource = servers
    original = auth.metadata

    def without_pkce() -> dict[str, Any]:
        md = original()
        md.pop("code_challenge_methods_supported")
        return md

    auth.metadata = without_pkce  # type: ignore[method-assign]
    with pytest.raises(OAuthDiscoveryError, match="A-20"):
        async with Client(resource.url, auth=OAuth(authorize="follow", store=MemoryTokenStore()), timeout=10):
            pass
    assert not auth.paths("/authorize")


async def test_concurrent_requests_share_one_grant(servers: Servers) -> None:
    """Many requests meet the same 401 (modern era: one POST each): one authorization serves them all."""
    auth, resource = servers
    async with Client(resource.url, auth=OAuth(authorize="follow", store=MemoryTokenStore()), era="modern", timeout=10) as c:
        auth.live.clear()
        auth.refresh.clear()
        await asyncio.gather(*(c.list_tools() for _ in range(5)))
    assert len(auth.paths("/authorize")) == 2  # the first connect, then one for the five


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="https"):
        OAuth(client_metadata_url="http://insecure.example/md.json")
    with pytest.raises(ValueError, match="not both"):
        Client("http://127.0.0.1:1/mcp", auth=OAuth(), httpx_client=httpx.AsyncClient())
    with pytest.raises(ValueError, match="http"):
        Client(["python", "server.py"], auth=OAuth())


async def test_the_http_sse_transport_carries_the_token_too(servers: Servers) -> None:
    """A-30 on the 2024-11-05 HTTP+SSE transport: the GET event stream and every POST to the
    endpoint it names (same origin) carry the token."""
    auth, resource = servers
    resource.prm_resource = resource.base  # one PRM for the whole origin: /mcp and /sse alike
    flow = OAuth(authorize="follow", store=MemoryTokenStore())
    async with Client(f"{resource.base}/sse", auth=flow, transport="sse", timeout=10) as c:
        assert c.transport == "sse"
        await c.list_tools()
    sse = [s for s in resource.seen if s.path != "/mcp" and not s.path.startswith("/.well-known")]
    assert {s.method for s in sse} == {"GET", "POST"}
    authed = [s for s in sse if "authorization" in s.headers]
    assert authed and all(s.headers["authorization"].startswith("Bearer at-") for s in authed)
    assert {s.method for s in authed} == {"GET", "POST"}
    assert auth.paths("/authorize")[0].query["resource"] == resource.base


class BrokenStore:
    async def get(self, key: str) -> dict[str, Any] | None:
        raise OSError("disk on fire")

    async def set(self, key: str, value: dict[str, Any] | None) -> None:
        raise OSError("disk on fire")


async def test_a_failing_store_is_an_auth_error_not_a_hang(servers: Servers) -> None:
    _, resource = servers
    with pytest.raises(AuthError, match="disk on fire"):
        async with Client(resource.url, auth=OAuth(authorize="follow", store=BrokenStore()), timeout=10):
            pass


async def test_browser_listener_keeps_its_port_between_authorizations() -> None:
    """A step-up in browser mode reuses the redirect URI, so a registered client stays valid (A-21)."""
    authorizer = BrowserAuthorizer(open_browser=lambda url: None, timeout=0.1)
    first = await authorizer.redirect_uri()
    await authorizer.aclose()
    assert await authorizer.redirect_uri() == first
    await authorizer.aclose()


def test_redirect_uris_must_be_https_or_loopback() -> None:
    """A-21: redirect URIs are localhost or https."""
    with pytest.raises(ValueError, match="A-21"):
        OAuth(authorize="follow", redirect_uri="http://app.example/callback")
    OAuth(authorize="follow", redirect_uri="https://app.example/callback")
    with pytest.raises(ValueError, match="A-15"):
        OAuth(client_metadata_url="https://app.example")


async def test_an_interactive_flow_leaves_an_open_server_alone(servers: Servers) -> None:
    """prepare(): a server that does not answer the probe with 401 gets no authorization at all."""
    from anyport import Server
    from anyport.transports.http import create_app
    from tests.transports._http_helpers import running

    opened: list[str] = []
    open_server = Server("open")
    with running(create_app(open_server)) as base:
        flow = OAuth(authorizer=BrowserAuthorizer(open_browser=opened.append, timeout=1), store=MemoryTokenStore())
        async with Client(f"{base}/mcp", auth=flow, timeout=10) as c:
            await c.list_tools()
    assert opened == []


async def test_login_to_an_open_server_says_there_is_nothing_to_do() -> None:
    from anyport import Server
    from anyport.transports.http import create_app
    from tests.transports._http_helpers import running

    with running(create_app(Server("open"))) as base:
        with pytest.raises(AuthError, match="nothing to log in to"):
            await login(f"{base}/mcp", auth=OAuth(authorize="follow", store=MemoryTokenStore()))


async def test_plain_http_endpoints_off_loopback_are_refused(servers: Servers) -> None:
    """A-21: authorization-server endpoints must be https (plain http only on loopback hosts)."""
    auth, resource = servers
    original = auth.metadata

    def insecure() -> dict[str, Any]:
        md = original()
        md["authorization_endpoint"] = "http://as.example/authorize"
        return md

    auth.metadata = insecure  # type: ignore[method-assign]
    with pytest.raises(OAuthDiscoveryError, match="https"):
        async with Client(resource.url, auth=OAuth(authorize="follow", store=MemoryTokenStore()), timeout=10):
            pass
    assert not auth.paths("/register")


async def test_a_refused_registration_is_explained() -> None:
    """A-17: the AS refuses DCR (e.g. an OIDC redirect-URI rule): OAuthRegistrationError with its reason."""
    from anyport.oauth._discovery import AuthServer
    from anyport.oauth._register import register
    from tests.transports._http_helpers import running

    async def refusing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b'{"error":"invalid_redirect_uri","error_description":"loopback redirects are not allowed"}'
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    with running(refusing) as base:
        server = AuthServer(base, {"issuer": base, "registration_endpoint": f"{base}/register"})
        async with httpx.AsyncClient(timeout=10) as http:
            with pytest.raises(OAuthRegistrationError, match="loopback redirects are not allowed"):
                await register(http, server, MemoryTokenStore(), "http://127.0.0.1:1/cb", client_id=None,
                               client_secret=None, auth_method=None, client_metadata_url=None, client_name="t")
