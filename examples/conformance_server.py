"""The fixtures the official conformance suite (@modelcontextprotocol/conformance) expects of a server.

Every tool, resource and prompt name below is one a server scenario calls; the behaviour follows the
scenario's own description (tests/conformance/node_modules/@modelcontextprotocol/conformance). Only the
public anyport API is used, so a scenario that fails here fails for a reason a user would hit too.

    anyport serve examples/conformance_server.py --http --port 3001
    tests/conformance/run.py                 # runs the suite against it
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import wave
import zlib
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, create_model

from anyport import (
    Audio,
    Context,
    EmbeddedResource,
    Image,
    InternalError,
    Message,
    ResourceContents,
    Server,
    TextContent,
    ToolError,
    ToolResult,
)

app = Server("anyport-conformance", version="1.0.0")


def _png_1x1() -> bytes:
    """A valid 1x1 red PNG, built by hand (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence() -> bytes:
    """A tenth of a second of 8 kHz mono silence as a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 800)
    return buf.getvalue()


PNG = _png_1x1()
WAV = _wav_silence()

# -- tools: content types ------------------------------------------------------------------------------


@app.tool()
def test_simple_text() -> str:
    """Returns a simple text response."""
    return "This is a simple text response for testing."


@app.tool()
def test_image_content() -> Image:
    """Returns a 1x1 PNG image."""
    return Image(PNG, "image/png")


@app.tool()
def test_audio_content() -> Audio:
    """Returns a short WAV clip."""
    return Audio(WAV, "audio/wav")


@app.tool()
def test_embedded_resource() -> EmbeddedResource:
    """Returns an embedded text resource."""
    return EmbeddedResource("test://embedded-resource", text="This is an embedded resource content.", mime_type="text/plain")


@app.tool(structured_output=False)
def test_multiple_content_types() -> ToolResult:
    """Returns text, an image and an embedded resource."""
    return ToolResult(
        content=[
            TextContent("Multiple content types test:"),
            Image(PNG, "image/png"),
            EmbeddedResource(
                "test://mixed-content-resource", text=json.dumps({"test": "data", "value": 123}), mime_type="application/json"
            ),
        ]
    )


@app.tool()
def test_error_handling() -> str:
    """Always fails with an error result."""
    raise ToolError("This tool intentionally returns an error for testing")


# -- tools: notifications during a call ------------------------------------------------------------------


@app.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Sends three info log messages, about 50 ms apart."""
    await ctx.info("Tool execution started")
    await asyncio.sleep(0.05)
    await ctx.info("Tool processing data")
    await asyncio.sleep(0.05)
    await ctx.info("Tool execution completed")
    return "Tool with logging executed successfully"


@app.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50 and 100 of 100, about 50 ms apart."""
    await ctx.report_progress(0, 100)
    await asyncio.sleep(0.05)
    await ctx.report_progress(50, 100)
    await asyncio.sleep(0.05)
    await ctx.report_progress(100, 100)
    return "Tool with progress executed successfully"


@app.tool()
async def test_reconnection() -> str:
    """SEP-1699: meant to close its SSE stream mid-call; the result follows after the client reconnects."""
    await asyncio.sleep(0.1)
    return "Reconnection test completed successfully."


@app.tool()
async def test_logging_tool(ctx: Context) -> str:
    """Logs one info message (sent only when the request asked for a log level)."""
    await ctx.info("Diagnostic trace logging activated")
    return "Logging evaluated"


# -- tools: asking the client (legacy: server->client requests; 2026-07-28: MRTR rounds) -------------------


def _text_of(answer: Any) -> str:
    return json.dumps(answer, sort_keys=True, default=str)


@app.tool()
async def test_sampling(prompt: str, ctx: Context) -> str:
    """Asks the client's LLM to complete the prompt."""
    result = await ctx.sample(prompt, max_tokens=100)
    return f"LLM response: {result.text}"


@app.tool()
async def test_elicitation(message: str, ctx: Context) -> str:
    """Asks the user for a username and an email address."""
    answer = await ctx.elicit(
        message,
        {
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            "required": ["username", "email"],
        },
    )
    return f"User response: action={answer.action}, content={_text_of(answer.content)}"


@app.tool()
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """SEP-1034: elicits a form whose every primitive field has a default."""
    answer = await ctx.elicit(
        "Please review and update the form fields with defaults",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": True},
            },
            "required": [],
        },
    )
    return f"Elicitation completed: action={answer.action}, content={_text_of(answer.content)}"


@app.tool()
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """SEP-1330: elicits a form with the five kinds of enum field."""
    answer = await ctx.elicit(
        "Please select options from the enum fields",
        {
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"],
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": [
                        {"const": "value1", "title": "First Option"},
                        {"const": "value2", "title": "Second Option"},
                        {"const": "value3", "title": "Third Option"},
                    ],
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "minItems": 1,
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "minItems": 1,
                    "items": {
                        "anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"},
                        ]
                    },
                },
            },
            "required": [],
        },
    )
    return f"Elicitation completed: action={answer.action}, content={_text_of(answer.content)}"


_NAME_FORM = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
_CONFIRM_FORM = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


@app.tool()
async def test_input_required_result_elicitation(ctx: Context) -> str:
    """SEP-2322: asks for the user's name (input request key "user_name"), then greets them."""
    answer = await ctx.elicit("What is your name?", _NAME_FORM, key="user_name")
    name = (answer.content or {}).get("name", "stranger") if isinstance(answer.content, dict) else "stranger"
    return f"Hello, {name}!"


@app.tool()
async def test_input_required_result_sampling(ctx: Context) -> str:
    """SEP-2322: asks the client's LLM a question."""
    result = await ctx.sample("What is the capital of France?", max_tokens=100)
    return f"LLM response: {result.text}"


@app.tool()
async def test_input_required_result_list_roots(ctx: Context) -> str:
    """SEP-2322: asks for the client's roots."""
    roots = await ctx.list_roots()
    return "Roots: " + ", ".join(r.uri for r in roots)


@app.tool()
async def test_input_required_result_request_state(ctx: Context) -> str:
    """SEP-2322: asks for a confirmation; the answer comes back with the sealed requestState."""
    answer = await ctx.elicit("Please confirm", _CONFIRM_FORM)
    return f"state-ok: action={answer.action}"


@app.tool()
async def test_input_required_result_multiple_inputs(ctx: Context) -> str:
    """SEP-2322: an elicitation, a sampling and the roots, asked together: one round with three inputRequests."""
    answer, greeting, roots = await ctx.gather(
        ctx.elicit("What is your name?", _NAME_FORM, key="user_name"),
        ctx.sample("Generate a greeting", max_tokens=50, key="greeting"),
        ctx.list_roots(key="client_roots"),
    )
    return f"multiple-ok: {answer.action}, {greeting.text}, {len(roots)} roots"


@app.tool()
async def test_input_required_result_multi_round(ctx: Context) -> str:
    """SEP-2322: two questions, one round each."""
    first = await ctx.elicit("Step 1: What is your name?", _NAME_FORM)
    second = await ctx.elicit(
        "Step 2: What is your favorite color?",
        {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]},
    )
    return f"multi-round-ok: {_text_of(first.content)} {_text_of(second.content)}"


@app.tool()
async def test_input_required_result_tampered_state(ctx: Context) -> str:
    """SEP-2322: a tampered requestState must be rejected (anyport seals it with AES-GCM)."""
    answer = await ctx.elicit("Please confirm", _CONFIRM_FORM)
    return f"tampered-state: action={answer.action}"


@app.tool()
async def test_input_required_result_capabilities(ctx: Context) -> str:
    """SEP-2322: asks only for what the client declared (elicitation and/or sampling)."""
    got = []
    if "elicitation" in ctx.client_capabilities:
        answer = await ctx.elicit("Elicitation input", {"type": "object", "properties": {"value": {"type": "string"}}, "required": ["value"]})
        got.append(f"elicitation={answer.action}")
    if "sampling" in ctx.client_capabilities:
        result = await ctx.sample("Sample request", max_tokens=50)
        got.append(f"sampling={result.text}")
    return "capabilities-ok: " + (", ".join(got) or "no supported capabilities declared")


@app.tool()
async def test_missing_capability(ctx: Context) -> str:
    """SEP-2575: needs the client's sampling capability (-32021 when it was not declared)."""
    result = await ctx.sample("Say OK", max_tokens=10)
    return f"Success: {result.text}"


@app.tool()
async def test_streaming_elicitation(ctx: Context) -> str:
    """SEP-2575: elicits, so the response stream carries an incomplete result, never a bare request."""
    answer = await ctx.elicit("Streaming elicitation", _CONFIRM_FORM)
    return f"Streaming complete: action={answer.action}"


@app.tool()
async def test_trigger_tool_change() -> str:
    """SEP-2575: tells every subscriber that the tool list changed (notifications/tools/list_changed)."""
    await app.notify_list_changed("tools")
    return "Mutation triggered"


@app.tool()
async def test_trigger_prompt_change() -> str:
    """SEP-2575: tells every subscriber that the prompt list changed (notifications/prompts/list_changed)."""
    await app.notify_list_changed("prompts")
    return "Mutation triggered"


# -- tools: custom headers (SEP-2243) ---------------------------------------------------------------------


@app.tool()
def test_custom_header(
    region: Annotated[str, Field(description="Mirrored into the Mcp-Param-Region header", json_schema_extra={"x-mcp-header": "Region"})],
) -> str:
    """SEP-2243: a parameter the client mirrors into an Mcp-Param-Region header, which the server checks."""
    return f"region={region}"


# -- tools: JSON Schema 2020-12 (SEP-1613 / SEP-2106) -------------------------------------------------------


# The scenario looks for ``$defs.address``: pydantic names a definition after its model.
Address = create_model(
    "address",
    __config__=ConfigDict(json_schema_extra={"$anchor": "addressDef"}),
    street=(str | None, None),
    city=(str | None, None),
)


_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        },
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["name"]}, {"required": ["email"]}, {"required": ["phone"]}, {"not": {"required": ["contactMethod"]}}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"properties": {"phone": {"type": "string"}}},
    "additionalProperties": False,
}


@app.tool(input_schema=_SCHEMA_2020_12)
def json_schema_2020_12_tool(
    name: str | None = None,
    address: Address | None = None,  # type: ignore[valid-type]
    contactMethod: Annotated[Literal["phone", "email"] | None, Field()] = None,
    phone: str | None = None,
    email: str | None = None,
) -> str:
    """Takes arguments described with JSON Schema 2020-12 keywords ($defs, $anchor)."""
    return f"Received: name={name}, address={address}, contactMethod={contactMethod}"


# -- tools the tasks-* scenarios drive (2026-07-28 tasks extension; 2025-11-25 tasks) -------------------

_CONFIRM = {"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}
_NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def add_task_tools(app: Server) -> None:
    """The tools the tasks-* scenarios drive; also used by the tests (tests/server/_task_fixture.py)."""

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
        answer = await ctx.elicit(f"Delete {filename}?", _CONFIRM)
        confirmed = answer.accepted and bool((answer.content or {}).get("confirm"))
        return f"{'deleted' if confirmed else 'kept'} {filename}"

    @app.tool(task_support="optional")
    async def multi_input(ctx: Context) -> str:
        """Two questions at once."""
        a, b = await asyncio.gather(ctx.elicit("First?", _NAME), ctx.elicit("Second?", _NAME))
        return f"{(a.content or {}).get('name')} and {(b.content or {}).get('name')}"

    @app.tool(task_support="required", defer_task=True)
    async def test_tool_with_task(ctx: Context) -> str:
        """Asks for a name in the request (MRTR), then continues as a task."""
        answer = await ctx.elicit("Your name?", _NAME)
        await ctx.detach()
        await asyncio.sleep(0.05)
        return f"Hello, {(answer.content or {}).get('name')}!"


add_task_tools(app)


# -- resources ------------------------------------------------------------------------------------------------


@app.resource("test://static-text", name="static-text", mime_type="text/plain")
def static_text() -> str:
    """A static text resource."""
    return "This is the content of the static text resource."


@app.resource("test://static-binary", name="static-binary", mime_type="image/png")
def static_binary() -> bytes:
    """A static binary resource (a PNG image)."""
    return PNG


@app.resource("test://template/{id}/data", name="template-data", mime_type="application/json")
def template_data(id: str) -> ResourceContents:
    """Data for an id, from a resource template."""
    return ResourceContents(text=json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"}))


@app.resource("test://watched-resource", name="watched-resource", mime_type="text/plain")
def watched_resource() -> str:
    """A resource clients subscribe to."""
    return "Watched resource content"


# -- prompts --------------------------------------------------------------------------------------------------


@app.prompt()
def test_simple_prompt() -> str:
    """A simple prompt without arguments."""
    return "This is a simple prompt for testing."


@app.prompt()
def test_prompt_with_arguments(
    arg1: Annotated[str, Field(description="First test argument")],
    arg2: Annotated[str, Field(description="Second test argument")],
) -> str:
    """A prompt with two required arguments."""
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@app.prompt()
def test_prompt_with_embedded_resource(
    resourceUri: Annotated[str, Field(description="URI of the resource to embed")],
) -> list[Message]:
    """A prompt that embeds a resource."""
    return [
        Message("user", EmbeddedResource(resourceUri, text="Embedded resource content for testing.", mime_type="text/plain")),
        Message("user", "Please process the embedded resource above."),
    ]


@app.prompt()
def test_prompt_with_image() -> list[Message]:
    """A prompt with an image."""
    return [Message("user", Image(PNG, "image/png")), Message("user", "Please analyze the image above.")]


@app.prompt()
async def test_input_required_result_prompt(ctx: Context) -> str:
    """SEP-2322: a prompt that first asks the user for context."""
    answer = await ctx.elicit(
        "What context should the prompt use?",
        {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]},
    )
    context = answer.content.get("context", "") if isinstance(answer.content, dict) else ""
    return f"Use this context: {context}"


@app.completion(prompt="test_prompt_with_arguments", argument="arg1")
def complete_arg1(value: str, context: dict[str, str]) -> list[str]:
    return [v for v in ("paris", "park", "party", "test", "testValue1") if v.startswith(value)]


if __name__ == "__main__":
    app.run()
