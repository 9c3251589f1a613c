"""``anyport serve``, ``anyport call`` and ``anyport bench``."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import click
import orjson

from anyport._exceptions import MCPError
from anyport.cli._auth import AUTH_OPTIONS, auth_chain, auth_options, keys
from anyport.cli._bridge import bridge, connect
from anyport.cli._config import FrontDoor, config, configurable, env_name, file_origin
from anyport.cli._install import install
from anyport.cli._observe import OBSERVE_OPTIONS, apply_observe, observe_options
from anyport.cli._probe import probe
from anyport.limits import Limits

__all__ = ["cli"]


@click.group(cls=FrontDoor)
@click.version_option(package_name="anyport")
def cli() -> None:
    """anyport: serve and call MCP servers, on every transport and revision."""


#: Options that only mean something with --transport http.
#: Options that are fields of ``anyport.Limits`` (docs/limits.md) and mean something only with --http ...
_HTTP_LIMIT_OPTIONS = (
    "session_idle_timeout", "max_sessions", "body_timeout", "max_buffered_events", "max_events_per_stream",
    "max_streams_per_session",
)
#: ... and all of them (--max-inflight applies to stdio too).
_LIMIT_OPTIONS = (*_HTTP_LIMIT_OPTIONS, "max_inflight")
_HTTP_OPTIONS = (
    "host", "port", "path", "stateless", "json_response", "certfile", "keyfile",
    "allowed_hosts", "allowed_origins", "legacy_sse", "log_level", "trusted_proxies", "sse_retry_ms", "sse_poll_after",
    "redis", "redis_prefix", "workers", "rate_limit", "tool_rate_limits", *_HTTP_LIMIT_OPTIONS, *AUTH_OPTIONS,
)


@cli.command()
@click.argument("target")
@click.option(
    "--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True, envvar="ANYPORT_TRANSPORT",
    help="How to serve: stdio, or Streamable HTTP (+ the 2024-11-05 HTTP+SSE transport) with uvicorn.",
)
@click.option("--http", "http_flag", is_flag=True, help="Shorthand for --transport http.")
@click.option(
    "--max-message-bytes", type=int, default=None, envvar="ANYPORT_MAX_MESSAGE_BYTES",
    help="Largest accepted message: a stdio line (default 8 MiB) or an HTTP body (default 4 MiB).",
)
@click.option("--host", default="127.0.0.1", show_default=True, envvar="ANYPORT_HOST", help="HTTP: address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, envvar="ANYPORT_PORT", help="HTTP: port.")
@click.option("--path", default="/mcp", show_default=True, envvar="ANYPORT_PATH", help="HTTP: the Streamable HTTP endpoint.")
@click.option("--stateless", is_flag=True, envvar="ANYPORT_STATELESS", help="HTTP: no legacy sessions.")
@click.option("--json-response", is_flag=True, envvar="ANYPORT_JSON_RESPONSE", help="HTTP: answer with JSON, not SSE streams.")
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), envvar="ANYPORT_CERTFILE", help="HTTP: TLS certificate (PEM).")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), envvar="ANYPORT_KEYFILE", help="HTTP: TLS private key (PEM).")
@click.option(
    "--allowed-host", "allowed_hosts", multiple=True, envvar="ANYPORT_ALLOWED_HOSTS",
    help="HTTP: a Host the server answers (repeatable; env: space-separated). Default: the local names.",
)
@click.option(
    "--allowed-origin", "allowed_origins", multiple=True, envvar="ANYPORT_ALLOWED_ORIGINS",
    help="HTTP: an Origin allowed to call, also from a browser: CORS preflights are answered for it "
         "(repeatable; env: space-separated; '*' allows any origin, without credentials). Default: local origins.",
)
@click.option(
    "--trusted-proxy", "trusted_proxies", multiple=True, envvar="ANYPORT_TRUSTED_PROXIES",
    help="HTTP: address of a reverse proxy whose X-Forwarded-Host/-Proto are believed (repeatable; '*': any).",
)
@click.option(
    "--sse-retry-ms", type=click.IntRange(0), default=None, envvar="ANYPORT_SSE_RETRY_MS",
    help="HTTP: send retry: (ms) on SSE streams of 2025-11-25 sessions.",
)
@click.option(
    "--sse-poll-after", type=click.FloatRange(0), default=None, envvar="ANYPORT_SSE_POLL_AFTER",
    help="HTTP: close a POST's SSE connection after this many seconds; the client resumes with GET (polling).",
)
@click.option(
    "--max-inflight", type=click.IntRange(1), default=None, envvar="ANYPORT_MAX_INFLIGHT",
    help="Requests running at once per stdio connection / legacy session / HTTP+SSE connection (default 1000); more get -32000.",
)
@click.option(
    "--session-idle-timeout", type=click.FloatRange(min=0.1), default=None, envvar="ANYPORT_SESSION_IDLE_TIMEOUT",
    help="HTTP: seconds a legacy session lives without a request or an open stream (default 1800); ended on a timer.",
)
@click.option(
    "--max-sessions", type=click.IntRange(1), default=None, envvar="ANYPORT_MAX_SESSIONS",
    help="HTTP: live legacy sessions / HTTP+SSE connections (default 10000); more get 503.",
)
@click.option(
    "--body-timeout", type=click.FloatRange(min=0.1), default=None, envvar="ANYPORT_BODY_TIMEOUT",
    help="HTTP: seconds to receive a request body (default 30); slower clients get 408.",
)
@click.option(
    "--max-buffered-events", type=click.IntRange(1), default=None, envvar="ANYPORT_MAX_BUFFERED_EVENTS",
    help="HTTP: notifications held per response stream for a slow client (default 256); then progress is coalesced, the rest waits.",
)
@click.option(
    "--max-events-per-stream", type=click.IntRange(1), default=None, envvar="ANYPORT_MAX_EVENTS_PER_STREAM",
    help="HTTP: events kept per resumable SSE stream for Last-Event-ID (default 1000).",
)
@click.option(
    "--max-streams-per-session", type=click.IntRange(1), default=None, envvar="ANYPORT_MAX_STREAMS_PER_SESSION",
    help="HTTP: resumable SSE streams kept per session (default 100).",
)
@click.option(
    "--redis", default=None, envvar="ANYPORT_REDIS_URL", metavar="URL",
    help="HTTP: keep sessions, events and the bus in Redis (redis://, rediss://; ?cluster=1 for a cluster): "
    "every process given the same URL serves every session, no sticky load balancer needed.",
)
@click.option(
    "--redis-prefix", default="anyport", show_default=True, envvar="ANYPORT_REDIS_PREFIX",
    help="HTTP: prefix of every Redis key (several services may share one Redis).",
)
@click.option(
    "--workers", type=click.IntRange(1), default=1, show_default=True, envvar="ANYPORT_WORKERS",
    help="HTTP: processes serving one port; more than 1 needs --redis (or --stateless).",
)
@click.option(
    "--rate-limit", default=None, envvar="ANYPORT_RATE_LIMIT", metavar="RATE",
    help="HTTP: requests per client, e.g. 100/minute or 5/10s (shared by replicas with --redis); more get 429.",
)
@click.option(
    "--tool-rate-limit", "tool_rate_limits", multiple=True, envvar="ANYPORT_TOOL_RATE_LIMITS", metavar="TOOL=RATE",
    help="HTTP: calls of one tool per client, e.g. search=10/minute (repeatable; env: space-separated).",
)
@click.option(
    "--legacy-sse/--no-legacy-sse", default=True, show_default=True, envvar="ANYPORT_LEGACY_SSE",
    help="HTTP: also serve the 2024-11-05 HTTP+SSE transport at /sse and /messages/.",
)
@click.option(
    "--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
    show_default=True, envvar="ANYPORT_LOG_LEVEL", help="HTTP: uvicorn's log level.",
)
@auth_options
@observe_options
@click.pass_context
def serve(ctx: click.Context, /, target: str, transport: str, http_flag: bool, max_message_bytes: int | None, **http: Any) -> None:
    """Serve TARGET: path/to/file.py[:attr] or package.module[:attr] (default attr: app)."""
    from anyport.protocol import KeyRing

    try:  # a malformed ANYPORT_STATE_KEYS: one line and exit 1, before the app is loaded or served
        KeyRing.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if http_flag and transport != "http":
        # --http and --transport stdio at the same level contradict; otherwise the nearer one wins
        # (a flag over ANYPORT_*, over the settings file, over the default).
        by_http, by_transport = ctx.get_parameter_source("http_flag"), ctx.get_parameter_source("transport")
        if by_http == by_transport == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--http contradicts --transport stdio")
        if by_http is not None and (by_transport is None or by_http.value <= by_transport.value):
            transport = "http"
    chosen = {name: http.pop(name) for name in _LIMIT_OPTIONS}
    limits = Limits(**{name: value for name, value in chosen.items() if value is not None})
    observing = {name: http.pop(name) for name in OBSERVE_OPTIONS}
    if transport == "http":
        _serve_http(target, max_message_bytes, limits=limits, observing=observing, **http)
        return
    given = [f"--{n.replace('_', '-')}" for n in _HTTP_OPTIONS if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(f"{', '.join(given)}: only with --http")

    from anyport.cli._load import load_server
    from anyport.transports.stdio import claim_stdout, run_stdio_server

    # T-STDIO-03: stdout is ours before user code is imported, so import-time prints go to stderr.
    kw: dict[str, Any] = {"stdout_fd": claim_stdout(), "limits": limits}
    server = apply_observe(load_server(target), transport="stdio", **observing)
    if max_message_bytes is not None:
        kw["max_message_bytes"] = max_message_bytes
    run_stdio_server(server, **kw)


def _serve_http(
    target: str, max_message_bytes: int | None, *, host: str, port: int, path: str, stateless: bool, json_response: bool,
    certfile: str | None, keyfile: str | None, allowed_hosts: tuple[str, ...], allowed_origins: tuple[str, ...],
    legacy_sse: bool, log_level: str, trusted_proxies: tuple[str, ...], sse_retry_ms: int | None,
    sse_poll_after: float | None, limits: Limits, redis: str | None, redis_prefix: str, workers: int,
    rate_limit: str | None, tool_rate_limits: tuple[str, ...], observing: dict[str, Any], **auth_flags: Any,
) -> None:
    import importlib

    from anyport.cli._load import load_server
    from anyport.transports.http._options import HTTPOptions
    from anyport.transports.http._serve import INSTALL_HINT, ListenError, check_listen, run_http_server

    try:
        importlib.import_module("uvicorn")
    except ImportError as exc:
        raise click.ClickException(INSTALL_HINT) from exc
    if keyfile is not None and certfile is None:
        raise click.UsageError("--keyfile needs --certfile")
    if not path.startswith("/"):
        raise click.UsageError("--path must start with '/'")
    if workers > 1 and redis is None and not stateless:
        raise click.UsageError(
            f"--workers {workers} needs shared state: give --redis URL (ANYPORT_REDIS_URL), or --stateless; "
            "with in-memory state each worker would keep sessions of its own"
        )
    rates = _rates(rate_limit, tool_rate_limits)
    if redis is not None:
        _check_redis(redis, redis_prefix)
    if auth_flags.get("client_ca") and certfile is None:
        raise click.UsageError("--client-ca needs TLS: give --certfile and --keyfile")
    auth = auth_chain(auth_flags, host=host, port=port, path=path, tls=certfile is not None, trusted_proxies=trusted_proxies)
    try:
        check_listen(host, port)  # a port in use: one line, before the user's module is imported
    except ListenError as exc:
        raise click.ClickException(exc.strerror or str(exc)) from None
    _check_tls(certfile, keyfile, auth_flags.get("client_ca"))
    server = load_server(target)
    if auth_flags.get("hide_unauthorized"):
        server.hide_unauthorized = True
    if redis is not None:
        _share_tasks(server, redis, redis_prefix)
    server = apply_observe(server, transport="http", workers=workers, **observing)
    if max_message_bytes is not None:
        limits = dataclasses.replace(limits, max_body_bytes=max_message_bytes)
    options = HTTPOptions(
        path=path, stateless=stateless, json_response=json_response, allowed_hosts=list(allowed_hosts) or None,
        allowed_origins=list(allowed_origins) or None, trusted_proxies=list(trusted_proxies) or None, legacy_sse=legacy_sse,
        sse_retry_ms=sse_retry_ms, sse_poll_after=sse_poll_after, limits=limits, redis=redis, redis_prefix=redis_prefix,
        rate_limit=rates[0], tool_rate_limits=rates[1], auth=auth,
    )
    scheme = "https" if certfile else "http"
    shown = f"[{host}]" if ":" in host else host
    extra = " and HTTP+SSE at /sse" if legacy_sse else ""
    extra += ", authenticated" if auth is not None else ""
    click.echo(f"anyport: serving {server.name!r} at {scheme}://{shown}:{port}{path}{extra}", err=True)
    try:
        run_http_server(
            server, options, host=host, port=port, certfile=certfile, keyfile=keyfile, log_level=log_level, workers=workers,
            client_ca=auth_flags.get("client_ca"), client_cert=auth_flags.get("client_cert") or "required",
        )
    except ImportError as exc:  # uvicorn itself present, one of its parts not
        raise click.ClickException(f"{exc}; {INSTALL_HINT}") from exc
    except ListenError as exc:  # taken between the check and uvicorn's bind
        raise click.ClickException(exc.strerror or str(exc)) from None


def _check_tls(certfile: str | None, keyfile: str | None, client_ca: str | None) -> None:
    """A certificate, key or CA bundle that TLS cannot load: one line now, not uvicorn's traceback later."""
    if certfile is None:
        return
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        files = f"--certfile {certfile}" + (f" / --keyfile {keyfile}" if keyfile else "")
        raise click.ClickException(f"{files}: not a PEM certificate and its private key ({exc})") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(client_ca)
        except (ssl.SSLError, OSError) as exc:
            raise click.ClickException(f"--client-ca {client_ca}: not a PEM CA bundle ({exc})") from None


def _rates(rate_limit: str | None, tool_rate_limits: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """--rate-limit and --tool-rate-limit TOOL=RATE, parsed (a usage error names the bad one)."""
    from anyport.state import Rate

    try:
        rate = Rate.parse(rate_limit) if rate_limit else None
        tools: dict[str, Any] = {}
        for item in tool_rate_limits:
            name, sep, text = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"{item!r}: give TOOL=RATE, e.g. search=10/minute")
            tools[name.strip()] = Rate.parse(text)
    except ValueError as exc:
        raise click.UsageError(f"rate limit: {exc}") from None
    return rate, tools


def _share_tasks(server: Any, url: str, prefix: str) -> None:
    """With --redis, task records live in Redis too (tasks/get, tasks/result, tasks/cancel from any
    replica), unless the server was given a task store of its own."""
    from anyport.state import MemoryTaskStore, RedisState

    if isinstance(server.tasks.store, MemoryTaskStore):
        # No connection is made here: each worker process opens its own on first use.
        server.tasks.store = RedisState.from_url(url, prefix=prefix).tasks


def _check_redis(url: str, prefix: str) -> None:
    """A one-line error (exit 1) when Redis is unusable, before anything is served."""
    try:
        from anyport.state import RedisState

        async def ping() -> None:
            state = RedisState.from_url(url, prefix=prefix)
            try:
                async with asyncio.timeout(5):
                    await state.ping()
            finally:
                await state.aclose()

        asyncio.run(ping())
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(f"{_origin('redis', '--redis')}: {exc}") from None
    except Exception as exc:
        shown = url.split("@")[-1] if "@" in url else url  # no password in messages
        raise click.ClickException(f"Redis at {shown} is unreachable: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def _origin(name: str, flag: str) -> str:
    """How the user named parameter ``name``: its flag, its ANYPORT_* variable, or its key in the settings file."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return flag
    source = ctx.get_parameter_source(name)
    param = next((p for p in ctx.command.params if p.name == name), None)
    if source == click.core.ParameterSource.ENVIRONMENT and param is not None:
        return env_name(param) or flag
    if source == click.core.ParameterSource.DEFAULT_MAP:
        return file_origin(ctx, name) or flag
    return flag


def _split(argv: Sequence[str], args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``COMMAND... -- TOOL k=v...``: click swallows ``--``, so find it in the raw argv."""
    raw = list(argv)
    if "--" in raw:
        after = raw[raw.index("--") + 1 :]
        n = len(after)
        command = list(args[: len(args) - n])
        if command and command[-1] == "--":
            command.pop()  # click keeps the "--" in UNPROCESSED arguments: not part of the command
        return command, list(args[len(args) - n :])
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
@click.option(
    "--login", is_flag=True,
    help="URL only: log in with OAuth in the browser first (tokens kept for later calls, see docs/oauth-client.md).",
)
@click.option("--oauth", "use_oauth", is_flag=True, help="URL only: use the OAuth tokens kept by an earlier --login.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def call(era: str, timeout: float, as_json: bool, login: bool, use_oauth: bool, args: tuple[str, ...]) -> None:
    """Call a tool: anyport call COMMAND... -- TOOL key=value ..., or anyport call URL -- TOOL ...

    Without ``-- TOOL``, lists the tools. Values are JSON when they parse as JSON (unless the tool's
    schema says the argument is a string), plain strings otherwise.
    """
    command, rest = _split(sys.argv, args)
    if not command:
        raise click.UsageError("give the server command or URL, then -- TOOL key=value ...")
    is_url = len(command) == 1 and command[0].startswith(("http://", "https://"))
    if (login or use_oauth) and not is_url:
        raise click.UsageError("--login and --oauth are for a server URL")
    code = asyncio.run(_call(command[0] if is_url else command, rest, era, timeout, as_json, login=login, oauth=login or use_oauth))
    raise SystemExit(code)


async def _call(
    command: str | list[str], rest: list[str], era: str, timeout: float, as_json: bool, *, login: bool = False,
    oauth: bool = False,
) -> int:
    from anyport.client import Client

    extra: dict[str, Any] = {}
    try:
        if oauth:
            from anyport import oauth as oauth_client

            assert isinstance(command, str)
            if login:
                await oauth_client.login(command)
            extra["auth"] = oauth_client.OAuth()
        async with Client(command, era=era, timeout=timeout, **extra) as client:
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


#: Options of ``anyport bench`` that mean something for one kind of target only.
_BENCH_STDIO_ONLY = ("calls", "pipelined_calls", "depth", "warmup", "startup_samples", "pin")
_BENCH_HTTP_ONLY = ("concurrency", "requests", "server_pid", "insecure", "plot_path")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--tool", help="The tool to call (default: the first tool taking a single string argument).")
@click.option("--arg", "args_", multiple=True, metavar="KEY=VALUE", help="A tool argument (repeatable); JSON unless the schema says string.")
@click.option(
    "--era", type=click.Choice(["auto", "legacy", "modern"]), default="auto", show_default=True,
    help="auto: every era the server speaks; legacy: 2025-11-25 (initialize); modern: 2026-07-28.",
)
@click.option("--seconds", type=click.FloatRange(min=0.01), default=None, help="Time budget of each phase (stdio, default 5) or each concurrency level (HTTP, default 2).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Seconds without an answer before the server counts as hung.")
@click.option("--calls", type=click.IntRange(1), default=1000, show_default=True, help="stdio: sequential calls, one at a time.")
@click.option("--pipelined-calls", type=click.IntRange(1), default=10_000, show_default=True, help="stdio: calls with --depth in flight.")
@click.option("--depth", type=click.IntRange(1), default=64, show_default=True, help="stdio: requests in flight when pipelined.")
@click.option("--warmup", type=click.IntRange(0), default=100, show_default=True, help="stdio: calls before measuring.")
@click.option("--startup-samples", type=click.IntRange(0), default=3, show_default=True, help="stdio: fresh processes timed from spawn to first answer.")
@click.option("--pin", type=click.Choice(["auto", "none"]), default="auto", show_default=True, help="stdio: auto puts client and server on one CPU for latency, on two for throughput.")
@click.option("--concurrency", default="1,16,64", show_default=True, help="HTTP: concurrency levels (workers, each on its own connection).")
@click.option("--requests", type=click.IntRange(1), default=20_000, show_default=True, help="HTTP: most requests measured per level.")
@click.option("--server-pid", type=int, default=None, help="HTTP: the server's pid, for its CPU per request (found by itself for a local port).")
@click.option("--insecure", is_flag=True, help="HTTP: do not verify the TLS certificate of an https:// URL.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True), help="Also write the raw results to this JSON file.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True), help="HTTP: write a PNG of latency and req/s vs concurrency (needs matplotlib).")
@click.argument("target", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def bench(ctx: click.Context, /, target: tuple[str, ...], tool: str | None, args_: tuple[str, ...], era: str, seconds: float | None, **opts: Any) -> None:
    """Benchmark an MCP server: anyport bench [OPTIONS] URL, or anyport bench [OPTIONS] -- COMMAND...

    A URL (http:// or https://) is measured over Streamable HTTP at each --concurrency level; a
    command is started and measured over stdio: sequential latency, pipelined calls/s, server CPU
    per call, start-up time. Every phase is bounded by a count and by time. The table goes to
    stdout (Markdown), progress to stderr; the exit status is 1 when the server failed.
    """
    is_url = len(target) == 1 and target[0].startswith(("http://", "https://"))
    wrong = _BENCH_STDIO_ONLY if is_url else _BENCH_HTTP_ONLY
    given = [f"--{n.replace('_path', '').replace('_', '-')}" for n in wrong if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(f"{', '.join(given)}: only for {'a command (stdio)' if not is_url else 'a URL'}")

    from anyport.bench._command import BenchError, BenchOptions, bench_http, bench_stdio, write_plot
    from anyport.bench._plot import INSTALL_HINT, plot_available

    plot_path: str | None = opts.pop("plot_path")
    json_path: str | None = opts.pop("json_path")
    if plot_path is not None and not plot_available():
        raise click.ClickException(INSTALL_HINT)
    try:
        from anyport.bench._http_load import concurrencies

        levels = tuple(concurrencies(opts.pop("concurrency")))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--concurrency") from exc
    options = BenchOptions(
        tool=tool, args=args_, era=era, seconds=seconds if seconds is not None else (2.0 if is_url else 5.0),
        concurrency=levels, **opts,
    )
    try:
        result = bench_http(target[0], options) if is_url else bench_stdio(list(target), options)
    except BenchError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(result.table)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    try:
        if json_path is not None:
            with open(json_path, "wb") as f:
                f.write(orjson.dumps(result.payload, option=orjson.OPT_INDENT_2))
            click.echo(f"raw results: {json_path}", err=True)
        if plot_path is not None:
            if result.points:
                click.echo(f"plot: {write_plot(result, plot_path, target[0])}", err=True)
            else:
                click.echo("plot: skipped, no measured level", err=True)
    except OSError as exc:
        raise click.ClickException(f"cannot write the results: {exc}") from exc
    raise SystemExit(0 if result.ok else 1)


@cli.command()
@click.option("--hex", "as_hex", is_flag=True, help="Print the key as 64 hex characters instead of base64url.")
def keygen(as_hex: bool) -> None:
    """Print a fresh 32-byte key for ANYPORT_STATE_KEYS (the key ring that seals MRTR requestState)."""
    from anyport.protocol import KeyRing

    click.echo(KeyRing.generate_key("hex" if as_hex else "base64url"))
    click.echo(
        "anyport: set ANYPORT_STATE_KEYS=<key> on every replica (the same value everywhere).\n"
        "anyport: to rotate: ANYPORT_STATE_KEYS=<new>,<old> (the first key seals, every key opens); "
        "drop <old> once rounds sealed with it have expired (input_ttl, 10 minutes by default).\n"
        "anyport: in a rolling restart, deploy <old>,<new> first, so every replica opens <new> before any seals with it.",
        err=True,
    )


cli.add_command(keys)
cli.add_command(probe)
cli.add_command(install)
cli.add_command(configurable(serve))  # the settings file (anyport.toml) fills what flags and ANYPORT_* leave unset
cli.add_command(configurable(bridge))
cli.add_command(connect)
cli.add_command(config)
