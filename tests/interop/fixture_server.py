"""The interop fixture (tests/interop/FIXTURE.md) served by anyport."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from anyport import Context, Server, ToolError

app = Server("interop-fixture", version="1.0.0")


class Weather(BaseModel):
    city: str
    temp_c: float


class Name(BaseModel):
    name: str


@app.tool()
async def echo(text: str) -> str:
    """Echo the text back."""
    return text


@app.tool()
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool()
async def weather(city: str) -> Weather:
    """The weather in a city (always mild)."""
    return Weather(city=city, temp_c=21.5)


@app.tool()
async def progress(steps: int, ctx: Context) -> str:
    """Report progress for each step."""
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps)
    return f"done {steps}"


@app.tool()
async def log(message: str, ctx: Context, level: str = "info") -> str:
    """Send a log message at a level."""
    await ctx.log(level, message, logger="fixture")
    return "logged"


@app.tool()
async def ask_name(ctx: Context) -> str:
    """Ask the user for their name."""
    answer = await ctx.elicit("What is your name?", Name)
    if answer.action == "accept" and isinstance(answer.content, Name):
        return f"Hello, {answer.content.name}"
    return "declined" if answer.action == "decline" else "cancelled"


@app.tool()
async def summarize(text: str, ctx: Context) -> str:
    """Ask the client's model to summarise text."""
    result = await ctx.sample(text, max_tokens=50)
    return result.text


@app.tool()
async def list_roots(ctx: Context) -> str:
    """The client's roots, comma-separated."""
    return ",".join(r.uri for r in await ctx.list_roots())


@app.tool()
async def sleep(seconds: float) -> str:
    """Sleep (cancellable)."""
    await asyncio.sleep(seconds)
    return "slept"


@app.tool()
async def fail() -> str:
    """Always fails."""
    raise ToolError("boom")


@app.resource("res://greeting", name="greeting", mime_type="text/plain")
def greeting() -> str:
    return "Hello, world"


@app.resource("res://items/{id}", name="item", mime_type="text/plain")
def item(id: str) -> str:
    return f"item {id}"


@app.prompt()
def greet(name: str) -> str:
    """Greet someone."""
    return f"Say hello to {name}"


@app.completion(prompt="greet", argument="name")
def complete_name(value: str, context: dict[str, str]) -> list[str]:
    return [n for n in ("alice", "bob", "carol") if n.startswith(value)]


@app.completion(resource="res://items/{id}", argument="id")
def complete_id(value: str, context: dict[str, str]) -> list[str]:
    return [i for i in ("1", "2", "3") if i.startswith(value)]


if __name__ == "__main__":
    app.run()
