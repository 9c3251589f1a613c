"""A server with the tools the conformance suite's ``tasks-*`` scenarios drive (SEP-2663), plus a
watched resource; shared by the in-memory tests and the stdio subprocess tests."""

from __future__ import annotations

import asyncio
import sys

from anyport import Context, InternalError, Server, ToolError

CONFIRM_SCHEMA = {"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def build_app() -> Server:
    app = Server("tasks-fixture", version="1.0.0")

    @app.tool()
    def greet(name: str) -> str:
        """Say hello (never a task)."""
        return f"Hello, {name}!"

    @app.tool(task_support="optional")
    async def slow_compute(seconds: float = 1.0, label: str = "") -> str:
        """Sleep, then answer."""
        await asyncio.sleep(seconds)
        return f"computed {label} after {seconds}s"

    @app.tool(task_support="required")
    async def failing_job() -> str:
        """Always fails as a tool (isError), never as a protocol error."""
        await asyncio.sleep(0.05)
        raise ToolError("the job failed")

    @app.tool(task_support="optional")
    async def protocol_error_job() -> str:
        """Fails with a JSON-RPC error."""
        raise InternalError("the job broke")

    @app.tool(task_support="optional")
    async def confirm_delete(filename: str, ctx: Context) -> str:
        """Ask before deleting."""
        answer = await ctx.elicit(f"Delete {filename}?", CONFIRM_SCHEMA)
        confirmed = answer.accepted and bool((answer.content or {}).get("confirm"))
        return f"{'deleted' if confirmed else 'kept'} {filename}"

    @app.tool(task_support="optional")
    async def multi_input(ctx: Context) -> str:
        """Two questions at once."""
        a, b = await asyncio.gather(ctx.elicit("First?", NAME_SCHEMA), ctx.elicit("Second?", NAME_SCHEMA))
        return f"{(a.content or {}).get('name')} and {(b.content or {}).get('name')}"

    @app.tool(task_support="required", defer_task=True)
    async def test_tool_with_task(ctx: Context) -> str:
        """Asks for a name in the request (MRTR), then continues as a task."""
        answer = await ctx.elicit("Your name?", NAME_SCHEMA)
        await ctx.detach()
        await asyncio.sleep(0.05)
        return f"Hello, {(answer.content or {}).get('name')}!"

    @app.tool()
    async def touch(uri: str) -> str:
        """Tell subscribers that ``uri`` changed."""
        await app.notify_resource_updated(uri)
        return "ok"

    @app.tool()
    async def add_tool(name: str) -> str:
        """Register a tool while running (list_changed)."""
        app.add_tool(lambda: "new", name=name, description="added at run time")
        return "added"

    @app.resource("test://watched-resource")
    def watched() -> str:
        return "watched"

    return app


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.path.insert(0, sys.argv[1])
    build_app().run()
