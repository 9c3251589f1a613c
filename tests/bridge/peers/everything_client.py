"""Drives the reference server (@modelcontextprotocol/server-everything) through a URL with the official
Python SDK client (``mcp==2.3.0``) and prints one JSON report on stdout.

Usage: python everything_client.py --url URL [--sse] [--mode legacy|auto]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

import anyio
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
    ListRootsResult,
    Root,
    TextContent,
)
from pydantic import FileUrl

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)


async def sampling(context: ClientRequestContext, params: CreateMessageRequestParams) -> CreateMessageResult:
    return CreateMessageResult(role="assistant", model="bridge-test", content=TextContent(type="text", text="sampled"), stop_reason="endTurn")


async def elicitation(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    return ElicitResult(action="decline")


async def roots(context: ClientRequestContext) -> ListRootsResult | ErrorData:
    return ListRootsResult(roots=[Root(uri=FileUrl("file:///tmp/bridge-root"), name="root")])


def text(result: Any) -> str:
    return "".join(b.text for b in result.content if isinstance(b, TextContent))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    transport = sse_client(args.url) if args.sse else streamable_http_client(args.url)
    report: dict[str, Any] = {}
    client = Client(transport, mode=args.mode, read_timeout_seconds=20, sampling_callback=sampling,
                    elicitation_callback=elicitation, list_roots_callback=roots, cache=None)
    with anyio.fail_after(90):
        async with client:
            report["protocolVersion"] = client.protocol_version
            report["serverName"] = client.server_info.name if client.server_info is not None else None
            tools = await client.list_tools()
            report["tools"] = sorted(t.name for t in tools.tools)
            report["echo"] = text(await client.call_tool("echo", {"message": "through the bridge"}))
            report["sum"] = text(await client.call_tool("get-sum", {"a": 2, "b": 40}))
            events: list[float] = []
            all_seen = anyio.Event()

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                events.append(progress)
                if len(events) >= 3:
                    all_seen.set()

            result = await client.call_tool("trigger-long-running-operation", {"duration": 0.6, "steps": 3}, progress_callback=on_progress)
            with anyio.move_on_after(1.0):
                await all_seen.wait()
            report["long"] = {"text": text(result), "progress": events}
            if "trigger-sampling-request" in report["tools"]:
                report["sampling"] = text(await client.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 10}))
            env = text(await client.call_tool("get-env", {}))
            report["envNames"] = sorted(json.loads(env)) if env.startswith("{") else env
            resource = await client.read_resource("demo://resource/static/document/architecture.md")
            report["resource"] = len(resource.contents)
    return report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--sse", action="store_true")
    parser.add_argument("--mode", default="legacy")
    args = parser.parse_args()
    report = anyio.run(run, args)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
