"""The inline fast path: requests whose handlers never wait are answered without a task.

What must hold: the answers are the same as with a task; a handler that does wait gets a real
task of its own (``asyncio.current_task()``, ``asyncio.timeout`` and cancellation work as
anywhere, U-04); context variables set by a handler do not leak into the session's read loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from typing import Any

import pytest

from anyport import Server
from anyport._exceptions import RequestTimeoutError
from anyport.runtime._inline import Resumed, finish, here, start
from anyport.server._schema import never_awaits
from anyport.testing import connect

CANCELLED: list[str] = []
VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


# -- anyport.runtime._inline ------------------------------------------------------------------------------


async def _returns(x: int) -> int:
    return x * 2


async def _raises() -> int:
    raise ValueError("boom")


async def _waits(fut: asyncio.Future[int]) -> int:
    VAR.set("inside")
    value = await fut
    return value + VAR.get().__len__()


async def test_start_finishes_a_coroutine_that_never_waits() -> None:
    done, value = start(_returns(21))
    assert done is True and value == 42


async def test_start_propagates_an_error_of_the_first_step() -> None:
    with pytest.raises(ValueError, match="boom"):
        start(_raises())


async def test_a_suspended_coroutine_continues_in_a_task_with_its_context() -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    done, rest = start(_waits(fut))
    assert done is False and isinstance(rest, Resumed)
    assert VAR.get() == "unset"  # the first step ran in a copy of our context
    task = asyncio.get_running_loop().create_task(finish(rest), context=rest.context)
    await asyncio.sleep(0)
    assert not task.done()
    fut.set_result(1)
    assert await task == 1 + len("inside")
    assert VAR.get() == "unset"


async def test_cancelling_the_continuation_reaches_the_coroutine() -> None:
    seen: list[str] = []

    async def body() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    done, rest = start(body())
    assert done is False and isinstance(rest, Resumed)
    task = asyncio.get_running_loop().create_task(finish(rest), context=rest.context)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]


async def test_an_error_after_suspending_reaches_the_awaiter() -> None:
    async def body() -> None:
        await asyncio.sleep(0)
        raise KeyError("late")

    done, rest = start(body())
    assert done is False and isinstance(rest, Resumed)
    with pytest.raises(KeyError, match="late"):
        await asyncio.get_running_loop().create_task(finish(rest))


async def test_here_finishes_now_or_continues_in_the_same_task() -> None:
    done, value = here(_returns(2))
    assert done is True and value == 4

    me = asyncio.current_task()
    seen: list[object] = []

    async def waits() -> str:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)
        seen.append(asyncio.current_task())
        return "late"

    done, rest = here(waits())
    assert done is False
    assert await rest == "late"  # type: ignore[misc]
    assert seen == [me, me]

    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    fut.set_result(7)
    done, same = here(fut)  # not a coroutine: handed back untouched
    assert done is False and same is fut and await fut == 7


def test_never_awaits_reads_the_bytecode() -> None:
    async def plain(x: str) -> str:
        return x

    async def awaits(x: str) -> str:
        await asyncio.sleep(0)
        return x

    async def async_with(x: str) -> str:
        async with asyncio.timeout(1):  # noqa: ASYNC100 - the point: no await, still a suspension point
            return x

    async def async_for(xs: Any) -> list[Any]:
        return [x async for x in xs]

    def sync(x: str) -> str:
        return x

    assert never_awaits(plain) is True
    assert never_awaits(sync) is True
    assert never_awaits(awaits) is False
    assert never_awaits(async_with) is False
    assert never_awaits(async_for) is False
    # Only plain functions are judged; anything else is assumed to wait.
    assert never_awaits(functools.partial(plain, "x")) is False


# -- the server runtime ---------------------------------------------------------------------------


def _server() -> Server:
    app = Server("inline-test")

    @app.tool()
    async def echo(text: str) -> str:
        VAR.set("leaked?")
        return text

    @app.tool()
    def add(a: int, b: int) -> int:
        return a + b

    @app.tool()
    async def own_task() -> str:
        await asyncio.sleep(0)
        task = asyncio.current_task()
        assert task is not None
        return task.get_name()

    @app.tool()
    async def times_out() -> str:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(5)
        return "never"

    @app.tool()
    async def slow() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            CANCELLED.append("slow")
            raise
        return "never"

    return app


@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
async def test_inline_and_task_requests_answer_alike(version: str) -> None:
    app = _server()
    calls = [("echo", {"text": "hi"}), ("add", {"a": 2, "b": 3})]
    assert all(app.inline_safe(_req(app, name, args, version)) for name, args in calls)
    assert not app.inline_safe(_req(app, "own_task", {}, version))
    async with connect(app, protocol_version=version) as client:
        assert (await client.call_tool("echo", {"text": "hi"})).text == "hi"
        assert (await client.call_tool("add", {"a": 2, "b": 3})).structured_content == {"result": 5}
        # An async tool that waits ran in a task of its own, not in the session's read loop.
        names = {(await client.call_tool("own_task")).text for _ in range(3)}
        assert len(names) == 3
        # asyncio.timeout inside a tool cancels that tool only (F-TOOL-07: an error result).
        result = await client.call_tool("times_out")
        assert result.is_error
        assert (await client.call_tool("echo", {"text": "still here"})).text == "still here"
    assert VAR.get() == "unset"


async def test_a_waiting_tool_can_still_be_cancelled_while_inline_ones_answer() -> None:
    """U-04: cancelling a request in its own task; the inline requests around it are unaffected."""
    app = _server()
    async with connect(app) as client:
        slow = asyncio.ensure_future(client.call_tool("slow", timeout=0.2))
        assert (await client.call_tool("echo", {"text": "a"})).text == "a"
        with pytest.raises(RequestTimeoutError):
            await slow
        assert (await client.call_tool("echo", {"text": "b"})).text == "b"
        for _ in range(100):
            if CANCELLED:
                break
            await asyncio.sleep(0.01)
        assert CANCELLED == ["slow"]  # notifications/cancelled reached the handler's own task


def _req(app: Server, name: str, args: dict[str, Any], version: str) -> Any:
    conn = app.open_connection()
    meta = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    }
    if version != "2026-07-28":
        conn.receive_obj(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize",
             "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        )
        conn.receive_obj({"jsonrpc": "2.0", "method": "notifications/initialized"})
        params: dict[str, Any] = {"name": name, "arguments": args}
    else:
        params = {"name": name, "arguments": args, "_meta": meta}
    received = conn.receive_obj({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
    (ev,) = received.events
    return ev


# -- arguments: the quick path for plain scalars agrees with pydantic ----------------------------


def _pydantic_only(spec: Any, arguments: dict[str, Any]) -> Any:
    try:
        obj = spec.model.__pydantic_validator__.validate_python(arguments)
    except Exception as exc:
        return type(exc)
    return {k: v for k, v in obj.__dict__.items() if k in arguments}


@pytest.mark.parametrize(
    "arguments",
    [
        {"text": "hi", "n": 3, "ratio": 0.5, "flag": True},
        {"text": "hi"},
        {"text": "hi", "n": "7"},  # pydantic converts: the quick path must hand it over
        {"text": "hi", "ratio": 2},  # int for float: converted to 2.0
        {"text": "hi", "flag": 1},
        {"text": "hi", "n": True},
        {"text": "hi", "note": None},
        {"text": 5},  # error: not a string
        {},  # error: text is required
        {"text": "hi", "extra": [1, 2]},  # unknown arguments are ignored
    ],
)
def test_quick_argument_path_matches_pydantic(arguments: dict[str, Any]) -> None:
    """F-TOOL-07: the same values, or the same error, as validating with the pydantic model."""
    from anyport.server._schema import build_arguments

    def tool(text: str, n: int = 1, ratio: float = 1.0, flag: bool = False, note: str | None = None) -> str:
        return text

    spec = build_arguments(tool, type(None), "T")
    assert spec.quick is not None
    expected = _pydantic_only(spec, arguments)
    try:
        got: Any = spec.validate(arguments)
    except Exception as exc:
        got = type(exc)
    if isinstance(expected, dict):
        assert isinstance(got, dict)
        for key, value in expected.items():
            assert got[key] == value and type(got[key]) is type(value)
        assert tool(**got) == arguments["text"]
    else:
        assert got is expected


def test_quick_argument_path_is_off_for_other_types() -> None:
    from anyport.server._schema import build_arguments

    def tool(items: list[int], text: str = "x") -> str:
        return text

    assert build_arguments(tool, type(None), "T").quick is None


def _rich_server() -> Server:
    from anyport import ToolError

    app = _server()

    @app.tool()
    def refuses(reason: str) -> str:
        raise ToolError(f"no: {reason}")

    @app.tool()
    def crashes() -> str:
        raise KeyError("missing")

    return app


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", "2026-07-28"])
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("echo", {"text": "hi"}),
        ("add", {"a": 2, "b": 3}),
        ("add", {"a": "two", "b": 3}),  # F-TOOL-07: bad arguments are an error result
        ("refuses", {"reason": "policy"}),
        ("crashes", {}),
    ],
)
async def test_answer_now_gives_what_handle_gives(version: str, name: str, args: dict[str, Any]) -> None:
    """``Server.answer_now`` (the plain-call path of inline requests) and ``Server.handle`` agree,
    result for result, on every revision: errors of the tool, bad arguments, modern ``_meta``."""
    app = _rich_server()
    req = _req(app, name, args, version)
    assert app.inline_safe(req)
    now = app.answer_now(req, _NullOutlet())
    later = await app.handle(_req(app, name, args, version), _NullOutlet())
    assert now == later
    if name in ("refuses", "crashes") or args.get("a") == "two":
        assert now["isError"] is True


async def test_answer_now_raises_what_handle_raises() -> None:
    """An unknown tool is a JSON-RPC error (-32602, F-TOOL-07) from both paths; lists answer alike."""
    from anyport._exceptions import InvalidParamsError

    app = _rich_server()
    req = _req(app, "nope", {}, "2025-11-25")
    with pytest.raises(InvalidParamsError):
        app.answer_now(req, _NullOutlet())
    with pytest.raises(InvalidParamsError):
        await app.handle(req, _NullOutlet())
    # F-TASK-01: a tool that forbids tasks, called as one on 2025-11-25: -32601 from both paths.
    from anyport._exceptions import MethodNotFoundError

    as_task = _req(app, "add", {"a": 1, "b": 2}, "2025-11-25")
    as_task.params["task"] = {}
    assert app.inline_safe(as_task)
    with pytest.raises(MethodNotFoundError):
        app.answer_now(as_task, _NullOutlet())
    with pytest.raises(MethodNotFoundError):
        await app.handle(as_task, _NullOutlet())
    listing = _req(app, "echo", {}, "2025-11-25")
    listing.method, listing.params = "tools/list", {}
    assert app.inline_safe(listing)
    assert app.answer_now(listing, _NullOutlet()) == await app.handle(listing, _NullOutlet())


class _NullOutlet:
    session = None
    session_id = None

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        raise AssertionError("an inline handler cannot notify")

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        raise AssertionError("an inline handler cannot ask")
