"""``anyport serve`` and ``anyport call``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import click
import orjson

from anyport._exceptions import MCPError

__all__ = ["cli"]


@click.group()
@click.version_option(package_name="anyport")
def cli() -> None:
    """anyport: serve and call MCP servers, on every transport and revision."""


@cli.command()
@click.argument("target")
@click.option("--transport", type=click.Choice(["stdio"]), default="stdio", show_default=True, help="How to serve.")
@click.option(
    "--max-message-bytes", type=int, default=None, envvar="ANYPORT_MAX_MESSAGE_BYTES",
    help="Largest accepted stdio message (default 8 MiB).",
)
def serve(target: str, transport: str, max_message_bytes: int | None) -> None:
    """Serve TARGET: path/to/file.py[:attr] or package.module[:attr] (default attr: app)."""
    from anyport.cli._load import load_server
    from anyport.transports.stdio import claim_stdout, run_stdio_server

    # T-STDIO-03: stdout is ours before user code is imported, so import-time prints go to stderr.
    kw: dict[str, Any] = {"stdout_fd": claim_stdout()}
    server = load_server(target)
    if max_message_bytes is not None:
        kw["max_message_bytes"] = max_message_bytes
    run_stdio_server(server, **kw)


def _split(argv: Sequence[str], args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``COMMAND... -- TOOL k=v...``: click swallows ``--``, so find it in the raw argv."""
    raw = list(argv)
    if "--" in raw:
        after = raw[raw.index("--") + 1 :]
        n = len(after)
        return list(args[: len(args) - n]), list(args[len(args) - n :])
    return list(args), []


def _coerce(value: str, prop: Any) -> Any:
    kind = prop.get("type") if isinstance(prop, dict) else None
    if kind == "string":
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--era", type=click.Choice(["auto", "modern", "legacy"]), default="auto", show_default=True)
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for the result.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw result as JSON.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def call(era: str, timeout: float, as_json: bool, args: tuple[str, ...]) -> None:
    """Call a tool: anyport call COMMAND... -- TOOL key=value ...

    Without ``-- TOOL``, lists the tools. Values are JSON when they parse as JSON (unless the tool's
    schema says the argument is a string), plain strings otherwise.
    """
    command, rest = _split(sys.argv, args)
    if not command:
        raise click.UsageError("give the server command, then -- TOOL key=value ...")
    code = asyncio.run(_call(command, rest, era, timeout, as_json))
    raise SystemExit(code)


async def _call(command: list[str], rest: list[str], era: str, timeout: float, as_json: bool) -> int:
    from anyport.client import Client

    try:
        async with Client(command, era=era, timeout=timeout) as client:
            tools = await client.list_tools()
            if not rest:
                for t in tools:
                    click.echo(f"{t.name}\t{(t.description or '').splitlines()[0] if t.description else ''}")
                return 0
            name, pairs = rest[0], rest[1:]
            tool = next((t for t in tools if t.name == name), None)
            props = tool.input_schema.get("properties", {}) if tool else {}
            arguments: dict[str, Any] = {}
            for pair in pairs:
                key, sep, value = pair.partition("=")
                if not sep:
                    raise click.UsageError(f"arguments are key=value, not {pair!r}")
                arguments[key] = _coerce(value, props.get(key))
            result = await client.call_tool(name, arguments)
    except MCPError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    if as_json:
        click.echo(orjson.dumps(result.raw, option=orjson.OPT_INDENT_2).decode())
    else:
        if result.structured_content is not None:
            click.echo(orjson.dumps(result.structured_content, option=orjson.OPT_INDENT_2).decode())
        elif result.text:
            click.echo(result.text)
        else:
            click.echo(orjson.dumps(result.content).decode())
    return 1 if result.is_error else 0
