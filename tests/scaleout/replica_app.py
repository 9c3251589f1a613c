"""The server every replica of the scale-out tests runs: tools that say which process answered,
report progress, and ask the client a question (elicitation)."""

from __future__ import annotations

import asyncio
import os

from pydantic import BaseModel

from anyport import Context, Server

app = Server("replicas", version="1.0.0")


class Name(BaseModel):
    name: str


@app.tool()
def whoami() -> str:
    """The process id of the replica that ran this call."""
    return str(os.getpid())


@app.tool()
async def count(n: int, ctx: Context) -> str:
    """Report progress n times, then answer with this replica's pid."""
    for i in range(1, n + 1):
        await ctx.report_progress(i, n)
        await asyncio.sleep(0.01)
    return str(os.getpid())


@app.tool()
async def ask(ctx: Context) -> str:
    """Ask the client for a name (elicitation); the answer arrives as a POST on any replica."""
    answer = await ctx.elicit("What is your name?", Name)
    return f"{answer.action}:{answer.content.name if answer.content else ''}:{os.getpid()}"


@app.tool()
async def announce() -> str:
    """Tell every session the tool list changed (their GET streams, on whichever replica holds them)."""
    await app.notify_list_changed("tools")
    return str(os.getpid())


@app.tool()
async def slow_count(n: int, delay: float, ctx: Context) -> str:
    """Report progress n times, ``delay`` seconds apart (a stream to cut and resume)."""
    for i in range(1, n + 1):
        await ctx.report_progress(i, n)
        await asyncio.sleep(delay)
    return str(os.getpid())


@app.tool(task_support="optional")
async def slow_job(seconds: float) -> str:
    """Work for a while (as a task when asked); answers with the pid of the replica that ran it."""
    await asyncio.sleep(seconds)
    return str(os.getpid())
