"""One legacy Streamable HTTP session of the official Python SDK (``mcp==2.3.0``) through the load balancer.

Usage::

    python sdk_session.py --url http://127.0.0.1:PORT/mcp [--calls 6] [--timeout 60]

``initialize`` (``Client(mode="legacy")``), ``tools/list``, ``whoami`` ``--calls`` times, ``ask`` (the
elicitation callback accepts with name "ada"), then the SDK closes the session (DELETE). Prints one JSON
object on stdout: ``tools``, ``pids``, ``ask``, ``sessionIds`` (every ``mcp-session-id`` the SDK sent),
``http`` (method and status of every HTTP exchange) and ``error`` (null, or ``"<type>: <message>"``).
Exits 0 whatever happened; the whole run is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitRequestParams, ElicitResult, Implementation, TextContent


def describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    message = f"[{exc.code}] {exc.error.message}" if isinstance(exc, MCPError) else str(exc)
    return f"{type(exc).__name__}: {message}"


def text_of(result: Any) -> str | None:
    return next((block.text for block in result.content if isinstance(block, TextContent)), None)


async def elicitation(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    return ElicitResult(action="accept", content={"name": "ada"})


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"tools": None, "pids": [], "ask": None, "sessionIds": [], "http": [], "error": None}

    async def on_response(response: httpx2.Response) -> None:
        request = response.request
        report["http"].append([request.method, response.status_code])
        session = request.headers.get("mcp-session-id")
        if session and session not in report["sessionIds"]:
            report["sessionIds"].append(session)

    http = create_mcp_http_client()
    http.event_hooks = {"response": [on_response]}
    try:
        with anyio.fail_after(args.timeout):
            async with http:
                client = Client(
                    streamable_http_client(args.url, http_client=http),
                    mode="legacy",
                    read_timeout_seconds=args.timeout / 2,
                    elicitation_callback=elicitation,
                    client_info=Implementation(name="scaleout-sdk-session", version="1.0.0"),
                    cache=None,
                )
                async with client:
                    report["tools"] = [tool.name for tool in (await client.list_tools()).tools]
                    for _ in range(args.calls):
                        report["pids"].append(text_of(await client.call_tool("whoami", {})))
                    report["ask"] = text_of(await client.call_tool("ask", {}))
    except TimeoutError:
        report["error"] = f"TimeoutError: the session did not finish within {args.timeout} s"
    except Exception as exc:  # any failure goes into the report
        report["error"] = describe(exc)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=60.0)
    report = anyio.run(run, parser.parse_args())
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
