"""The fixture report (FIXTURE.md) produced by *our* client, and the checks every report must pass."""

from __future__ import annotations

import asyncio
from typing import Any

from anyport import Client, InvalidParamsError, JSONRPCError

ELICIT = {"action": "accept", "content": {"name": "Ada"}}
ROOTS = [{"uri": "file:///tmp/fixture-root", "name": "root"}]
TOOLS = ["add", "ask_name", "echo", "fail", "list_roots", "log", "progress", "sleep", "summarize", "weather"]


def sample(params: dict[str, Any]) -> dict[str, Any]:
    first = params["messages"][0]["content"]
    text = first.get("text") if isinstance(first, dict) else first[0].get("text")
    return {"role": "assistant", "model": "fixture-model", "content": {"type": "text", "text": f"sampled: {text}"}, "stopReason": "endTurn"}


def fixture_client(target: Any, era: str, **kw: Any) -> tuple[Client, list[dict[str, Any]]]:
    logs: list[dict[str, Any]] = []
    client = Client(
        target, era=era, on_elicit=lambda p: ELICIT, on_sample=sample, roots=ROOTS,
        on_log=logs.append, log_level="debug", timeout=20, **kw,
    )
    return client, logs


async def run_report(client: Client, logs: list[dict[str, Any]]) -> dict[str, Any]:
    report: dict[str, Any] = {}

    async def step(name: str, coro: Any) -> None:
        try:
            report[name] = await asyncio.wait_for(coro, 20)
        except Exception as exc:
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}

    async with client:
        report["era"] = client.era
        report["protocolVersion"] = client.protocol_version
        report["serverName"] = client.server_info.get("name")

        async def tools() -> list[str]:
            return sorted(t.name for t in await client.list_tools())

        async def call(name: str, args: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
            r = await client.call_tool(name, args, **kw)
            out: dict[str, Any] = {"text": r.text, "isError": r.is_error}
            if r.structured_content is not None:
                out["structuredContent"] = r.structured_content
            return out

        async def progress() -> dict[str, Any]:
            events: list[list[float]] = []
            r = await call("progress", {"steps": 3}, on_progress=lambda p, t, m: events.append([p, t]))
            return {"text": r["text"], "events": events}

        async def log() -> dict[str, Any]:
            r = await call("log", {"message": "hi", "level": "warning"})
            await asyncio.sleep(0.05)
            return {"text": r["text"], "messages": [{k: m.get(k) for k in ("level", "logger", "data")} for m in logs]}

        async def unknown() -> dict[str, Any]:
            try:
                r = await call("no_such_tool")
            except JSONRPCError as exc:
                return {"errorCode": exc.code}
            return r

        async def cancel() -> dict[str, Any]:
            task = asyncio.ensure_future(client.call_tool("sleep", {"seconds": 30}))
            await asyncio.sleep(0.3)
            task.cancel()
            cancelled = False
            try:
                await task
            except asyncio.CancelledError:
                cancelled = True
            after = (await client.call_tool("echo", {"text": "still-alive"})).text
            return {"cancelled": cancelled, "after": after}

        async def read(uri: str) -> dict[str, Any]:
            r = await client.read_resource(uri)
            return {"text": r.text, "mimeType": r.contents[0].get("mimeType") if r.contents else None}

        async def prompt() -> dict[str, Any]:
            r = await client.get_prompt("greet", {"name": "Bob"})
            return {"messages": [{"role": m["role"], "text": m["content"].get("text")} for m in r.messages]}

        await step("tools", tools())
        await step("echo", call("echo", {"text": "hello"}))
        await step("add", call("add", {"a": 2, "b": 3}))
        await step("weather", call("weather", {"city": "Paris"}))
        await step("progress", progress())
        await step("log", log())
        await step("ask_name", call("ask_name"))
        await step("summarize", call("summarize", {"text": "hello"}))
        await step("list_roots", call("list_roots"))
        await step("fail", call("fail"))
        await step("unknown_tool", unknown())
        await step("cancel", cancel())

        async def uris() -> list[str]:
            return sorted(r.uri for r in await client.list_resources())

        async def templates() -> list[str]:
            return sorted(t.uri_template for t in await client.list_resource_templates())

        async def prompts() -> list[str]:
            return sorted(p.name for p in await client.list_prompts())

        async def complete(ref: dict[str, Any], arg: str, value: str) -> list[str]:
            return (await client.complete(ref, arg, value)).values

        await step("resources", uris())
        await step("read", read("res://greeting"))
        await step("templates", templates())
        await step("read_template", read("res://items/42"))
        await step("prompts", prompts())
        await step("prompt", prompt())
        await step("complete_prompt", complete({"type": "ref/prompt", "name": "greet"}, "name", "a"))
        await step("complete_resource", complete({"type": "ref/resource", "uri": "res://items/{id}"}, "id", "2"))

        async def missing() -> dict[str, Any]:
            try:
                await client.read_resource("res://missing")
            except InvalidParamsError as exc:
                return {"errorCode": exc.code}
            return {}

        await step("read_missing", missing())
    return report


def check_report(report: dict[str, Any], *, era: str, version: str) -> None:
    """Every FIXTURE.md step, as the spec requires it (IDs name the requirement behind each check)."""
    errors = {k: v["error"] for k, v in report.items() if isinstance(v, dict) and "error" in v}
    assert not errors, errors
    assert report["era"] == era
    assert report["protocolVersion"] == version  # L-05 / M-08: the version both sides use
    assert report["serverName"] == "interop-fixture"
    assert report["tools"] == TOOLS  # F-TOOL-02
    assert report["echo"]["text"] == "hello" and report["echo"]["isError"] is False
    structured = version >= "2025-06-18"  # F-TOOL-06: structured output exists from 2025-06-18
    if structured:
        assert report["add"]["structuredContent"] == {"result": 5}
        assert report["weather"]["structuredContent"] == {"city": "Paris", "temp_c": 21.5}
    assert "5" in report["add"]["text"]  # the text block for clients without structured output
    assert report["progress"]["text"] == "done 3"
    assert report["progress"]["events"] == [[1, 3], [2, 3], [3, 3]]  # U-07, U-08: strictly increasing
    assert report["log"]["text"] == "logged"
    assert report["log"]["messages"] == [{"level": "warning", "logger": "fixture", "data": "hi"}]  # U-10, M-19
    if version >= "2025-06-18":
        assert report["ask_name"]["text"] == "Hello, Ada"  # F-CLI-03 (legacy request or MRTR round)
    assert report["summarize"]["text"] == "sampled: hello"  # F-CLI-02
    assert report["list_roots"]["text"] == "file:///tmp/fixture-root"  # F-CLI-01
    assert report["fail"]["isError"] is True and "boom" in report["fail"]["text"]  # F-TOOL-07
    unknown = report["unknown_tool"]
    assert unknown.get("errorCode") == -32602 or unknown.get("isError") is True  # F-TOOL-07
    assert report["cancel"] == {"cancelled": True, "after": "still-alive"}  # U-01, U-04
    assert report["resources"] == ["res://greeting"]
    assert report["read"] == {"text": "Hello, world", "mimeType": "text/plain"}
    assert report["templates"] == ["res://items/{id}"]
    assert report["read_template"]["text"] == "item 42"
    assert report["prompts"] == ["greet"]
    assert report["prompt"] == {"messages": [{"role": "user", "text": "Say hello to Bob"}]}
    assert report["complete_prompt"] == ["alice"]  # U-17
    assert report["complete_resource"] == ["2"]
