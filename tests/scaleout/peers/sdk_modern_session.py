"""The official Python SDK (``mcp==2.3.0``) in its 2026-07-28 (modern, stateless) mode, through the load balancer.

Usage::

    python sdk_modern_session.py --url http://127.0.0.1:PORT/mcp [--mode 2026-07-28|auto] [--calls 6] [--timeout 60]

``Client(mode="2026-07-28")`` adopts the version without a probe (``--mode auto`` probes
``server/discover`` first), then ``tools/list``, ``whoami`` ``--calls`` times, ``count`` (n=3) with a
progress callback, and ``ask``: on 2026-07-28 the server answers it with ``input_required``; the SDK
runs the elicitation callback (accept, name "ada") and retries with ``inputResponses`` and the sealed
``requestState``. Prints one JSON object on stdout: ``protocolVersion``, ``tools``, ``pids``,
``count``, ``progress``, ``ask``, ``elicitations`` (how many times the callback ran), ``sessionIds``
(every ``mcp-session-id`` the SDK sent: none is expected), ``http`` (method and status of every HTTP
exchange) and ``error`` (null, or ``"<type>: <message>"``). Exits 0 whatever happened; the whole run
is bounded by ``--timeout``.
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


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "protocolVersion": None, "tools": None, "pids": [], "count": None, "progress": [], "ask": None,
        "elicitations": 0, "sessionIds": [], "http": [], "error": None,
    }

    async def on_response(response: httpx2.Response) -> None:
        request = response.request
        report["http"].append([request.method, response.status_code])
        session = request.headers.get("mcp-session-id")
        if session and session not in report["sessionIds"]:
            report["sessionIds"].append(session)

    async def elicitation(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        report["elicitations"] += 1
        return ElicitResult(action="accept", content={"name": "ada"})

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        report["progress"].append(progress)

    http = create_mcp_http_client()
    http.event_hooks = {"response": [on_response]}
    try:
        with anyio.fail_after(args.timeout):
            async with http:
                client = Client(
                    streamable_http_client(args.url, http_client=http),
                    mode=args.mode,
                    read_timeout_seconds=args.timeout / 2,
                    elicitation_callback=elicitation,
                    client_info=Implementation(name="scaleout-sdk-modern-session", version="1.0.0"),
                    cache=None,
                )
                async with client:
                    report["protocolVersion"] = client.protocol_version
                    report["tools"] = [tool.name for tool in (await client.list_tools()).tools]
                    for _ in range(args.calls):
                        report["pids"].append(text_of(await client.call_tool("whoami", {})))
                    report["count"] = text_of(await client.call_tool("count", {"n": 3}, progress_callback=on_progress))
                    report["ask"] = text_of(await client.call_tool("ask", {}))
    except TimeoutError:
        report["error"] = f"TimeoutError: the run did not finish within {args.timeout} s"
    except Exception as exc:  # any failure goes into the report
        report["error"] = describe(exc)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", default="2026-07-28", help="the SDK's Client(mode=...): 2026-07-28 (pinned) or auto")
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=60.0)
    report = anyio.run(run, parser.parse_args())
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
