"""A remote server for ``anyport connect``, written with the official Python SDK (``mcp==2.3.0``).

``MCPServer`` served by the SDK's own Starlette apps (``streamable_http_app`` or ``sse_app``) on
uvicorn, as ``MCPServer.run`` does, except that the socket is bound here, on 127.0.0.1 with a port
chosen by the kernel, and the port is written on stdout (one line) once the socket listens: the
test that starts this process reads it, so no port is guessed.

Tools: ``add`` (structured result), ``steps`` (progress with messages, one log message),
``ask_name`` (an elicitation) and ``summarize`` (a sampling request), both written with the SDK's
``Resolve`` markers so that the SDK asks them in either era (a request mid-call to a 2025-11-25
client, an ``input_required`` result to a 2026-07-28 one), ``fail`` (a tool error). A resource
``res://greeting`` and a prompt ``greet``.

Run: ``python sdk_http_server.py [--sse]`` (``--sse``: the 2024-11-05 HTTP+SSE transport at
``/sse`` + ``/messages/`` instead of Streamable HTTP at ``/mcp``).
"""

from __future__ import annotations

import argparse
import socket
import warnings
from typing import Annotated

import uvicorn
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
    Sample,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import CreateMessageResult, SamplingMessage, TextContent
from pydantic import BaseModel
from typing_extensions import TypedDict

# Logging and sampling are deprecated at 2026-07-28, still served to clients of older revisions.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

mcp = MCPServer("sdk-remote", version="2.3.0", instructions="An official Python SDK server behind anyport connect.")


class NameForm(BaseModel):
    name: str


class Sum(TypedDict):
    result: int


def ask_for_name() -> Elicit[NameForm]:
    return Elicit("What is your name?", NameForm)


def sample_summary(text: str) -> Sample:
    return Sample([SamplingMessage(role="user", content=TextContent(type="text", text=text))], max_tokens=20)


@mcp.tool()
def add(a: int, b: int) -> Sum:
    """Add two integers."""
    return Sum(result=a + b)


@mcp.tool(structured_output=False)
async def steps(count: int, ctx: Context) -> str:
    """Report progress 1..count of count (with a message each), then log one info message."""
    for step in range(1, count + 1):
        await ctx.report_progress(step, count, f"step {step}")
    await ctx.log("info", f"{count} steps done", logger_name="sdk-remote")
    return f"done {count}"


@mcp.tool(structured_output=False)
def ask_name(answer: Annotated[ElicitationResult[NameForm], Resolve(ask_for_name)]) -> str:
    """Elicit the user's name."""
    return f"Hello, {answer.data.name}" if isinstance(answer, AcceptedElicitation) else answer.action


@mcp.tool(structured_output=False)
def summarize(text: str, sampled: Annotated[CreateMessageResult, Resolve(sample_summary)]) -> str:
    """Ask the client's model to summarize the text."""
    content = sampled.content
    return f"summary: {content.text}" if isinstance(content, TextContent) else "summary: ?"


@mcp.tool(structured_output=False)
def fail() -> str:
    """Always fails (a tool error, isError: true)."""
    raise ToolError("boom")


@mcp.resource("res://greeting", name="greeting", mime_type="text/plain")
def greeting() -> str:
    return "Hello from the SDK"


@mcp.prompt()
def greet(name: str) -> str:
    """Greet someone."""
    return f"Say hello to {name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sse", action="store_true", help="the HTTP+SSE transport instead of Streamable HTTP")
    args = parser.parse_args()
    app = mcp.sse_app(host="127.0.0.1") if args.sse else mcp.streamable_http_app(host="127.0.0.1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(sock.getsockname()[1], flush=True)  # the only line on stdout
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
