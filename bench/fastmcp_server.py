"""The interop fixture's plain tools served by FastMCP (``fastmcp==4.1.6``), for the benchmark.

Written against FastMCP's public API (``FastMCP``, ``@mcp.tool``, ``@mcp.resource``,
``@mcp.prompt``, ``Context``, ``mcp.run``) with the same names, arguments and results as
``tests/interop/FIXTURE.md``: ``echo``, ``add``, ``weather``, ``progress``, ``log``, ``sleep``,
``fail``, the ``res://greeting`` resource, the ``res://items/{id}`` template and the ``greet``
prompt. The fixture tools that call back into the client (elicitation, sampling, roots) are left
out: the benchmark never calls them, and they would only lengthen ``tools/list``.

It runs in the peers environment the harness creates (``bench/.peers-venv``, see
``bench/peers-requirements.txt``), never in the repo's ``.venv``.

Run: ``python bench/fastmcp_server.py`` (stdio), ``python bench/fastmcp_server.py --port N
[--stateless] [--json-response]`` (Streamable HTTP on ``127.0.0.1:N/mcp``), or ``--sse --port N``
(the 2024-11-05 HTTP+SSE transport at ``/sse``). The banner is off and uvicorn logs at WARNING, as
for the other servers, so nothing is written per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

# bench/http.py would shadow the standard library's http package (uvicorn imports it): run
# as a script, this file's directory must not stay first on the import path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from fastmcp import Context, FastMCP  # noqa: E402  (after the sys.path fix above)
from fastmcp.exceptions import ToolError  # noqa: E402
from pydantic import BaseModel  # noqa: E402

mcp = FastMCP("interop-fixture", version="1.0.0")


class Weather(BaseModel):
    city: str
    temp_c: float


@mcp.tool
async def echo(text: str) -> str:
    """Echo the text back."""
    return text


@mcp.tool
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.tool
async def weather(city: str) -> Weather:
    """The weather in a city (always mild)."""
    return Weather(city=city, temp_c=21.5)


@mcp.tool
async def progress(steps: int, ctx: Context) -> str:
    """Report progress for each step."""
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps)
    return f"done {steps}"


@mcp.tool
async def log(message: str, ctx: Context, level: str = "info") -> str:
    """Send a log message at a level."""
    await ctx.log(message, level=level, logger_name="fixture")  # type: ignore[arg-type]
    return "logged"


@mcp.tool
async def sleep(seconds: float) -> str:
    """Sleep (cancellable)."""
    await asyncio.sleep(seconds)
    return "slept"


@mcp.tool
async def fail() -> str:
    """Always fails."""
    raise ToolError("boom")


@mcp.resource("res://greeting", name="greeting", mime_type="text/plain")
def greeting() -> str:
    return "Hello, world"


@mcp.resource("res://items/{id}", name="item", mime_type="text/plain")
def item(id: str) -> str:
    return f"item {id}"


@mcp.prompt
def greet(name: str) -> str:
    """Greet someone."""
    return f"Say hello to {name}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, help="serve HTTP on 127.0.0.1:PORT instead of stdio")
    p.add_argument("--stateless", action="store_true", help="stateless_http=True")
    p.add_argument("--json-response", action="store_true", help="json_response=True")
    p.add_argument("--sse", action="store_true", help="the 2024-11-05 HTTP+SSE transport instead of Streamable HTTP")
    args = p.parse_args()
    if args.port is None:
        mcp.run("stdio", show_banner=False, log_level="WARNING")
    elif args.sse:
        mcp.run("sse", show_banner=False, host="127.0.0.1", port=args.port, log_level="WARNING")
    else:
        mcp.run(
            "http", show_banner=False, host="127.0.0.1", port=args.port, path="/mcp", log_level="WARNING",
            stateless_http=args.stateless, json_response=args.json_response,
        )


if __name__ == "__main__":
    main()
