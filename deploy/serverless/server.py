"""The MCP server of the serverless recipes: replace it with your own (an ``anyport.Server`` named ``app``).

Keep it fit for functions that start and stop often: no work at import beyond building the server,
async tools (no thread pools: Cloudflare's Python Workers have none), no state kept between
requests (each request may run in another instance).
"""

from __future__ import annotations

import os

from pydantic import BaseModel

from anyport import Context, Server

app = Server("serverless-notes", version="1.0.0")

NOTES = ["MCP servers expose tools, resources and prompts.", "anyport serves every revision."]


@app.tool()
async def search(query: str, limit: int = 5) -> list[str]:
    """Search the notes."""
    return [n for n in NOTES if query.lower() in n.lower()][:limit]


@app.tool()
async def count(n: int, ctx: Context) -> int:
    """Report progress n times (a streamed answer where the platform streams; dropped with JSON answers)."""
    for i in range(1, n + 1):
        await ctx.report_progress(i, n)
    return n


class Name(BaseModel):
    name: str


@app.tool()
async def greet(ctx: Context) -> str:
    """Ask the user's name, then greet them. On 2026-07-28 the question is an MRTR round: the
    retry may reach another instance, which opens the round's state with ANYPORT_STATE_KEYS."""
    answer = await ctx.elicit("What is your name?", Name)
    return f"Hello, {answer.content.name}!" if answer.content else "Hello!"


@app.tool()
def whoami() -> str:
    """The process that answered (functions come and go)."""
    return str(os.getpid())
