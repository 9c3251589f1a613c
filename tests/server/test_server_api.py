"""The server API through the public test kit (in-memory pair), in both eras."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from anyport import (
    Client,
    Context,
    InvalidParamsError,
    MethodNotFoundError,
    MissingCapabilityError,
    Server,
    ToolError,
    ToolResult,
)
from anyport.protocol import LATEST_VERSION, META_PROTOCOL_VERSION
from anyport.testing import connect, memory_pair

ERAS = ["legacy", "modern"]


class Point(BaseModel):
    x: int
    y: int


class Ok(BaseModel):
    ok: bool


def make_app(**kw: Any) -> Server:
    app = Server("t", version="9.9", **kw)

    @app.tool(title="Adder", annotations={"readOnlyHint": True})
    def add(a: int, b: Annotated[int, Field(description="second")] = 1) -> int:
        """Add."""
        return a + b

    @app.tool()
    async def move(p: Point, dx: int = 0) -> Point:
        return Point(x=p.x + dx, y=p.y)

    @app.tool()
    async def hello() -> str:
        return "hi"

    @app.tool()
    async def broken() -> str:
        raise RuntimeError("kaput")

    @app.tool()
    async def refused() -> str:
        raise ToolError("not allowed")

    @app.tool()
    async def custom() -> ToolResult:
        return ToolResult(content=["a", "b"], structured_content={"n": 2})

    @app.tool()
    async def confirm(ctx: Context) -> str:
        before = ctx.request.params.get("arguments")
        r = await ctx.elicit("sure?", Ok)
        return f"{r.action}:{getattr(r.content, 'ok', None)}:{before}"

    @app.tool()
    async def chatty(ctx: Context) -> str:
        for level in ("debug", "info", "warning", "error"):
            await ctx.log(level, level)
        await ctx.report_progress(2)
        await ctx.report_progress(1)  # U-08: not increasing, dropped
        await ctx.report_progress(3)
        return "done"

    @app.resource("mem://fixed")
    def fixed() -> str:
        return "fixed"

    @app.resource("mem://bin", mime_type="image/png")
    def binary() -> bytes:
        return b"\x89PNG"

    @app.resource("mem://users/{user}/files/{name}")
    def user_file(user: str, name: str) -> dict[str, str]:
        return {"user": user, "name": name}

    @app.prompt()
    def ask(topic: str, tone: str = "plain") -> str:
        return f"{tone}:{topic}"

    @app.completion(prompt="ask", argument="topic")
    def many(value: str, context: dict[str, str]) -> list[str]:
        return [f"{value}{i}" for i in range(150)]

    return app


async def test_input_schema_from_type_hints_F_TOOL_04() -> None:
    """F-TOOL-04, J-17: object root, required from defaults, Field descriptions, models via $defs; ctx not in schema."""
    async with connect(make_app(), era="legacy") as c:
        tools = {t.name: t for t in await c.list_tools()}
    add = tools["add"].input_schema
    assert add["type"] == "object" and add["required"] == ["a"]
    assert add["properties"]["a"] == {"type": "integer"}
    assert add["properties"]["b"]["description"] == "second" and add["properties"]["b"]["default"] == 1
    assert tools["add"].title == "Adder" and tools["add"].annotations == {"readOnlyHint": True}
    assert tools["add"].description == "Add."
    assert tools["hello"].input_schema == {"type": "object", "properties": {}, "additionalProperties": False}
    assert "ctx" not in tools["confirm"].input_schema["properties"]
    move = tools["move"].input_schema
    assert move["properties"]["p"] == {"$ref": "#/$defs/Point"} and "Point" in move["$defs"]


@pytest.mark.parametrize(("version", "structured"), [("2025-03-26", False), ("2025-06-18", True), ("2025-11-25", True)])
async def test_structured_output_gated_by_revision_F_TOOL_06(version: str, structured: bool) -> None:
    """F-TOOL-06: outputSchema and structuredContent only from 2025-06-18; the text block always."""
    async with connect(make_app(), era="legacy", protocol_version=version) as c:
        tools = {t.name: t for t in await c.list_tools()}
        r = await c.call_tool("move", {"p": {"x": 1, "y": 2}, "dx": 3})
        n = await c.call_tool("add", {"a": 2})
    assert (tools["move"].output_schema is not None) is structured
    assert tools["hello"].output_schema is None
    assert r.text == '{"x":4,"y":2}'
    assert r.structured_content == ({"x": 4, "y": 2} if structured else None)
    assert n.structured_content == ({"result": 3} if structured else None)
    if structured:
        assert tools["add"].output_schema == {"type": "object", "properties": {"result": {"type": "integer"}}, "required": ["result"]}


@pytest.mark.parametrize("era", ERAS)
async def test_tool_errors_F_TOOL_07(era: str) -> None:
    """F-TOOL-07: bad arguments and failures are isError results; an unknown tool is -32602."""
    async with connect(make_app(), era=era) as c:
        bad = await c.call_tool("add", {"a": "many"})
        broken = await c.call_tool("broken")
        refused = await c.call_tool("refused")
        with pytest.raises(InvalidParamsError) as unknown:
            await c.call_tool("nope")
    assert bad.is_error and "Invalid arguments for tool add" in bad.text and "a:" in bad.text
    assert broken.is_error and broken.text == "kaput"
    assert refused.is_error and refused.text == "not allowed"
    assert unknown.value.code == -32602 and unknown.value.remote is True


async def test_tool_result_gives_full_control() -> None:
    async with connect(make_app(), era="modern") as c:
        r = await c.call_tool("custom")
    assert [b["text"] for b in r.content] == ["a", "b"] and r.structured_content == {"n": 2}


def test_registration_rejects_bad_tools_F_TOOL_05() -> None:
    """F-TOOL-05: names of 1-128 chars from [A-Za-z0-9_.-], unique."""
    app = Server("t")

    async def f() -> str:
        return ""

    with pytest.raises(ValueError, match="invalid tool name"):
        app.add_tool(f, name="has space")
    with pytest.raises(ValueError, match="invalid tool name"):
        app.add_tool(f, name="x" * 129)
    app.add_tool(f, name="ok.name-1")
    with pytest.raises(ValueError, match="already registered"):
        app.add_tool(f, name="ok.name-1")
    with pytest.raises(TypeError, match="args"):
        app.add_tool(lambda *a: None, name="star")


@pytest.mark.parametrize("era", ERAS)
async def test_pagination_with_opaque_cursors_U_13_U_15(era: str) -> None:
    """U-13: pages with nextCursor; U-15: an invalid cursor is -32602; the client walks every page."""
    app = make_app(page_size=2)
    async with connect(app, era=era) as c:
        names = [t.name for t in await c.list_tools()]
        first = await c.request("tools/list")
        second = await c.request("tools/list", {"cursor": first["nextCursor"]})
        with pytest.raises(InvalidParamsError):
            await c.request("tools/list", {"cursor": "garbage!"})
        with pytest.raises(InvalidParamsError):
            await c.request("tools/list", {"cursor": 7})
    assert len(names) == 8 and len(first["tools"]) == 2
    assert [t["name"] for t in second["tools"]] == names[2:4]


@pytest.mark.parametrize(("era", "code"), [("legacy", -32002), ("modern", -32602)])
async def test_resources_and_templates_F_RES_02_F_RES_04(era: str, code: int) -> None:
    """F-RES-02: list, templates, read (text, blob, JSON); F-RES-04: the not-found code per revision."""
    async with connect(make_app(), era=era) as c:
        uris = [r.uri for r in await c.list_resources()]
        templates = [t.uri_template for t in await c.list_resource_templates()]
        text = await c.read_resource("mem://fixed")
        blob = await c.read_resource("mem://bin")
        tpl = await c.read_resource("mem://users/ada/files/a%20b.txt")
        with pytest.raises(InvalidParamsError) as missing:
            await c.read_resource("mem://users/ada")
    assert uris == ["mem://fixed", "mem://bin"] and templates == ["mem://users/{user}/files/{name}"]
    assert text.contents == [{"uri": "mem://fixed", "text": "fixed", "mimeType": "text/plain"}]
    assert blob.blob == b"\x89PNG" and blob.contents[0]["mimeType"] == "image/png"
    assert tpl.text == '{"user":"ada","name":"a b.txt"}' and tpl.contents[0]["mimeType"] == "application/json"
    assert missing.value.code == code and missing.value.data == {"uri": "mem://users/ada"}


@pytest.mark.parametrize("era", ERAS)
async def test_prompts_F_PROMPT_01_02(era: str) -> None:
    """F-PROMPT-01: arguments from parameters; F-PROMPT-02: unknown prompt or missing argument is -32602."""
    async with connect(make_app(), era=era) as c:
        prompts = await c.list_prompts()
        got = await c.get_prompt("ask", {"topic": "x"})
        with pytest.raises(InvalidParamsError):
            await c.get_prompt("ask", {})
        with pytest.raises(InvalidParamsError):
            await c.get_prompt("nope")
    assert prompts[0].arguments == [{"name": "topic", "required": True}, {"name": "tone", "required": False}]
    assert got.messages == [{"role": "user", "content": {"type": "text", "text": "plain:x"}}]


async def test_completion_caps_values_at_100_U_17() -> None:
    """U-17: at most 100 values, with total and hasMore; an unknown prompt is -32602."""
    async with connect(make_app(), era="legacy") as c:
        r = await c.complete({"type": "ref/prompt", "name": "ask"}, "topic", "t")
        none = await c.complete({"type": "ref/prompt", "name": "ask"}, "tone", "")
        with pytest.raises(InvalidParamsError):
            await c.complete({"type": "ref/prompt", "name": "nope"}, "topic", "")
    assert len(r.values) == 100 and r.total == 150 and r.has_more is True and r.values[0] == "t0"
    assert none.values == []


async def test_modern_results_carry_result_type_cache_hints_and_server_info_J_16_U_18_M_07() -> None:
    app = make_app(cache_ttl_ms=5000)
    async with connect(app, era="modern") as c:
        listed = await c.request("tools/list")
        called = await c.request("tools/call", {"name": "hello", "arguments": {}})
        read = await c.request("resources/read", {"uri": "mem://fixed"})
    for r in (listed, called, read):
        assert r["resultType"] == "complete"
        assert r["_meta"]["io.modelcontextprotocol/serverInfo"] == {"name": "t", "version": "9.9"}
    assert listed["ttlMs"] == 5000 and listed["cacheScope"] == "public"
    assert read["ttlMs"] == 5000 and "ttlMs" not in called  # U-18: only cacheable results


async def test_legacy_results_have_no_modern_fields() -> None:
    async with connect(make_app(), era="legacy") as c:
        listed = await c.request("tools/list")
    assert "resultType" not in listed and "ttlMs" not in listed and "_meta" not in listed


@pytest.mark.parametrize("era", ERAS)
async def test_elicitation_both_eras_and_accept_decline(era: str) -> None:
    """Legacy: elicitation/create request; modern: an MRTR round (M-14, M-18). Same tool code."""
    answers = iter([{"action": "accept", "content": {"ok": True}}, {"action": "decline"}])
    async with connect(make_app(), era=era, on_elicit=lambda p: next(answers)) as c:
        first = await c.call_tool("confirm")
        second = await c.call_tool("confirm")
    assert first.text == "accept:True:{}" and second.text == "decline:None:{}"


async def test_mrtr_round_shape_and_tampered_state_M_15_M_16() -> None:
    """M-15: inputRequests + requestState; M-16: an altered or foreign state is -32602; a retry without
    answers gets a new input_required (M-17)."""
    app = make_app()
    async with connect(app, era="modern", on_elicit=lambda p: {"action": "accept", "content": {"ok": True}}) as c:
        meta = c._conn.modern_meta()  # the raw session lets us play a misbehaving client
        session = c._session
        assert session is not None
        first = await session.request("tools/call", {"name": "confirm", "arguments": {}, "_meta": meta})
        assert first["resultType"] == "input_required"
        (key, asked), = first["inputRequests"].items()
        assert asked["method"] == "elicitation/create" and asked["params"]["message"] == "sure?"
        state = first["requestState"]
        again = await session.request("tools/call", {"name": "confirm", "arguments": {}, "_meta": meta, "requestState": state})
        assert again["resultType"] == "input_required"
        tampered = state[:-4] + ("AAAA" if state[-4:] != "AAAA" else "BBBB")
        with pytest.raises(InvalidParamsError):
            await session.request("tools/call", {"name": "confirm", "arguments": {}, "_meta": meta, "requestState": tampered,
                                                 "inputResponses": {key: {"action": "accept", "content": {"ok": True}}}})
        with pytest.raises(InvalidParamsError):  # bound to the tool and its arguments
            await session.request("tools/call", {"name": "confirm", "arguments": {"x": 1}, "_meta": meta, "requestState": state})
        done = await session.request("tools/call", {"name": "confirm", "arguments": {}, "_meta": meta, "requestState": state,
                                                    "inputResponses": {key: {"action": "accept", "content": {"ok": True}}}})
        assert done["resultType"] == "complete" and done["content"][0]["text"] == "accept:True:{}"


@pytest.mark.parametrize("era", ERAS)
async def test_missing_client_capability_M_06(era: str) -> None:
    """M-06 / M-15: a handler needing a capability the client did not declare fails with -32021."""
    async with connect(make_app(), era=era) as c:  # no on_elicit: no elicitation capability
        with pytest.raises(MissingCapabilityError) as exc:
            await c.call_tool("confirm")
    assert exc.value.code == -32021 and exc.value.data == {"requiredCapabilities": {"elicitation": {}}}


async def test_logging_levels_legacy_setlevel_U_11() -> None:
    """U-10/U-11: logging/setLevel filters lower levels; progress strictly increases (U-08)."""
    logs: list[dict[str, Any]] = []
    events: list[float] = []
    async with connect(make_app(), era="legacy", on_log=logs.append, log_level="warning") as c:
        await c.call_tool("chatty", on_progress=lambda p, t, m: events.append(p))
        await asyncio.sleep(0.01)
        with pytest.raises(InvalidParamsError):
            await c.request("logging/setLevel", {"level": "loud"})
    assert [m["level"] for m in logs] == ["warning", "error"]
    assert events == [2, 3]


async def test_logging_modern_only_with_request_level_M_19() -> None:
    """M-19: no notifications/message without the request's logLevel; at/above it when given."""
    logs: list[dict[str, Any]] = []
    async with connect(make_app(), era="modern", on_log=logs.append) as c:
        await c.call_tool("chatty")
        await asyncio.sleep(0.01)
        assert logs == []
        await c.set_logging_level("info")
        await c.call_tool("chatty")
        await asyncio.sleep(0.01)
    assert [m["level"] for m in logs] == ["info", "warning", "error"]


async def test_modern_rejects_legacy_only_methods_and_unknown_methods() -> None:
    async with connect(make_app(), era="modern") as c:
        with pytest.raises(MethodNotFoundError):
            await c.request("logging/setLevel", {"level": "info"})
        with pytest.raises(MethodNotFoundError):
            await c.request("no/such")


async def test_server_discover_lists_versions_M_09() -> None:
    async with connect(make_app(instructions="be nice"), era="modern") as c:
        r = await c.request("server/discover")
    assert r["supportedVersions"][0] == LATEST_VERSION and "2024-11-05" in r["supportedVersions"]
    assert r["instructions"] == "be nice" and r["capabilities"]["tools"] == {"listChanged": True}
    assert "subscribe" not in r["capabilities"]["resources"]
    assert r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "t"


async def test_cancellation_stops_the_handler_U_04() -> None:
    """U-04: the handler is cancelled and no response is sent for it; the session keeps serving."""
    app = Server("c")
    seen = asyncio.Event()
    started = asyncio.Event()

    @app.tool()
    async def wait() -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.set()
            raise
        return "late"

    async with connect(app, era="legacy") as c:
        task = asyncio.ensure_future(c.call_tool("wait"))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        await asyncio.wait_for(seen.wait(), 5)
        assert (await c.request("tools/list"))["tools"][0]["name"] == "wait"


async def test_timeout_sends_cancellation_L_16() -> None:
    app = Server("c")
    cancelled = asyncio.Event()

    @app.tool()
    async def slow() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    async with connect(app, era="modern") as c:
        with pytest.raises(TimeoutError):
            await c.call_tool("slow", timeout=0.1)
        await asyncio.wait_for(cancelled.wait(), 5)


async def test_raw_stream_dual_era_on_one_connection_M_12() -> None:
    """M-12: one connection serves a modern request and, after initialize, legacy ones."""
    from anyport.protocol import dumps, loads

    app = make_app()
    client_end, server_end = memory_pair()
    task = asyncio.ensure_future(app.serve(server_end))
    meta = {META_PROTOCOL_VERSION: LATEST_VERSION, "io.modelcontextprotocol/clientCapabilities": {}}
    await client_end.send(dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "hello", "_meta": meta}}))
    await client_end.send(dumps({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}}))
    await client_end.send(dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    await client_end.send(dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "hello"}}))
    got = {}
    for _ in range(3):
        msg = loads(await asyncio.wait_for(client_end.receive(), 5))  # type: ignore[arg-type]
        got[msg["id"]] = msg["result"]
    await client_end.aclose()
    await asyncio.wait_for(task, 5)
    assert got[1]["resultType"] == "complete" and got[1]["content"][0]["text"] == "hi"
    assert got[2]["protocolVersion"] == "2025-06-18"
    assert got[3] == {"content": [{"type": "text", "text": "hi"}], "isError": False}


async def test_client_rejects_unknown_era_and_level() -> None:
    with pytest.raises(ValueError):
        Client(make_app(), era="future")
    with pytest.raises(ValueError):
        Client(make_app(), log_level="loud")


async def test_named_input_request_key_M_15() -> None:
    """M-15: input request keys are the server's choice; ctx.elicit(key=...) names one, and the retry
    answered by that name completes without a requestState."""
    app = Server("k")

    @app.tool()
    async def ask(ctx: Context) -> str:
        r = await ctx.elicit("name?", {"type": "object", "properties": {"name": {"type": "string"}}}, key="user_name")
        return str((r.content or {}).get("name"))

    async with connect(app, era="modern", on_elicit=lambda p: {"action": "accept", "content": {"name": "Ada"}}) as c:
        session = c._session
        assert session is not None
        meta = c._conn.modern_meta()
        first = await session.request("tools/call", {"name": "ask", "arguments": {}, "_meta": meta})
        assert list(first["inputRequests"]) == ["user_name"]
        done = await session.request("tools/call", {"name": "ask", "arguments": {}, "_meta": meta,
                                                    "inputResponses": {"user_name": {"action": "accept", "content": {"name": "Bo"}}}})
        assert done["content"][0]["text"] == "Bo"
        assert (await c.call_tool("ask")).text == "Ada"


async def test_hand_written_input_schema_is_published_as_written_J_17() -> None:
    """J-17: 2020-12 keywords in a hand-written schema reach the client untouched; arguments are still
    validated against the type hints."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
        "properties": {"n": {"type": "integer"}}, "if": {"required": ["n"]}, "then": {}, "else": {},
        "additionalProperties": False,
    }
    app = Server("s")

    @app.tool(input_schema=schema)
    def double(n: int) -> int:
        return 2 * n

    with pytest.raises(ValueError, match="type 'object'"):
        app.add_tool(double, name="bad", input_schema={"type": "array"})
    async with connect(app, era="modern") as c:
        (tool,) = await c.list_tools()
        ok = await c.call_tool("double", {"n": 4})
        bad = await c.call_tool("double", {"n": "x"})
    assert tool.input_schema == schema
    assert ok.structured_content == {"result": 8} and bad.is_error
