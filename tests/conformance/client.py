"""The client the conformance suite drives in client mode: ``client.py <server-url>``.

The suite starts a mock server per scenario and runs this program with the URL as the last argument
and the scenario in ``MCP_CONFORMANCE_SCENARIO`` (plus ``MCP_CONFORMANCE_PROTOCOL_VERSION`` and, for
some scenarios, ``MCP_CONFORMANCE_CONTEXT`` as JSON). The mock records what we send; the checks are
made there. Everything here goes through the public ``anyport.Client``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from anyport import Client, MCPError

MODERN = {"2026-07-28"}
failures: list[str] = []


def log(*parts: object) -> None:
    print("[client]", *parts, file=sys.stderr, flush=True)


def _context() -> dict[str, Any]:
    raw = os.environ.get("MCP_CONFORMANCE_CONTEXT")
    return json.loads(raw) if raw else {}


def _defaults_of(schema: dict[str, Any]) -> dict[str, Any]:
    """The content a user would submit by accepting every default of the form (SEP-1034)."""
    props = schema.get("properties") or {}
    return {name: prop["default"] for name, prop in props.items() if isinstance(prop, dict) and "default" in prop}


def _answer_elicit(params: dict[str, Any]) -> dict[str, Any]:
    content = _defaults_of(params.get("requestedSchema") or {})
    for name, prop in (params.get("requestedSchema") or {}).get("properties", {}).items():
        if name in content or not isinstance(prop, dict):
            continue
        kind = prop.get("type")
        content[name] = True if kind == "boolean" else 1 if kind in ("integer", "number") else "conformance"
    return {"action": "accept", "content": content}


def _answer_sample(params: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": {"type": "text", "text": "conformance"}, "model": "conformance-model", "stopReason": "endTurn"}


def make_client(url: str, **kw: Any) -> Client:
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION") or None
    era = "modern" if version in MODERN else "legacy"
    kw.setdefault("on_elicit", _answer_elicit)
    kw.setdefault("on_sample", _answer_sample)
    kw.setdefault("roots", ["file:///conformance"])
    return Client(url, era=era, protocol_version=version, timeout=10.0, probe_timeout=5.0, **kw)


async def attempt(what: str, step: Callable[[], Awaitable[Any]]) -> Any:
    """One step of a scenario; a failure is recorded and the scenario goes on (the mock judges)."""
    try:
        return await step()
    except (MCPError, OSError, ValueError) as exc:
        failures.append(f"{what}: {type(exc).__name__}: {exc}")
        log("FAILED", what, "-", type(exc).__name__, exc)
        return None


# -- scenarios ---------------------------------------------------------------------------------------------


async def connect_only(url: str) -> None:
    async with make_client(url) as client:
        await attempt("tools/list", client.list_tools)


async def tools_call(url: str) -> None:
    async with make_client(url) as client:
        await attempt("tools/list", client.list_tools)
        await attempt("tools/call add_numbers", lambda: client.call_tool("add_numbers", {"a": 2, "b": 3}))


async def elicitation_defaults(url: str) -> None:
    async with make_client(url) as client:
        await attempt("tools/list", client.list_tools)
        await attempt("tools/call", lambda: client.call_tool("test_client_elicitation_defaults", {}))


async def sse_retry(url: str) -> None:
    async with make_client(url) as client:
        await attempt("tools/call test_reconnection", lambda: client.call_tool("test_reconnection", {}))


async def mrtr_client(url: str) -> None:
    """SEP-2322: the client answers the input requests and echoes requestState; an unrelated call in
    between (made while answering) must carry no MRTR state."""
    holder: dict[str, Client] = {}
    unrelated_done = False

    async def on_elicit(params: dict[str, Any]) -> dict[str, Any]:
        nonlocal unrelated_done
        if not unrelated_done:
            unrelated_done = True
            await attempt("tools/call test_mrtr_unrelated", lambda: holder["c"].call_tool("test_mrtr_unrelated", {}))
        return {"action": "accept", "content": {"confirmed": True}}

    async with make_client(url, on_elicit=on_elicit) as client:
        holder["c"] = client
        await attempt("tools/list", client.list_tools)
        for name in ("test_mrtr_echo_state", "test_mrtr_no_state", "test_mrtr_no_result_type"):
            await attempt(f"tools/call {name}", lambda name=name: client.call_tool(name, {}))


async def exercise_everything(url: str) -> None:
    """List and use every tool, resource and prompt the mock offers (header scenarios, schema echo)."""
    planned = {c["name"]: c.get("arguments", {}) for c in _context().get("toolCalls", []) if isinstance(c, dict)}
    async with make_client(url) as client:
        tools = await attempt("tools/list", client.list_tools) or []
        by_name = {t.name: t for t in tools}
        for tool in tools:
            if tool.name == "json_schema_echo":
                focal = by_name.get("json_schema_2020_12_tool")
                args: dict[str, Any] = {"schema": focal.input_schema if focal else {}}
            else:
                args = planned.get(tool.name, {})
            await attempt(f"tools/call {tool.name}", lambda name=tool.name, args=args: client.call_tool(name, args))
        for name in planned.keys() - by_name.keys():
            await attempt(f"tools/call {name}", lambda name=name: client.call_tool(name, planned[name]))
        if "resources" in client.server_capabilities:
            for res in await attempt("resources/list", client.list_resources) or []:
                await attempt(f"resources/read {res.uri}", lambda uri=res.uri: client.read_resource(uri))
        if "prompts" in client.server_capabilities:
            for prompt in await attempt("prompts/list", client.list_prompts) or []:
                await attempt(f"prompts/get {prompt.name}", lambda name=prompt.name: client.get_prompt(name, {}))


# -- auth/* scenarios: everything through anyport.oauth, headless ------------------------------------------

CIMD_URL = "https://conformance-test.local/client-metadata.json"  # the suite accepts this URL as a client id


def make_auth(scenario: str) -> Any:
    """The ``auth=`` for an auth scenario, from ``MCP_CONFORMANCE_CONTEXT`` where the suite gives credentials."""
    from anyport.oauth import ClientCredentials, EnterpriseAuth, MemoryTokenStore, OAuth, WorkloadIdentity

    ctx = _context()
    store = MemoryTokenStore()  # each run starts clean; FileTokenStore is the default for people
    if scenario == "auth/client-credentials-jwt":
        return ClientCredentials(ctx["client_id"], private_key_pem=ctx["private_key_pem"],
                                 signing_algorithm=ctx.get("signing_algorithm", "ES256"), store=store)
    if scenario == "auth/client-credentials-basic":
        return ClientCredentials(ctx["client_id"], client_secret=ctx["client_secret"], store=store)
    if scenario == "auth/wif-jwt-bearer":
        return WorkloadIdentity(ctx["valid_jwt"], client_id=ctx.get("client_id"), store=store)
    if scenario == "auth/enterprise-managed-authorization":
        return EnterpriseAuth(
            client_id=ctx["client_id"], client_secret=ctx.get("client_secret"),
            idp_token_endpoint=ctx["idp_token_endpoint"], id_token=ctx["idp_id_token"],
            idp_client_id=ctx.get("idp_client_id"), store=store,
        )
    return OAuth(
        client_id=ctx.get("client_id"), client_secret=ctx.get("client_secret"),
        client_metadata_url=CIMD_URL, client_name="anyport-conformance", authorize="follow", store=store,
    )


async def auth_flow(url: str) -> None:
    """Connect with OAuth, list the tools and call the first one (what the auth mocks expect)."""
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    async with make_client(url, auth=make_auth(scenario)) as client:
        tools = await attempt("tools/list", client.list_tools) or []
        if tools:
            await attempt(f"tools/call {tools[0].name}", lambda: client.call_tool(tools[0].name, {}))


SCENARIOS: dict[str, Callable[[str], Awaitable[None]]] = {
    "initialize": connect_only,
    "request-metadata": connect_only,
    "json-schema-ref-no-deref": connect_only,
    "tools_call": tools_call,
    "elicitation-sep1034-client-defaults": elicitation_defaults,
    "sse-retry": sse_retry,
    "sep-2322-client-request-state": mrtr_client,
    "http-standard-headers": exercise_everything,
    "http-custom-headers": exercise_everything,
    "http-invalid-tool-headers": exercise_everything,
    "json-schema-2020-12-preservation": exercise_everything,
}


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: client.py <server-url>  (scenario in MCP_CONFORMANCE_SCENARIO)", file=sys.stderr)
        return 2
    url, scenario = sys.argv[-1], os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    run = SCENARIOS.get(scenario) or (auth_flow if scenario.startswith("auth/") else None)
    if run is None:
        log(f"no handler for scenario {scenario!r}")
        return 2
    log("scenario", scenario, "url", url, "version", os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION"))
    try:
        asyncio.run(asyncio.wait_for(run(url), timeout=25.0))
    except (MCPError, OSError, TimeoutError) as exc:
        log("aborted:", type(exc).__name__, exc)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
