"""CORS for browser clients against a real uvicorn: preflights answered from the Origin allow-list
of the DNS-rebinding defence (T-HTTP-01, T-HTTP-02, T-H26-02, T-SSE-05) and refused (403) for an
origin not on it, the 2026-07-28 request headers allowed (T-H26-15, T-H26-19), the MCP response
headers exposed on every kind of answer (T-HTTP-33 session id, A-06 challenge), a wildcard never
combined with credentials, preflights never authenticated, ``/healthz`` unaffected."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from anyport import Server
from anyport.auth import APIKeys, AuthChain, new_api_key
from anyport.transports.http import create_app
from tests.auth._serving import served
from tests.transports._http_helpers import POST_HEADERS, client, initialize, modern_body, modern_headers, running

PAGE = "http://127.0.0.1:5173"
EVIL = "http://evil.example"
MCP_REQUEST_HEADERS = (
    "content-type, mcp-protocol-version, mcp-method, mcp-name, mcp-param-region, mcp-session-id, authorization, last-event-id"
)


def make_server() -> Server:
    server = Server("cors")

    @server.tool()
    def echo(text: str) -> str:
        """Says it back."""
        return text

    @server.tool()
    async def later(text: str) -> str:
        """Says it back after a pause (its answer is an SSE stream)."""
        await asyncio.sleep(0.01)
        return text

    return server


@pytest.fixture
def listed() -> Iterator[str]:
    """A server whose operator named the page's origin (``--allowed-origin``)."""
    with running(create_app(make_server(), allowed_origins=[PAGE])) as base:
        yield base


def preflight(c: httpx.Client, path: str, origin: str, method: str = "POST", headers: str = "content-type") -> httpx.Response:
    return c.options(path, headers={"origin": origin, "access-control-request-method": method, "access-control-request-headers": headers})


def names(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def assert_cors(r: httpx.Response, origin: str = PAGE, *, credentials: bool = True) -> None:
    """The answer may be read by a page of ``origin``, with the MCP response headers exposed."""
    assert r.headers.get_list("access-control-allow-origin") == [origin]
    assert ("access-control-allow-credentials" in r.headers) is credentials
    assert {"mcp-session-id", "mcp-protocol-version", "www-authenticate"} <= names(r.headers["access-control-expose-headers"])
    if origin != "*":
        assert "origin" in names(", ".join(r.headers.get_list("vary")))


def test_preflight_from_a_listed_origin_allows_every_mcp_header_T_HTTP_01(listed: str) -> None:
    with client(listed) as c:
        r = preflight(c, "/mcp", PAGE, headers=MCP_REQUEST_HEADERS)
        assert r.status_code == 204 and r.content == b""
        assert r.headers["access-control-allow-origin"] == PAGE
        assert r.headers["access-control-allow-credentials"] == "true"
        assert {"get", "post", "delete"} <= names(r.headers["access-control-allow-methods"])
        assert names(r.headers["access-control-allow-headers"]) == names(MCP_REQUEST_HEADERS)  # T-H26-15, T-H26-19
        assert int(r.headers["access-control-max-age"]) >= 600  # cached by the browser
        assert "origin" in names(r.headers["vary"])
        for path in ("/sse", "/messages/", "/messages"):  # the HTTP+SSE endpoints (T-SSE-05)
            r = preflight(c, path, PAGE)
            assert r.status_code == 204 and r.headers["access-control-allow-origin"] == PAGE
        # Private Network Access (a public page calling a server on loopback): allowed for a listed origin.
        r = c.options("/mcp", headers={"origin": PAGE, "access-control-request-method": "POST",
                                       "access-control-request-private-network": "true"})
        assert r.status_code == 204 and r.headers["access-control-allow-private-network"] == "true"
        assert "access-control-allow-private-network" not in preflight(c, "/mcp", PAGE).headers
        # A header the server never reads is not allowed (the browser refuses the request).
        r = preflight(c, "/mcp", PAGE, headers="content-type, x-something-else")
        assert names(r.headers["access-control-allow-headers"]) == {"content-type"}


def test_preflight_from_an_origin_not_on_the_list_is_403_T_HTTP_02(listed: str) -> None:
    with client(listed) as c:
        for origin in (EVIL, "http://127.0.0.1:5174", "null"):
            r = preflight(c, "/mcp", origin, headers=MCP_REQUEST_HEADERS)
            assert r.status_code == 403
            assert r.json()["error"]["message"] == "Forbidden: Origin not allowed"
            assert not any(name.startswith("access-control-") for name in r.headers)
        # The DNS-rebinding defence holds for preflights too: a foreign Host is refused.
        r = c.options("/mcp", headers={"origin": PAGE, "access-control-request-method": "POST", "host": "attacker.example"})
        assert r.status_code == 403 and r.json()["error"]["message"] == "Forbidden: Host not allowed"
        # And the real request from that origin is refused before MCP sees it, unreadable to the page.
        r = c.post("/mcp", headers={**POST_HEADERS, "origin": EVIL}, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers


def test_exposed_headers_on_every_kind_of_answer_T_HTTP_33(listed: str) -> None:
    with client(listed) as c:
        # Legacy era: initialize, with the session id the page must read.
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "page", "version": "1"}}}
        r = c.post("/mcp", headers={**POST_HEADERS, "origin": PAGE}, json=body)
        assert r.status_code == 200 and r.headers["mcp-session-id"]
        assert_cors(r)
        session = {**POST_HEADERS, "origin": PAGE, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        r = c.post("/mcp", headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert r.status_code == 202
        assert_cors(r)
        # An answer streamed as SSE.
        r = c.post("/mcp", headers=session, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "later", "arguments": {"text": "x"}}})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert_cors(r)
        # The standalone GET stream (T-HTTP-19).
        with c.stream("GET", "/mcp", headers={**session, "accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            assert_cors(stream)
        # A refusal is readable too (the page sees why).
        r = c.post("/mcp", headers={**session, "mcp-session-id": "nope"}, json={"jsonrpc": "2.0", "id": 2, "method": "ping"})
        assert r.status_code == 404
        assert_cors(r)
        r = c.delete("/mcp", headers=session)
        assert r.status_code == 204
        assert_cors(r)
        # 2026-07-28: a stateless POST with its request headers.
        r = c.post("/mcp", headers={**modern_headers("tools/call", "echo"), "origin": PAGE},
                   json=modern_body(3, "tools/call", {"name": "echo", "arguments": {"text": "hi"}}))
        assert r.status_code == 200
        assert_cors(r)
        # Without Origin (every non-browser client) nothing changes.
        r = c.post("/mcp", headers=modern_headers("tools/call", "echo"), json=modern_body(4, "tools/call", {"name": "echo", "arguments": {"text": "hi"}}))
        assert r.status_code == 200 and not any(name.startswith("access-control-") or name == "vary" for name in r.headers)


def test_http_sse_from_a_listed_origin_T_SSE_05(listed: str) -> None:
    with client(listed) as c:
        with c.stream("GET", "/sse", headers={"accept": "text/event-stream", "origin": PAGE}) as stream:
            assert stream.status_code == 200
            assert_cors(stream)
            lines = stream.iter_lines()
            endpoint = next(line for line in lines if line.startswith("data:"))[5:].strip()
            r = c.post(endpoint, headers={"content-type": "application/json", "origin": PAGE},
                       json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                             "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "p", "version": "1"}}})
            assert r.status_code == 202
            assert_cors(r)
        with c.stream("GET", "/sse", headers={"accept": "text/event-stream", "origin": EVIL}) as stream:
            assert stream.status_code == 403 and "access-control-allow-origin" not in stream.headers


def test_wildcard_is_never_combined_with_credentials_T_HTTP_02() -> None:
    with running(create_app(make_server(), allowed_origins=["*"], stateless=True, json_response=True)) as base, client(base) as c:
        r = preflight(c, "/mcp", EVIL, headers=MCP_REQUEST_HEADERS)
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == "*" and "access-control-allow-credentials" not in r.headers
        # "*" in Allow-Headers would not cover Authorization: the names are listed.
        assert "authorization" in names(r.headers["access-control-allow-headers"])
        r = c.post("/mcp", headers={**modern_headers("tools/call", "echo"), "origin": EVIL},
                   json=modern_body(1, "tools/call", {"name": "echo", "arguments": {"text": "hi"}}))
        assert r.status_code == 200
        assert_cors(r, "*", credentials=False)


def test_the_default_list_is_the_local_origins_without_credentials_T_HTTP_02() -> None:
    with running(create_app(make_server())) as base, client(base) as c:
        r = preflight(c, "/mcp", "http://localhost:3000")
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert "access-control-allow-credentials" not in r.headers  # only for origins the operator named
        assert preflight(c, "/mcp", EVIL).status_code == 403
        headers = initialize(c)
        r = c.post("/mcp", headers={**headers, "origin": "http://[::1]:8080"}, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 200
        assert_cors(r, "http://[::1]:8080", credentials=False)


def test_healthz_and_non_preflight_options_are_unaffected(listed: str) -> None:
    with client(listed) as c:
        for origin in (PAGE, EVIL):
            r = c.options("/healthz", headers={"origin": origin, "access-control-request-method": "GET"})
            assert r.status_code == 200 and r.json() == {"status": "ok"}
            assert "access-control-allow-origin" not in r.headers
        # An OPTIONS that is no preflight is an ordinary request: the method is not allowed.
        r = c.options("/mcp", headers={"origin": PAGE})
        assert r.status_code == 405
        assert_cors(r)
        # A preflight to a path that is no MCP endpoint is not answered as one.
        assert preflight(c, "/elsewhere", PAGE).status_code == 404


@pytest.fixture
def with_auth() -> Iterator[tuple[str, str]]:
    key, entry = new_api_key("browser", ["tools.read"])

    def chain(resource: str) -> Any:
        return AuthChain([APIKeys([entry])], resource=resource, authorization_servers=["https://as.example"])

    def make_app(base: str) -> Any:
        return create_app(make_server(), allowed_origins=[PAGE], stateless=True, json_response=True, auth=chain(base + "/mcp"))

    with served(make_app) as base:
        yield base, key


def test_preflights_are_never_authenticated_and_a_401_is_readable_A_06(with_auth: tuple[str, str]) -> None:
    base, key = with_auth
    call = modern_body(1, "tools/call", {"name": "echo", "arguments": {"text": "hi"}})
    with client(base) as c:
        r = preflight(c, "/mcp", PAGE, headers="authorization, content-type, mcp-protocol-version, mcp-method, mcp-name")
        assert r.status_code == 204 and "authorization" in names(r.headers["access-control-allow-headers"])
        assert "www-authenticate" not in r.headers
        assert preflight(c, "/mcp", EVIL).status_code == 403  # Origin before anything else
        r = c.post("/mcp", headers={**modern_headers("tools/call", "echo"), "origin": PAGE}, json=call)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert_cors(r)  # the page can read the challenge and start OAuth
        r = c.post("/mcp", headers={**modern_headers("tools/call", "echo"), "origin": PAGE, "authorization": f"Bearer {key}"}, json=call)
        assert r.status_code == 200 and r.json()["result"]["content"][0]["text"] == "hi"
        assert_cors(r)
        # The protected-resource metadata: public, one Allow-Origin ("*"), its preflight answered.
        r = c.get("/.well-known/oauth-protected-resource/mcp", headers={"origin": PAGE})
        assert r.status_code == 200 and r.headers.get_list("access-control-allow-origin") == ["*"]
        r = preflight(c, "/.well-known/oauth-protected-resource/mcp", PAGE, method="GET", headers="mcp-protocol-version")
        assert r.status_code == 204 and names(r.headers["access-control-allow-headers"]) == {"mcp-protocol-version"}
