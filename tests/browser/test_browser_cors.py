"""A real browser across origins: headless Chromium loads a page from one loopback origin whose
script (the official TypeScript SDK client, bundled with esbuild) talks to an anyport server on
another port: a tool call over Streamable HTTP in both eras (2026-07-28 and a 2025-11-25 session,
its ``Mcp-Session-Id`` read by the page and ended with DELETE) and the HTTP+SSE transport with
``EventSource``. The same page from an origin not on ``allowed_origins`` is refused: every fetch
fails with a CORS error and no tool runs (T-HTTP-01, T-HTTP-02, T-H26-02, T-SSE-05).

Chromium: ``scripts/ensure-chromium`` (Debian's ``chromium``). Missing on a machine where it could be
installed (root), the test fails; elsewhere it is skipped with the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from anyport import Server
from anyport.transports.http import create_app
from tests.browser._chromium import NODE_MODULES, Chromium, bundle, chromium, find_chromium, static_site
from tests.transports._http_helpers import running


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    executable = find_chromium()
    if executable is None:
        if os.geteuid() == 0:
            pytest.fail("Chromium is missing: run scripts/ensure-chromium (make unit does) to install Debian's chromium")
        pytest.skip("Chromium is not installed and this user cannot install it (scripts/ensure-chromium as root)")
    with chromium(executable) as b:
        yield b


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert (NODE_MODULES / "@modelcontextprotocol" / "client").is_dir(), "run make unit (npm ci --prefix tests/browser)"
    return bundle(tmp_path_factory.mktemp("page"))


def test_a_listed_origin_calls_tools_in_both_eras_and_a_foreign_one_is_refused(browser: Chromium, site: Path) -> None:
    calls: list[str] = []
    server = Server("browser-cors")

    @server.tool()
    def echo(text: str) -> str:
        """Says it back."""
        calls.append(text)
        return text

    with static_site(site) as page, static_site(site) as other:
        with running(create_app(server, allowed_origins=[page])) as mcp:
            results, _ = browser.run_page(f"{page}/index.html?mcp={mcp}")
            assert results["origin"] == page
            modern = results["modern"]
            assert modern == {"text": "hello from modern", "protocolVersion": "2026-07-28", "sessionId": None}, results
            legacy = results["legacy"]
            assert legacy["text"] == "hello from legacy" and legacy["protocolVersion"] == "2025-11-25", results
            assert legacy["sessionId"] and legacy["terminated"] is True, results  # Mcp-Session-Id exposed, DELETE preflighted
            assert results["sse"] == {"posted": 202, "protocolVersion": "2024-11-05"}, results
            assert calls == ["hello from modern", "hello from legacy"]

            calls.clear()
            refused, log = browser.run_page(f"{other}/index.html?mcp={mcp}")
            assert refused["origin"] == other
            # The SDK reports the failed server/discover probe as a failed negotiation, the failed
            # initialize as the fetch's TypeError; the browser's log says why (below).
            assert refused["modern"]["error"].startswith("SdkError: Version negotiation failed"), refused
            assert refused["legacy"] == {"error": "TypeError: Failed to fetch"}, refused
            assert refused["sse"] == {"error": "EventSource failed (CLOSED)"}, refused
            assert calls == []  # refused before MCP
            assert any("CORS policy" in line for line in log), log


def test_a_page_reads_the_401_challenge_and_the_resource_metadata(browser: Chromium, site: Path) -> None:
    """A-01/A-05 from a browser: a server wanting authorization answers the page's request with 401; the
    page reads WWW-Authenticate across origins (exposed by CORS) and fetches the protected-resource
    metadata it names (RFC 9728), where a browser OAuth client starts."""
    from anyport.auth import APIKeys, AuthChain
    from tests.redis_servers import free_port

    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    auth = AuthChain([APIKeys()], resource=resource, authorization_servers=["https://login.example.com"])
    with static_site(site) as page, running(create_app(Server("guarded"), allowed_origins=[page], auth=auth), port=port) as mcp:
        results, log = browser.run_page(f"{page}/index.html?mcp={mcp}&auth=1")
    assert results["challenge"] == {
        "status": 401, "challenged": "Bearer",
        "metadata": {**results["challenge"]["metadata"], "resource": resource, "authorization_servers": ["https://login.example.com"]},
    }, (results, log)
