"""Interop fixture client built on the official Python MCP SDK (``mcp==2.3.0``).

Connects to a fixture server (``tests/interop/FIXTURE.md``), runs every step of the
fixture report and prints that one JSON object on stdout. It exits 0 even when steps
fail: a failing step is recorded as ``{"error": "<type>: <message>"}``.

Usage::

    python sdk_client.py --era legacy|modern [--protocol-version V] -- COMMAND ARGS...
    python sdk_client.py --era legacy|modern [--protocol-version V] --url URL [--sse]

Eras, all through the SDK's ``Client``:

* ``--era legacy``: ``Client(mode="legacy")``, the ``initialize`` handshake. The SDK
  always offers 2025-11-25; another ``--protocol-version`` is put on the wire by
  rewriting ``params.protocolVersion`` of the outgoing ``initialize`` (the SDK has no
  knob for it). ``logging/setLevel debug`` is sent before the ``log`` step.
* ``--era modern``: ``Client(mode="auto")``, the SDK default: it probes
  ``server/discover`` at 2026-07-28 and adopts the result (it falls back to
  ``initialize`` if the server does not answer discover; the report's ``era`` then says
  ``legacy``). With ``--protocol-version V`` the client is pinned instead
  (``Client(mode=V)``): no probe, the first request is already enveloped, and
  ``serverName`` comes from the ``_meta`` serverInfo stamp of the ``tools/list`` result. Every request
  carries the ``_meta`` envelope and the log level ``debug``; ``input_required`` results
  are resolved by the SDK through the sampling/elicitation/roots callbacks below.

``--url`` uses Streamable HTTP; ``--url --sse`` uses the legacy HTTP+SSE transport.
Each step is bounded by ``--step-timeout`` and the whole run by ``--total-timeout``, so
the script never hangs. If the connection fails or the run times out, every step not
yet run carries that error and the report gets an extra top-level ``"error"``.

A stdio server inherits this process's whole environment (the SDK alone would pass only
HOME, LOGNAME, PATH, SHELL, TERM and USER).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import sys
import warnings
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

import anyio
from mcp import Client, StdioServerParameters
from mcp.client._transport import Transport, TransportStreams, WriteStream
from mcp.client.session import ClientRequestContext
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import SessionMessage
from mcp_types import (
    SERVER_INFO_META_KEY,
    CallToolResult,
    ContentBlock,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
    Implementation,
    JSONRPCRequest,
    ListRootsResult,
    LoggingMessageNotificationParams,
    PromptReference,
    ResourceTemplateReference,
    Root,
    SamplingMessage,
    TextContent,
    TextResourceContents,
)
from mcp_types.version import LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS
from pydantic import FileUrl

# Logging and roots are deprecated at 2026-07-28 but still part of the fixture.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

ROOT_URI = "file:///tmp/fixture-root"
SETTLE_SECONDS = 1.0
"""How long to wait after a call for notifications the SDK delivers on a separate task."""

STEP_NAMES = (
    "tools",
    "echo",
    "add",
    "weather",
    "progress",
    "log",
    "ask_name",
    "summarize",
    "list_roots",
    "fail",
    "unknown_tool",
    "cancel",
    "resources",
    "read",
    "templates",
    "read_template",
    "prompts",
    "prompt",
    "complete_prompt",
    "complete_resource",
)


# ---------------------------------------------------------------- helpers


def describe(exc: BaseException) -> str:
    """``"<type>: <message>"``, unwrapping single-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    message = str(exc)
    if isinstance(exc, MCPError):
        message = f"[{exc.code}] {exc.error.message}"
    return f"{type(exc).__name__}: {message}"


def first_text(content: list[ContentBlock]) -> str | None:
    return next((block.text for block in content if isinstance(block, TextContent)), None)


def number(value: float) -> float | int:
    """Render integral floats as ints so ``[1, 3]`` does not print as ``[1.0, 3.0]``."""
    return int(value) if math.isfinite(value) and value == int(value) else value


async def settle(event: anyio.Event) -> None:
    """Wait (bounded) for ``event``: the SDK hands notifications to callbacks on their own
    task, so they can trail the response they preceded on the wire."""
    with anyio.move_on_after(SETTLE_SECONDS):
        await event.wait()


class PinnedInitializeWriter:
    """Write stream that puts a chosen ``protocolVersion`` on the outgoing ``initialize``.

    The SDK's handshake always offers its newest handshake version (2025-11-25); this is
    the one place the fixture client reaches under it, for ``--protocol-version``.
    """

    def __init__(self, inner: WriteStream[SessionMessage], version: str) -> None:
        self._inner = inner
        self._version = version

    async def send(self, item: SessionMessage, /) -> None:
        message = item.message
        if isinstance(message, JSONRPCRequest) and message.method == "initialize":
            params = {**(message.params or {}), "protocolVersion": self._version}
            item = replace(item, message=message.model_copy(update={"params": params}))
        await self._inner.send(item)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class PinnedInitializeTransport:
    """Wrap a transport so its ``initialize`` offers ``version``."""

    def __init__(self, inner: AbstractAsyncContextManager[TransportStreams], version: str) -> None:
        self._inner = inner
        self._version = version

    async def __aenter__(self) -> TransportStreams:
        read_stream, write_stream = await self._inner.__aenter__()
        return read_stream, PinnedInitializeWriter(write_stream, self._version)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._inner.__aexit__(exc_type, exc, tb)


# ---------------------------------------------------------------- what fixture clients answer


class FixtureAnswers:
    """The client-side callbacks, plus what the server sent to them."""

    def __init__(self) -> None:
        self.log_messages: list[dict[str, Any]] = []
        self.log_arrived = anyio.Event()

    async def sampling(self, context: ClientRequestContext, params: CreateMessageRequestParams) -> CreateMessageResult:
        first_user = next((m for m in params.messages if m.role == "user"), None)
        text = self._message_text(first_user) if first_user is not None else ""
        return CreateMessageResult(
            role="assistant",
            model="fixture-model",
            content=TextContent(type="text", text=f"sampled: {text}"),
            stop_reason="endTurn",
        )

    @staticmethod
    def _message_text(message: SamplingMessage) -> str:
        blocks = message.content if isinstance(message.content, list) else [message.content]
        return "".join(block.text for block in blocks if isinstance(block, TextContent))

    async def elicitation(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="accept", content={"name": "Ada"})

    async def roots(self, context: ClientRequestContext) -> ListRootsResult | ErrorData:
        return ListRootsResult(roots=[Root(uri=FileUrl(ROOT_URI), name="root")])

    async def logging(self, params: LoggingMessageNotificationParams) -> None:
        self.log_messages.append({"level": params.level, "logger": params.logger, "data": params.data})
        self.log_arrived.set()


# ---------------------------------------------------------------- the report steps


class FixtureRun:
    """Runs the report steps against one connected ``Client``."""

    def __init__(self, client: Client, answers: FixtureAnswers, era: str) -> None:
        self.client = client
        self.answers = answers
        self.era = era
        self.server_name_stamp: str | None = None

    async def call_text(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        result = await self.client.call_tool(name, arguments or {})
        return {"text": first_text(result.content)}

    async def tools(self) -> list[str]:
        names: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.client.list_tools(cursor=cursor)
            stamp = (page.meta or {}).get(SERVER_INFO_META_KEY)
            if isinstance(stamp, dict) and isinstance(stamp.get("name"), str):
                self.server_name_stamp = stamp["name"]
            names.extend(tool.name for tool in page.tools)
            cursor = page.next_cursor
            if cursor is None:
                return sorted(names)

    async def echo(self) -> dict[str, Any]:
        result = await self.client.call_tool("echo", {"text": "hello"})
        return {"text": first_text(result.content), "isError": result.is_error}

    async def add(self) -> dict[str, Any]:
        result = await self.client.call_tool("add", {"a": 2, "b": 3})
        return {
            "structuredContent": result.structured_content,
            "text": first_text(result.content),
            "isError": result.is_error,
        }

    async def weather(self) -> dict[str, Any]:
        result = await self.client.call_tool("weather", {"city": "Paris"})
        return {"structuredContent": result.structured_content, "isError": result.is_error}

    async def progress(self) -> dict[str, Any]:
        events: list[list[float | int | None]] = []
        all_seen = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            events.append([number(progress), None if total is None else number(total)])
            if len(events) >= 3:
                all_seen.set()

        result = await self.client.call_tool("progress", {"steps": 3}, progress_callback=on_progress)
        await settle(all_seen)
        return {"text": first_text(result.content), "events": events}

    async def log(self) -> dict[str, Any]:
        if self.era == "legacy":
            await self.client.set_logging_level("debug")
        # On 2026-07-28 the level rides every request's _meta (Client(log_level="debug")).
        self.answers.log_messages.clear()
        self.answers.log_arrived = anyio.Event()
        result = await self.client.call_tool("log", {"message": "hi", "level": "warning"})
        await settle(self.answers.log_arrived)
        return {"text": first_text(result.content), "messages": list(self.answers.log_messages)}

    async def ask_name(self) -> dict[str, Any]:
        return await self.call_text("ask_name")

    async def summarize(self) -> dict[str, Any]:
        return await self.call_text("summarize", {"text": "hello"})

    async def list_roots(self) -> dict[str, Any]:
        return await self.call_text("list_roots")

    async def fail(self) -> dict[str, Any]:
        result = await self.client.call_tool("fail", {})
        return {"isError": result.is_error, "text": first_text(result.content)}

    async def unknown_tool(self) -> dict[str, Any]:
        try:
            result: CallToolResult = await self.client.call_tool("no_such_tool", {})
        except MCPError as exc:
            return {"errorCode": exc.code}
        return {"isError": result.is_error, "text": first_text(result.content)}

    async def cancel(self) -> dict[str, Any]:
        scope = anyio.CancelScope()
        finished: list[CallToolResult] = []

        async def call_sleep() -> None:
            with scope:
                finished.append(await self.client.call_tool("sleep", {"seconds": 30}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(call_sleep)
            await anyio.sleep(0.3)
            # Cancelling the awaiting task makes the SDK send notifications/cancelled.
            scope.cancel()
        after = await self.client.call_tool("echo", {"text": "still-alive"})
        return {"cancelled": scope.cancelled_caught and not finished, "after": first_text(after.content)}

    async def resources(self) -> list[str]:
        uris: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.client.list_resources(cursor=cursor)
            uris.extend(str(resource.uri) for resource in page.resources)
            cursor = page.next_cursor
            if cursor is None:
                return sorted(uris)

    async def read(self) -> dict[str, Any]:
        result = await self.client.read_resource("res://greeting")
        content = result.contents[0]
        text = content.text if isinstance(content, TextResourceContents) else None
        return {"text": text, "mimeType": content.mime_type}

    async def templates(self) -> list[str]:
        uris: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.client.list_resource_templates(cursor=cursor)
            uris.extend(template.uri_template for template in page.resource_templates)
            cursor = page.next_cursor
            if cursor is None:
                return sorted(uris)

    async def read_template(self) -> dict[str, Any]:
        result = await self.client.read_resource("res://items/42")
        content = result.contents[0]
        return {"text": content.text if isinstance(content, TextResourceContents) else None}

    async def prompts(self) -> list[str]:
        names: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.client.list_prompts(cursor=cursor)
            names.extend(prompt.name for prompt in page.prompts)
            cursor = page.next_cursor
            if cursor is None:
                return sorted(names)

    async def prompt(self) -> dict[str, Any]:
        result = await self.client.get_prompt("greet", {"name": "Bob"})
        messages: list[dict[str, Any]] = []
        for message in result.messages:
            text = message.content.text if isinstance(message.content, TextContent) else None
            messages.append({"role": message.role, "text": text})
        return {"messages": messages}

    async def complete_prompt(self) -> list[str]:
        result = await self.client.complete(
            PromptReference(type="ref/prompt", name="greet"), {"name": "name", "value": "a"}
        )
        return result.completion.values

    async def complete_resource(self) -> list[str]:
        ref = ResourceTemplateReference(type="ref/resource", uri="res://items/{id}")
        result = await self.client.complete(ref, {"name": "id", "value": "2"})
        return result.completion.values


# ---------------------------------------------------------------- driver


def build_transport(args: argparse.Namespace) -> Transport:
    if args.url:
        transport: Transport = sse_client(args.url) if args.sse else streamable_http_client(args.url)
    else:
        command, *command_args = args.command
        # Inherit the whole environment (the SDK passes only a safe subset by default).
        transport = stdio_client(StdioServerParameters(command=command, args=command_args, env=dict(os.environ)))
    if args.era == "legacy" and args.protocol_version and args.protocol_version != LATEST_HANDSHAKE_VERSION:
        transport = PinnedInitializeTransport(transport, args.protocol_version)
    return transport


async def run_fixture(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"era": None, "protocolVersion": None, "serverName": None}
    answers = FixtureAnswers()
    mode = "legacy" if args.era == "legacy" else args.protocol_version or "auto"
    failure: str | None = None

    async def step(name: str, fn: Callable[[], Awaitable[Any]]) -> None:
        try:
            with anyio.fail_after(args.step_timeout):
                report[name] = await fn()
        except TimeoutError:
            report[name] = {"error": f"TimeoutError: step timed out after {args.step_timeout} s"}
        except Exception as exc:  # any failure is recorded in the report
            report[name] = {"error": describe(exc)}

    with anyio.move_on_after(args.total_timeout) as total:
        try:
            client = Client(
                build_transport(args),
                mode=mode,
                read_timeout_seconds=args.step_timeout,
                sampling_callback=answers.sampling,
                elicitation_callback=answers.elicitation,
                list_roots_callback=answers.roots,
                logging_callback=answers.logging,
                log_level="debug",
                client_info=Implementation(
                    name="mcp-python-sdk-fixture-client", version=importlib.metadata.version("mcp")
                ),
                cache=None,
            )
            async with client:
                version = client.protocol_version
                era = "modern" if version in MODERN_PROTOCOL_VERSIONS else "legacy"
                report["era"] = era
                report["protocolVersion"] = version
                report["serverName"] = client.server_info.name if client.server_info is not None else None
                run = FixtureRun(client, answers, era)
                for name in STEP_NAMES:
                    await step(name, getattr(run, name))
                    if name == "tools" and report["serverName"] is None:
                        # A pinned 2026-07-28 client skips server/discover; every modern
                        # result carries the server's identity in `_meta`.
                        report["serverName"] = run.server_name_stamp
        except Exception as exc:  # a failed connection still yields a report
            failure = describe(exc)
    if total.cancelled_caught:
        failure = f"TimeoutError: run exceeded {args.total_timeout} s"
    for name in STEP_NAMES:
        if name not in report:
            report[name] = {"error": failure or "not run"}
    if failure is not None:
        report["error"] = failure
    return report


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--era", choices=("legacy", "modern"), required=True)
    parser.add_argument("--protocol-version", help="legacy: version offered in initialize; modern: pin, no probe")
    parser.add_argument("--url", help="connect over Streamable HTTP (or HTTP+SSE with --sse) instead of stdio")
    parser.add_argument("--sse", action="store_true", help="with --url: legacy HTTP+SSE transport")
    parser.add_argument("--step-timeout", type=float, default=10.0)
    parser.add_argument("--total-timeout", type=float, default=120.0)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS... (stdio server)")
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if bool(args.url) == bool(args.command):
        parser.error("give exactly one of --url URL or -- COMMAND ARGS...")
    if args.sse and not args.url:
        parser.error("--sse needs --url")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = anyio.run(run_fixture, args)
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
