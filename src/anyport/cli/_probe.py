"""``anyport probe``: one real round trip with an MCP server, or (``--serve``) a Prometheus exporter of it.

Not registered in ``_main.py`` here; ``cli.add_command(probe)`` does it. Heavy imports (httpx,
uvicorn, the client) happen when the command runs, never at import.
"""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import click

__all__ = ["probe", "probe_command"]

_EXIT_HELP = """\b
Exit codes:
  0  ok
  1  usage error or unexpected failure
  3  authentication required or refused (401/403)
  4  unreachable: DNS, refused, TLS, timeout, connection dropped, process exited
  5  tool error: --call's tool missing, refused, or isError
  6  protocol error: garbage, no common protocol version, malformed auth challenge
  7  drift: the tools hash differs from --expect-tools-hash
On a non-zero exit one JSON line {"error": {...}} goes to stderr."""


class _ProbeCommand(click.Command):
    """Usage errors exit 1 (the MCP Inspector CLI's code), with the JSON error line on stderr."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _usage_exit(exc)


def _usage_exit(exc: click.UsageError) -> NoReturn:
    from anyport.probe._render import error_line

    exc.show()
    click.echo(error_line({"code": "usage", "message": exc.format_message()}), err=True)
    raise SystemExit(1)


def _headers(raw: tuple[str, ...], token: str | None, api_key: str | None, api_key_header: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or any(c in name for c in " \t\r\n") or any(c in value for c in "\r\n"):
            raise click.UsageError(f"--header {item!r}: give 'Name: value'")
        headers[name.strip()] = value.strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if api_key:
        headers[api_key_header] = api_key
    return headers


def _args(raw: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--arg {item!r}: give KEY=VALUE")
        out[key] = value
    return out


@click.command("probe", cls=_ProbeCommand, context_settings={"ignore_unknown_options": True}, epilog=_EXIT_HELP)
@click.argument("target", nargs=-1, type=click.UNPROCESSED)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--era", type=click.Choice(["auto", "modern", "legacy"]), default="auto", show_default=True,
              help="auto: the era the server speaks (server/discover, else initialize).")
@click.option("--transport", type=click.Choice(["auto", "streamable-http", "sse"]), default="auto", show_default=True,
              help="URL: auto tries Streamable HTTP, then the 2024-11-05 HTTP+SSE transport.")
@click.option("--timeout", type=click.FloatRange(min=0.05, max=3600), default=10.0, show_default=True,
              help="Seconds allowed to each phase.")
@click.option("--total-timeout", type=click.FloatRange(min=0.05), default=None, help="Seconds allowed to the whole probe.")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="URL: an HTTP header for every MCP request (repeatable).")
@click.option("--token", envvar="ANYPORT_PROBE_TOKEN", default=None, help="URL: a bearer token (env ANYPORT_PROBE_TOKEN).")
@click.option("--api-key", envvar="ANYPORT_PROBE_API_KEY", default=None, help="URL: an API key (env ANYPORT_PROBE_API_KEY) ...")
@click.option("--api-key-header", default="X-API-Key", show_default=True, help="... sent in this header.")
@click.option("--auth-challenge", is_flag=True,
              help="URL: first check that an unauthenticated request gets 401 + WWW-Authenticate with reachable "
                   "resource metadata; without credentials the probe stops there.")
@click.option("--call", "call", default=None, metavar="TOOL", help="Call this (read-only) tool once.")
@click.option("--arg", "call_args", multiple=True, metavar="KEY=VALUE", help="An argument of --call (repeatable); JSON unless the schema says string.")
@click.option("--expect-tools-hash", default=None, metavar="SHA256", help="Fail with exit 7 when the tools hash differs.")
@click.option("--insecure", is_flag=True, help="URL: do not verify the TLS certificate.")
@click.option("--cafile", type=click.Path(exists=True, dir_okay=False), default=None, help="URL: CA bundle (PEM) to verify TLS with.")
@click.option("--serve", is_flag=True, help="Run as a Prometheus exporter (/probe, /metrics) configured by --config.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="--serve: the modules file (TOML, or YAML).")
@click.option("--listen", default=None, metavar="HOST:PORT", help="--serve: address to listen on (default: the config's, else 127.0.0.1:9474).")
@click.pass_context
def probe(ctx: click.Context, /, target: tuple[str, ...], as_json: bool, serve: bool, config_path: str | None,
          listen: str | None, **opts: Any) -> None:
    """Probe an MCP server: anyport probe [OPTIONS] URL, or anyport probe [OPTIONS] -- COMMAND...

    Phases (each timed, each bounded by --timeout): resolve, connect, tls (URL); auth (--auth-challenge);
    handshake (server/discover or initialize, transport fallback); tools_list (+ canonical SHA-256);
    tools_call (--call).
    """
    if serve:
        _serve(ctx, target, config_path, listen)
        return
    if config_path is not None or listen is not None:
        _usage_exit(click.UsageError("--config and --listen go with --serve"))
    if not target:
        _usage_exit(click.UsageError("give a URL, or -- COMMAND... for a stdio server"))
    if target[0].startswith("-"):
        _usage_exit(click.UsageError(f"no such option: {target[0]} (put a stdio command after --)"))
    for name in ("token", "api_key"):  # from the environment they are for URL targets only, silently
        if ctx.get_parameter_source(name) == click.core.ParameterSource.ENVIRONMENT and not _is_url(target):
            opts[name] = None
    try:
        options = _options(target, opts)
    except (click.UsageError, ValueError) as exc:
        _usage_exit(exc if isinstance(exc, click.UsageError) else click.UsageError(str(exc)))
    from anyport.probe import probe as run_probe
    from anyport.probe._render import error_line, table

    result = asyncio.run(run_probe(options))
    if as_json:
        import orjson

        click.echo(orjson.dumps(result.to_json()).decode())
    else:
        click.echo(table(result))
    if result.error is not None:
        click.echo(error_line(result.error.to_json()), err=True)
    ctx.exit(result.exit_code)


def _is_url(target: tuple[str, ...]) -> bool:
    return len(target) == 1 and target[0].lower().startswith(("http://", "https://"))


def _options(target: tuple[str, ...], opts: dict[str, Any]) -> Any:
    from anyport.probe import ProbeOptions

    is_url = _is_url(target)
    if len(target) == 1 and "://" in target[0] and not is_url:
        raise click.UsageError(f"{target[0]!r}: a URL target is http:// or https://")
    headers = _headers(opts.pop("headers"), opts.pop("token"), opts.pop("api_key"), opts.pop("api_key_header"))
    if not is_url:
        used = [f"--{k.replace('_', '-')}" for k in ("auth_challenge", "insecure", "cafile") if opts.get(k)]
        if headers:
            used.append("--header/--token/--api-key")
        if opts.get("transport") != "auto":
            used.append("--transport")
        if used:
            raise click.UsageError(f"{', '.join(used)}: only for a URL target")
    return ProbeOptions(
        target[0] if is_url else list(target), headers=headers, call_args=_args(opts.pop("call_args")), **opts,
    )


def _serve(ctx: click.Context, target: tuple[str, ...], config_path: str | None, listen: str | None) -> None:
    given = [p.name for p in ctx.command.params if p.name not in ("serve", "config_path", "listen", "target")
             and ctx.get_parameter_source(p.name or "") == click.core.ParameterSource.COMMANDLINE]
    if target or given:
        _usage_exit(click.UsageError("--serve takes its targets from Prometheus and its options from --config"))
    if config_path is None:
        _usage_exit(click.UsageError("--serve needs --config FILE (docs/operations.md, examples/prometheus/)"))
    from anyport.probe._config import ConfigError, load_config
    from anyport.probe.exporter import parse_listen, serve_exporter

    try:
        config = load_config(config_path)
        host, port = parse_listen(listen or config.listen)
    except (ConfigError, ValueError) as exc:
        _usage_exit(click.UsageError(str(exc)))
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise click.ClickException("the exporter needs uvicorn: pip install 'anyport[http]'") from None
    open_note = " (allow_any_target: ANY URL can be probed through it)" if config.allow_any_target else ""
    click.echo(
        f"anyport: probe exporter on http://{f'[{host}]' if ':' in host else host}:{port}/probe, "
        f"modules {', '.join(sorted(config.modules))}{open_note}", err=True,
    )
    serve_exporter(config, f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


def probe_command() -> click.Command:
    """The ``probe`` command, for ``cli.add_command(probe_command())``."""
    return probe


if __name__ == "__main__":  # python -m anyport.cli._probe ... (until it is registered in _main.py)
    probe(prog_name="anyport probe")
