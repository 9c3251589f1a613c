"""``Context.gather``: several questions at once. Concurrent server->client requests on legacy
revisions (F-CLI-01..03), one MRTR round carrying every missing question on 2026-07-28 (M-15, M-17)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from pydantic import BaseModel

from anyport import Client, Context, JSONRPCError, MissingCapabilityError, Server
from anyport.protocol import TASKS_EXTENSION_ID
from anyport.testing import connect

from ._raw import raw

ERAS = ["legacy", "modern"]
NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
ROOTS = ["file:///a", "file:///b"]
ELICITED = {"action": "accept", "content": {"name": "Ada"}}
SAMPLED = {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}


class Ok(BaseModel):
    ok: bool


def on_elicit(params: dict[str, Any]) -> dict[str, Any]:
    if params["message"] == "sure?":
        return {"action": "accept", "content": {"ok": True}}
    return ELICITED


def on_sample(params: dict[str, Any]) -> dict[str, Any]:
    return SAMPLED


def make_app(runs: list[str] | None = None) -> Server:
    app = Server("gather", version="1.0")
    runs = runs if runs is not None else []

    @app.tool()
    async def three(ctx: Context) -> str:
        runs.append("three")
        name, reply, roots = await ctx.gather(ctx.elicit("name?", NAME), ctx.sample("greet", max_tokens=5), ctx.list_roots())
        return f"{(name.content or {}).get('name')}|{reply.text}|{','.join(r.uri for r in roots)}"

    @app.tool()
    async def named(ctx: Context) -> str:
        name, reply, roots = await ctx.gather(
            ctx.elicit("name?", NAME, key="user_name"), ctx.sample("greet"), ctx.list_roots(key="client_roots")
        )
        return f"{(name.content or {}).get('name')}|{reply.text}|{len(roots)}"

    @app.tool()
    async def clash(explicit: bool, ctx: Context) -> str:
        if explicit:
            await ctx.gather(ctx.elicit("name?", NAME, key="x"), ctx.sample("greet", key="x"))
        else:  # an explicit key equal to the default key of a later question
            await ctx.gather(ctx.elicit("name?", NAME, key="q1"), ctx.sample("greet"))
        return "unreachable"

    @app.tool()
    async def rounds(ctx: Context) -> str:
        runs.append("rounds")
        name, roots = await ctx.gather(ctx.elicit("name?", NAME), ctx.list_roots())
        sure = await ctx.elicit("sure?", Ok)
        return f"{(name.content or {}).get('name')}|{len(roots)}|{getattr(sure.content, 'ok', None)}"

    @app.tool()
    async def tolerant(ctx: Context) -> str:
        reply, roots = await ctx.gather(ctx.sample("greet"), ctx.list_roots(), return_exceptions=True)
        return f"{type(reply).__name__}|{type(roots).__name__}"

    @app.tool()
    async def misuse(ctx: Context) -> str:
        async def helper() -> str:
            return "x"

        stray = helper()
        try:
            await ctx.gather(ctx.list_roots(), stray)  # type: ignore[call-overload]
        except TypeError as exc:
            first = f"TypeError:{inspect.getcoroutinestate(stray)}:{'ctx.elicit()' in str(exc)}"
        q = ctx.list_roots()
        await q
        try:
            await q
        except RuntimeError:
            second = "RuntimeError"
        return f"{first}|{second}|{await ctx.gather()}"

    return app


async def input_round(c: Client, name: str, **extra: Any) -> dict[str, Any]:
    """One raw 2026-07-28 ``tools/call`` (no automatic retry), to see each round on the wire."""
    session = c._session
    assert session is not None
    params = {"name": name, "arguments": {}, "_meta": c._conn.modern_meta(), **extra}
    result: dict[str, Any] = await session.request("tools/call", params)
    return result


def methods(result: dict[str, Any]) -> dict[str, str]:
    assert result["resultType"] == "input_required"
    return {k: v["method"] for k, v in result["inputRequests"].items()}


async def test_one_round_carries_every_question_M_15() -> None:
    """M-15: elicitation + sampling + roots/list in ONE InputRequiredResult (keys q0..q2 in asking
    order, unique); the retry with every answer and the echoed requestState completes (M-16, M-18)."""
    runs: list[str] = []
    async with connect(make_app(runs), era="modern", on_elicit=on_elicit, on_sample=on_sample, roots=ROOTS) as c:
        first = await input_round(c, "three")
        assert methods(first) == {"q0": "elicitation/create", "q1": "sampling/createMessage", "q2": "roots/list"}
        assert first["inputRequests"]["q1"]["params"] == {
            "messages": [{"role": "user", "content": {"type": "text", "text": "greet"}}], "maxTokens": 5,
        }
        assert isinstance(first["requestState"], str)
        done = await input_round(c, "three", requestState=first["requestState"],
                                 inputResponses={"q0": ELICITED, "q1": SAMPLED, "q2": {"roots": [{"uri": "file:///z"}]}})
        assert done["resultType"] == "complete" and done["content"][0]["text"] == "Ada|hi|file:///z"
        runs.clear()
        assert (await c.call_tool("three")).text == "Ada|hi|file:///a,file:///b"
        assert runs == ["three", "three"]  # the Client's MRTR loop needed one input round, not three


async def test_partial_answers_ask_only_the_rest_M_17() -> None:
    """M-17: a retry answering some questions gets a new InputRequiredResult for the missing ones
    only; the answers already given travel in the sealed requestState (M-16) and are not re-asked."""
    async with connect(make_app(), era="modern", on_elicit=on_elicit, on_sample=on_sample, roots=ROOTS) as c:
        first = await input_round(c, "three")
        second = await input_round(c, "three", requestState=first["requestState"],
                                   inputResponses={"q1": SAMPLED, "unknown": {"ignored": True}})
        assert methods(second) == {"q0": "elicitation/create", "q2": "roots/list"}
        assert second["requestState"] != first["requestState"]
        done = await input_round(c, "three", requestState=second["requestState"],
                                 inputResponses={"q0": ELICITED, "q2": {"roots": []}})
        assert done["content"][0]["text"] == "Ada|hi|"


async def test_explicit_keys_win_M_15() -> None:
    """M-15: ``key=`` names a question; the others keep their asking-order number (q1 here)."""
    async with connect(make_app(), era="modern", on_elicit=on_elicit, on_sample=on_sample, roots=ROOTS) as c:
        first = await input_round(c, "named")
        assert methods(first) == {"user_name": "elicitation/create", "q1": "sampling/createMessage",
                                  "client_roots": "roots/list"}
        done = await input_round(c, "named", requestState=first["requestState"],
                                 inputResponses={"user_name": ELICITED, "q1": SAMPLED, "client_roots": {"roots": []}})
        assert done["content"][0]["text"] == "Ada|hi|0"


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("explicit", [True, False])
async def test_duplicate_keys_are_an_error_M_15(era: str, explicit: bool) -> None:
    """M-15: inputRequests keys are unique; two questions with one key fail the handler before
    anything is asked, in both eras (so the mistake shows on legacy connections too)."""
    asked: list[Any] = []
    async with connect(make_app(), era=era, on_elicit=asked.append, on_sample=asked.append) as c:
        result = await c.call_tool("clash", {"explicit": explicit})
    assert result.is_error and "share the key" in (result.text or "")
    assert asked == []


@pytest.mark.parametrize("era", ERAS)
async def test_missing_capabilities_checked_for_every_question_M_06(era: str) -> None:
    """M-06 / M-15: every question is checked first; one -32021 error lists all the capabilities the
    client did not declare, and nothing is asked (not even the declared elicitation)."""
    asked: list[Any] = []
    async with connect(make_app(), era=era, on_elicit=asked.append) as c:
        with pytest.raises(MissingCapabilityError) as exc:
            await c.call_tool("three")
    assert exc.value.code == -32021
    assert exc.value.data == {"requiredCapabilities": {"sampling": {}, "roots": {}}}
    assert asked == []


async def test_legacy_requests_run_concurrently_F_CLI_01() -> None:
    """F-CLI-01..03: on a legacy connection the three server->client requests are all out at once:
    each client handler waits until it has seen all three before answering."""
    seen: list[str] = []
    all_in = asyncio.Event()

    async def arrive(kind: str) -> None:
        seen.append(kind)
        if len(seen) == 3:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 2)  # sequential requests would time out here

    async def elicit(params: dict[str, Any]) -> dict[str, Any]:
        await arrive("elicitation")
        return ELICITED

    async def sample(params: dict[str, Any]) -> dict[str, Any]:
        await arrive("sampling")
        return SAMPLED

    async def roots() -> list[str]:
        await arrive("roots")
        return ROOTS

    runs: list[str] = []
    async with connect(make_app(runs), era="legacy", on_elicit=elicit, on_sample=sample, on_list_roots=roots) as c:
        result = await c.call_tool("three")
    assert sorted(seen) == ["elicitation", "roots", "sampling"]
    assert result.text == "Ada|hi|file:///a,file:///b" and runs == ["three"]


async def test_legacy_failure_cancels_the_rest_and_return_exceptions() -> None:
    """A failed request ends the gather with its error at once and cancels the requests still out
    (the client sees notifications/cancelled); with ``return_exceptions=True`` the error takes the
    answer's place and the other answers still arrive."""
    cancelled = asyncio.Event()

    async def slow(params: dict[str, Any]) -> dict[str, Any]:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return ELICITED

    def broken(params: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("no model")

    async with connect(make_app(), era="legacy", on_elicit=slow, on_sample=broken, roots=ROOTS) as c:
        assert (await c.call_tool("tolerant")).text.split("|")[1] == "list"
        with pytest.raises(JSONRPCError) as exc:
            await asyncio.wait_for(c.call_tool("three"), 5)
        assert exc.value.code == -32603 and "no model" in str(exc.value)
        await asyncio.wait_for(cancelled.wait(), 2)


async def test_modern_invalid_answer_with_return_exceptions_M_17() -> None:
    """M-17: an invalid answer is the handler's error (RemoteProtocolError), returned in place with
    ``return_exceptions=True``; the valid answer is still used."""
    async with connect(make_app(), era="modern", roots=ROOTS, on_sample=on_sample) as c:
        first = await input_round(c, "tolerant")
        assert methods(first) == {"q0": "sampling/createMessage", "q1": "roots/list"}
        done = await input_round(c, "tolerant", requestState=first["requestState"],
                                 inputResponses={"q0": {"no": "content"}, "q1": {"roots": []}})
        assert done["content"][0]["text"] == "RemoteProtocolError|list"


@pytest.mark.parametrize("era", ERAS)
async def test_only_fresh_questions_of_this_context(era: str) -> None:
    """A non-question is a TypeError (the stray coroutine is closed, no "never awaited" warning); a
    question is asked once; ``gather()`` of nothing is ``()``."""
    async with connect(make_app(), era=era, roots=ROOTS) as c:
        result = await c.call_tool("misuse")
    assert result.text == "TypeError:CORO_CLOSED:True|RuntimeError|()"


async def test_multi_round_gather_then_single_question_M_17() -> None:
    """M-15 / M-17: a gather (q0, q1) then a later single question (q2): two input rounds whose keys
    stay stable across rounds, then the complete result; the same tool gives the same answer on a
    legacy connection without any round."""
    runs: list[str] = []
    async with connect(make_app(runs), era="modern", on_elicit=on_elicit, roots=ROOTS) as c:
        first = await input_round(c, "rounds")
        assert methods(first) == {"q0": "elicitation/create", "q1": "roots/list"}
        second = await input_round(c, "rounds", requestState=first["requestState"],
                                   inputResponses={"q0": ELICITED, "q1": {"roots": [{"uri": "file:///x"}]}})
        assert methods(second) == {"q2": "elicitation/create"}
        assert second["inputRequests"]["q2"]["params"]["message"] == "sure?"
        done = await input_round(c, "rounds", requestState=second["requestState"],
                                 inputResponses={"q2": {"action": "accept", "content": {"ok": True}}})
        assert done["content"][0]["text"] == "Ada|1|True"
        runs.clear()
        assert (await c.call_tool("rounds")).text == "Ada|2|True"
        assert runs == ["rounds"] * 3
    runs.clear()
    async with connect(make_app(runs), era="legacy", on_elicit=on_elicit, roots=ROOTS) as c:
        assert (await c.call_tool("rounds")).text == "Ada|2|True"
    assert runs == ["rounds"]


def task_app() -> Server:
    app = Server("gather-tasks", version="1.0")

    @app.tool(task_support="optional")
    async def both(ctx: Context) -> str:
        name, roots = await ctx.gather(ctx.elicit("name?", NAME), ctx.list_roots())
        return f"{(name.content or {}).get('name')}|{len(roots)}"

    return app


async def test_legacy_task_asks_concurrently_through_the_task() -> None:
    """F-TASK-02: inside a 2025-11-25 task the questions go through the task binding, both at once."""
    seen: list[str] = []
    both_in = asyncio.Event()

    async def arrive(kind: str) -> None:
        seen.append(kind)
        if len(seen) == 2:
            both_in.set()
        await asyncio.wait_for(both_in.wait(), 2)

    async def elicit(params: dict[str, Any]) -> dict[str, Any]:
        await arrive("elicitation")
        return ELICITED

    async def roots() -> list[str]:
        await arrive("roots")
        return ROOTS

    async with connect(task_app(), era="legacy", protocol_version="2025-11-25", on_elicit=elicit,
                       on_list_roots=roots) as c:
        task = (await c.request("tools/call", {"name": "both", "arguments": {}, "task": {}}))["task"]
        result = await c.request("tasks/result", {"taskId": task["taskId"]})
    assert result["content"][0]["text"] == "Ada|2" and sorted(seen) == ["elicitation", "roots"]


async def test_extension_task_parks_both_questions() -> None:
    """SEP-2663 (tasks extension, 2026-07-28): inside a task both questions are parked at once in the
    task's inputRequests; one tasks/update answering both completes it."""
    caps: dict[str, Any] = {"elicitation": {}, "roots": {}, "extensions": {TASKS_EXTENSION_ID: {}}}
    async with raw(task_app(), caps) as peer:
        created = await peer.call("tools/call", {"name": "both", "arguments": {}})
        for _ in range(100):
            parked = await peer.call("tasks/get", {"taskId": created["taskId"]})
            if len(parked.get("inputRequests", {})) >= 2:
                break
            await asyncio.sleep(0.02)
        asked = {k: v["method"] for k, v in parked["inputRequests"].items()}
        assert sorted(asked.values()) == ["elicitation/create", "roots/list"]
        answers: dict[str, Any] = {k: ELICITED if m == "elicitation/create" else {"roots": []} for k, m in asked.items()}
        await peer.call("tasks/update", {"taskId": created["taskId"], "inputResponses": answers})
        done = await peer.wait_status(created["taskId"], "completed")
    assert done["result"]["content"][0]["text"] == "Ada|0"
