"""Interop fixture server built on the official Python MCP SDK (``mcp==2.3.0``).

Serves the feature set described in ``tests/interop/FIXTURE.md`` over stdio so our own
client can be tested against a server nobody on our team wrote.

One process serves either protocol era: the SDK's ``Server.run`` (reached through
``MCPServer.run("stdio")``) drives ``serve_dual_era_loop``, which lets the client's first
request pick the era. An ``initialize`` request opens a handshake-era connection
(2024-11-05 .. 2025-11-25); any other request whose ``_meta`` carries
``io.modelcontextprotocol/protocolVersion`` opens a 2026-07-28 connection.

Elicitation, sampling and roots are written once with the SDK's ``Resolve`` resolvers
(``Elicit`` / ``Sample`` / ``ListRoots`` markers): on handshake-era connections the SDK
sends ``elicitation/create`` / ``sampling/createMessage`` / ``roots/list`` requests
mid-call, on 2026-07-28 it answers ``tools/call`` with an ``input_required`` result and
resumes when the client retries with ``inputResponses`` and ``requestState``.

The only low-level piece is a ``logging/setLevel`` handler: ``MCPServer`` does not
register one, and the fixture's legacy clients send it before calling ``log``.

Nothing is printed on stdout: stdout is the protocol channel.

Run: ``python sdk_server.py`` (needs ``mcp==2.3.0`` installed), or ``python sdk_server.py --http PORT``
to serve the same fixture over the SDK's Streamable HTTP transport on ``127.0.0.1:PORT/mcp``, or
``python sdk_server.py --sse PORT [--sse-path /sse]`` for its legacy HTTP+SSE transport.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    ListRoots,
    MCPServer,
    Resolve,
    Sample,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageResult,
    EmptyResult,
    ListRootsResult,
    LoggingLevel,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    SetLevelRequestParams,
    TextContent,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict
from typing_extensions import TypedDict

# Logging, sampling and roots are deprecated at 2026-07-28 but still part of the fixture.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

LEVELS: tuple[LoggingLevel, ...] = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
PROMPT_NAMES = ("alice", "bob", "carol")
ITEM_IDS = ("1", "2", "3")

mcp = MCPServer("interop-fixture", version="1.0.0", log_level="WARNING")


def _strip_titles(schema: dict[str, Any]) -> None:
    """Drop pydantic's generated titles so the rendered schema is exactly the fixture's."""
    schema.pop("title", None)
    schema.pop("description", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)


class NameForm(BaseModel):
    """The form ``ask_name`` elicits: ``{"name": string}``, required (titles/description stripped)."""

    model_config = ConfigDict(json_schema_extra=_strip_titles)

    name: str


# Structured result of `add`: a TypedDict (not a bare int) so the SDK's text block is the JSON
# of the whole structured content, `{"result": 5}`, rather than just `5`. No docstring: it
# would leak into the outputSchema.
class AddResult(TypedDict):
    result: int


# Structured result of `weather`. No docstring: it would leak into the outputSchema.
class Weather(TypedDict):
    city: str
    temp_c: float


# ---------------------------------------------------------------- resolvers (dual-era)


def ask_for_name() -> Elicit[NameForm]:
    return Elicit("What is your name?", NameForm)


def sample_summary(text: str) -> Sample:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
    return Sample([message], max_tokens=50)


def fetch_roots() -> ListRoots:
    return ListRoots()


# ---------------------------------------------------------------- tools


@mcp.tool(structured_output=False)
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@mcp.tool()
def add(a: int, b: int) -> AddResult:
    """Add two integers."""
    return AddResult(result=a + b)


@mcp.tool()
def weather(city: str) -> Weather:
    """Fixed weather report for a city."""
    return Weather(city=city, temp_c=21.5)


@mcp.tool(structured_output=False)
async def progress(steps: int, ctx: Context) -> str:
    """Report progress 1..steps out of steps."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps)
    return f"done {steps}"


_legacy_min_level: list[LoggingLevel] = ["debug"]
"""Threshold set by ``logging/setLevel`` (stdio: one connection per process)."""


@mcp.tool(structured_output=False)
async def log(message: str, ctx: Context, level: LoggingLevel = "info") -> str:
    """Send one notifications/message with the given level, logger ``fixture``."""
    # 2026-07-28 filtering is done by the SDK from the request's `_meta` log level;
    # the handshake era leaves filtering to the application (logging/setLevel).
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS or LEVELS.index(level) >= LEVELS.index(_legacy_min_level[0]):
        await ctx.log(level, message, logger_name="fixture")
    return "logged"


@mcp.tool(structured_output=False)
def ask_name(answer: Annotated[ElicitationResult[NameForm], Resolve(ask_for_name)]) -> str:
    """Elicit the user's name (form mode)."""
    if isinstance(answer, AcceptedElicitation):
        return f"Hello, {answer.data.name}"
    return "declined" if answer.action == "decline" else "cancelled"


@mcp.tool(structured_output=False)
def summarize(text: str, sampled: Annotated[CreateMessageResult, Resolve(sample_summary)]) -> str:
    """Ask the client's LLM to summarize the text; returns the sampled text."""
    content = sampled.content
    return content.text if isinstance(content, TextContent) else str(content)


@mcp.tool(structured_output=False)
def list_roots(roots: Annotated[ListRootsResult, Resolve(fetch_roots)]) -> str:
    """The client's root URIs joined by commas."""
    return ",".join(str(root.uri) for root in roots.roots)


@mcp.tool(structured_output=False)
async def sleep(seconds: float) -> str:
    """Sleep (cancellable via notifications/cancelled)."""
    await anyio.sleep(seconds)
    return "slept"


@mcp.tool(structured_output=False)
def fail() -> str:
    """Always fails with an error result containing ``boom``."""
    raise ToolError("boom")


# ---------------------------------------------------------------- resources and prompts


@mcp.resource("res://greeting", name="greeting", mime_type="text/plain")
def greeting() -> str:
    return "Hello, world"


@mcp.resource("res://items/{id}", name="item", mime_type="text/plain")
def item(id: str) -> str:
    return f"item {id}"


@mcp.prompt()
def greet(name: str) -> str:
    """Greet someone."""
    return f"Say hello to {name}"


@mcp.completion()  # type: ignore[untyped-decorator, no-untyped-call]  # SDK decorator is unannotated
async def complete(
    ref: PromptReference | ResourceTemplateReference,
    argument: CompletionArgument,
    context: CompletionContext | None,
) -> Completion | None:
    if isinstance(ref, PromptReference) and ref.name == "greet" and argument.name == "name":
        pool: tuple[str, ...] = PROMPT_NAMES
    elif isinstance(ref, ResourceTemplateReference) and ref.uri == "res://items/{id}" and argument.name == "id":
        pool = ITEM_IDS
    else:
        return None
    values = [value for value in pool if value.startswith(argument.value)]
    return Completion(values=values, total=len(values), has_more=False)


# ---------------------------------------------------------------- low-level: logging/setLevel


async def set_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
    _legacy_min_level[0] = params.level
    return EmptyResult()


mcp._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)  # pyright: ignore[reportPrivateUsage]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="The interop fixture on the official Python SDK")
    parser.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio")
    parser.add_argument("--sse", type=int, metavar="PORT", help="serve the 2024-11-05 HTTP+SSE transport on 127.0.0.1:PORT")
    parser.add_argument("--sse-path", default="/sse", help="with --sse: the GET endpoint (messages go to /messages/)")
    args = parser.parse_args()
    if args.sse is not None:
        # The SDK's HTTP+SSE app: GET sse_path opens the stream (first event: endpoint), POST /messages/?session_id=...
        mcp.run("sse", host="127.0.0.1", port=args.sse, sse_path=args.sse_path, message_path="/messages/")
    elif args.http is None:
        mcp.run("stdio")
    else:
        # The SDK's Streamable HTTP app (dual-era: initialize opens a session, 2026-07-28 requests are stateless).
        mcp.run("streamable-http", host="127.0.0.1", port=args.http, streamable_http_path="/mcp")
