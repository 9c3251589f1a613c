"""``anyport bridge -- COMMAND ARGS...`` and ``anyport connect URL``, as click commands.

Registered by ``anyport.cli._main`` (``cli.add_command``); ``python -m anyport.cli._bridge bridge ...``
runs them on their own.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from anyport.cli._auth import auth_chain, auth_options
from anyport.cli._observe import OBSERVE_OPTIONS, observe_options

__all__ = ["bridge", "commands", "connect"]


def _env_options(items: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """--env NAME (passed from the bridge's environment) and --env NAME=VALUE (set)."""
    from anyport.bridge import DEFAULT_ENV

    allow = list(DEFAULT_ENV)
    given: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not name or not name.replace("_", "").isalnum():
            raise click.BadParameter(f"{item!r}: expected NAME or NAME=VALUE", param_hint="--env")
        if sep:
            given[name] = value
        elif name not in allow:
            allow.append(name)
    return tuple(allow), given


def _bridge_options(server: str, s: dict[str, Any]) -> Any:
    """The ``BridgeOptions`` of one server's settings (the child options of ``bridge``)."""
    from anyport.bridge import BridgeOptions

    allow, given = _env_options(s["env"])
    min_children = s["min_children"]
    if min_children is None:
        min_children = 1 if s["shared"] else 0
    try:
        return BridgeOptions(
            command=tuple(s["command"]), shared=s["shared"], min_children=min_children, max_children=s["max_children"],
            spares=s["spares"], concurrency=s["concurrency"], idle_timeout=s["idle_timeout"], grace=s["grace"],
            start_timeout=s["start_timeout"], call_timeout=s["call_timeout"], env_allow=allow, env_set=given, cwd=s["cwd"],
            child_era=s["child_era"], pass_headers=tuple(s["pass_headers"]), watch_group=s["watchdog"],
        )
    except ValueError as exc:
        raise click.UsageError(f"{server}{exc}") from None


def _served(children: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The servers to bridge: {"": the command line's} or, with ``[bridge.servers.NAME]`` tables in
    the settings file, {NAME: the bridge's settings overridden by its table} (path ``/NAME/mcp``)."""
    from anyport.cli._config import file_origin, servers_of

    ctx = click.get_current_context()
    tables = servers_of(ctx)
    if not tables:
        if not children["command"]:
            raise click.UsageError("Missing argument 'COMMAND...': the stdio server to bridge (after --), "
                                   "or [bridge.servers.NAME] tables in the settings file")
        return {"": children}
    if children["command"]:
        origin = file_origin(ctx, "command")
        raise click.UsageError(f"{origin}: a command and [bridge.servers] tables: give the command in each server's table"
                               if origin else "a COMMAND and [bridge.servers] tables in the settings file: give one or the other")
    out: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        settings = {**children, **{key: value for key, (value, _) in table.items()}}
        if "path" not in table:
            settings["path"] = f"/{name}{children['path']}"
        out[name] = settings
    return out


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("command", nargs=-1, required=False, type=click.UNPROCESSED)
@click.option("--host", default="127.0.0.1", show_default=True, envvar="ANYPORT_HOST", help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, envvar="ANYPORT_PORT", help="Port.")
@click.option("--path", default="/mcp", show_default=True, help="The Streamable HTTP endpoint (HTTP+SSE is at /sse).")
@click.option("--shared", is_flag=True, help="The server is stateless: share children between callers (ids rewritten).")
@click.option("--min", "min_children", type=click.IntRange(0), default=None, help="Shared: children kept running (default 1).")
@click.option("--max", "max_children", type=click.IntRange(1), default=32, show_default=True, help="Children at most, spares included.")
@click.option("--spares", type=click.IntRange(0), default=1, show_default=True, help="Warm children kept started for new callers.")
@click.option("--concurrency", type=click.IntRange(1), default=16, show_default=True, help="Shared: requests at once per child.")
@click.option("--idle-timeout", type=click.FloatRange(0.1), default=600.0, show_default=True,
              help="Seconds without a request after which a session's child is stopped (and the session ended).")
@click.option("--grace", type=click.FloatRange(0), default=3.0, show_default=True, help="Seconds between SIGTERM and SIGKILL.")
@click.option("--start-timeout", type=click.FloatRange(0.1), default=30.0, show_default=True, help="Seconds a child has to answer initialize.")
@click.option("--call-timeout", type=click.FloatRange(0.1), default=300.0, show_default=True, help="Seconds a child has to answer a request.")
@click.option("--env", "env", multiple=True, metavar="NAME[=VALUE]",
              help="Pass NAME from this environment to children, or set NAME=VALUE (repeatable). Others are not passed.")
@click.option("--cwd", type=click.Path(exists=True, file_okay=False), default=None, help="Working directory of the children.")
@click.option("--pass-header", "pass_headers", multiple=True, metavar="NAME",
              help="Give a session's child this HTTP header of its first request as MCP_HEADER_<NAME> (repeatable; never credentials).")
@click.option("--watchdog/--no-watchdog", default=True, show_default=True,
              help="A watchdog per child that kills its whole process group if the bridge dies (even kill -9).")
@click.option("--child-era", type=click.Choice(["auto", "legacy"]), default="auto", show_default=True,
              help="auto: ask server/discover first; legacy: always initialize.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, help="Host header allowed (repeatable; default: the local names).")
@click.option("--allowed-origin", "allowed_origins", multiple=True, help="Origin allowed (repeatable).")
@click.option("--json-response", is_flag=True, help="Answer POSTs with JSON, not SSE streams.")
@click.option("--max-sessions", type=click.IntRange(1), default=None, help="Live legacy sessions / HTTP+SSE connections at most.")
@click.option("--max-message-bytes", type=click.IntRange(1), default=None, help="Largest accepted HTTP body (default 4 MiB).")
@click.option("--rate-limit", default=None, metavar="RATE", help="Requests per client, e.g. 100/minute; more get 429.")
@click.option("--legacy-sse/--no-legacy-sse", default=True, show_default=True, help="Also serve HTTP+SSE (2024-11-05) at /sse.")
@click.option("--redis", default=None, envvar="ANYPORT_REDIS_URL", metavar="URL",
              help="Replicas of this bridge share rate limits and session records in this Redis (redis://, rediss://).")
@click.option("--redis-prefix", default="anyport", show_default=True, envvar="ANYPORT_REDIS_PREFIX",
              help="Prefix of every Redis key (several services may share one Redis).")
@click.option("--advertise-url", default=None, envvar="ANYPORT_ADVERTISE_URL", metavar="URL",
              help="With --redis: where the other replicas reach this one (e.g. http://$POD_IP:8000); they forward the "
                   "requests of the sessions whose children are here, so no sticky load balancer is needed.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
@auth_options
@observe_options
def bridge(command: tuple[str, ...], host: str, port: int, path: str, shared: bool, min_children: int | None, max_children: int,
           spares: int, concurrency: int, idle_timeout: float, grace: float, start_timeout: float, call_timeout: float,
           env: tuple[str, ...], cwd: str | None, pass_headers: tuple[str, ...], watchdog: bool, child_era: str, allowed_hosts: tuple[str, ...],
           allowed_origins: tuple[str, ...], json_response: bool, max_sessions: int | None, max_message_bytes: int | None,
           rate_limit: str | None, legacy_sse: bool, redis: str | None, redis_prefix: str, advertise_url: str | None,
           log_level: str, **more: Any) -> None:
    """Serve the stdio MCP server COMMAND over Streamable HTTP (both eras) and HTTP+SSE.

    Put -- before the command: anyport bridge --port 8000 -- npx -y @modelcontextprotocol/server-everything

    Several servers, one path each (/NAME/mcp): [bridge.servers.NAME] tables in anyport.toml, no COMMAND.
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise click.ClickException("the bridge needs uvicorn: pip install 'anyport[http]'") from exc
    from anyport.bridge import Bridge, BridgeASGI, MultiBridge, bridge_app
    from anyport.bridge._multi import beside
    from anyport.cli._observe import observer
    from anyport.transports.http._serve import ListenError, check_listen, default_allowed_hosts

    if not path.startswith("/"):
        raise click.UsageError("--path must start with '/'")
    children = {
        "command": command, "shared": shared, "min_children": min_children, "max_children": max_children, "spares": spares,
        "concurrency": concurrency, "idle_timeout": idle_timeout, "grace": grace, "start_timeout": start_timeout,
        "call_timeout": call_timeout, "env": env, "cwd": cwd, "pass_headers": pass_headers, "watchdog": watchdog,
        "child_era": child_era, "path": path,
    }
    served = _served(children)
    several = "" not in served
    options = {name: _bridge_options(f"server {name!r}: " if several else "", s) for name, s in served.items()}
    shared_state = _shared_state(redis, redis_prefix, advertise_url)
    try:
        check_listen(host, port)  # a port in use: one line, before any child is started
    except ListenError as exc:
        raise click.ClickException(exc.strerror or str(exc)) from None
    hosts, warning = (list(allowed_hosts), None) if allowed_hosts else default_allowed_hosts(host)
    if warning:
        click.echo(warning, err=True)
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    limits: dict[str, Any] = {}
    if max_sessions is not None:
        limits["max_sessions"] = max_sessions
    if max_message_bytes is not None:
        limits["max_body_bytes"] = max_message_bytes
    observing = {name: more.pop(name) for name in OBSERVE_OPTIONS}
    if more.get("client_ca"):
        raise click.UsageError("--client-ca needs anyport's own TLS, which the bridge does not terminate: put it behind a proxy "
                               "that does, with --client-cert-header")
    more.pop("hide_unauthorized", None)
    observe = observer(transport="http", **observing)
    apps: dict[str, BridgeASGI] = {}
    banner: list[str] = []
    shown = f"[{host}]" if ":" in host else host
    for name, s in served.items():
        flags = dict(more)
        if several and flags.get("resource_url"):  # several servers: --resource-url is the base URL of them all
            flags["resource_url"] = str(flags["resource_url"]).rstrip("/") + s["path"]
        auth = auth_chain(flags, host=host, port=port, path=s["path"], tls=False, trusted_proxies=())
        sse_path, messages_path = beside(s["path"]) if several else ("/sse", "/messages/")
        bridged = Bridge(options[name])
        try:
            apps[name] = bridge_app(
                bridged, application=observe(bridged), path=s["path"], sse_path=sse_path, messages_path=messages_path,
                json_response=json_response, allowed_hosts=hosts or None, allowed_origins=list(allowed_origins) or None,
                legacy_sse=legacy_sse, rate_limit=rate_limit, auth=auth, session_idle_timeout=max(s["idle_timeout"], 1.0), **limits,
                **shared_state,
            )
        except ValueError as exc:  # a malformed --rate-limit, paths that collide, ...
            raise click.UsageError(f"server {name!r}: {exc}" if several else str(exc)) from None
        banner.append(f"anyport: bridging {(f'server {name!r}: ' if several else '')}{' '.join(s['command'])!r} at "
                      f"http://{shown}:{port}{s['path']}" + (f" and HTTP+SSE at {sse_path}" if legacy_sse else ""))
    try:
        app: BridgeASGI | MultiBridge = MultiBridge(apps) if several else apps[""]
    except ValueError as exc:  # two servers at one path
        raise click.UsageError(str(exc)) from None
    click.echo("\n".join(banner), err=True)
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", log_level=log_level if log_level != "info" else "warning",
                            ws="none", timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run()
    except SystemExit:  # uvicorn exits when the lifespan start-up failed: say why, in one line
        if app.startup_error is None:
            raise
    if app.startup_error is not None:
        raise click.ClickException(app.startup_error)


def _shared_state(redis: str | None, prefix: str, advertise_url: str | None) -> dict[str, Any]:
    """The bridge_app keywords of --redis / --advertise-url, checked (Redis reachable, the URL well formed)."""
    if redis is None:
        if advertise_url is not None:
            raise click.UsageError("--advertise-url needs --redis: the replicas find each other's sessions there")
        return {}
    from anyport.cli._main import _check_redis

    _check_redis(redis, prefix)
    if advertise_url is None:
        click.echo("anyport: --redis without --advertise-url: a session's request that lands on another replica gets a "
                   "new child there (what the old one kept in memory is lost); give --advertise-url to forward it instead",
                   err=True)
        return {"redis": redis, "redis_prefix": prefix}
    from urllib.parse import urlsplit

    parts = urlsplit(advertise_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
        raise click.BadParameter(f"{advertise_url!r}: expected http://HOST:PORT (no path)", param_hint="--advertise-url")
    return {"redis": redis, "redis_prefix": prefix, "advertise_url": advertise_url}


@click.command()
@click.argument("url")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="An HTTP header sent upstream (repeatable).")
@click.option("--transport", type=click.Choice(["auto", "streamable-http", "sse"]), default="auto", show_default=True,
              help="auto: Streamable HTTP, falling back to HTTP+SSE as the client does.")
@click.option("--timeout", type=click.FloatRange(0.1), default=300.0, show_default=True, help="Seconds a request may take upstream.")
@click.option("--oauth", "use_oauth", is_flag=True,
              help="Authorize with OAuth 2.1: a stored token, else a login in the browser (the link also on stderr). "
                   "Several connect processes for one server share one login.")
@click.option("--scope", "scopes", multiple=True, metavar="SCOPE", help="With --oauth: a scope to ask for (repeatable).")
@click.option("--token-store", type=click.Path(dir_okay=False), default=None, envvar="ANYPORT_OAUTH_STORE",
              help="With --oauth: the token file (default ~/.local/state/anyport/oauth.json).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning", show_default=True,
              help="Logs go to stderr; stdout carries protocol messages only.")
def connect(url: str, headers: tuple[str, ...], transport: str, timeout: float, use_oauth: bool, scopes: tuple[str, ...],
            token_store: str | None, log_level: str) -> None:
    """Serve the remote MCP server at URL on stdio (for hosts that only spawn commands)."""
    from anyport.transports.stdio import claim_stdout

    stdout_fd = claim_stdout()  # T-STDIO-03: nothing but protocol messages on stdout, from here on
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr, format="anyport connect: %(levelname)s %(message)s")
    parsed: dict[str, str] = {}
    for item in headers:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r}: expected 'NAME: VALUE'", param_hint="--header")
        parsed[name.strip()] = value.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise click.BadParameter("expected an http:// or https:// URL", param_hint="URL")
    import asyncio

    from anyport._exceptions import MCPError
    from anyport.bridge._remote import Remote
    from anyport.transports.stdio import serve_stdio

    if (scopes or token_store) and not use_oauth:
        raise click.UsageError("--scope and --token-store go with --oauth")
    auth = None
    if use_oauth:
        if any(name.lower() == "authorization" for name in parsed):
            raise click.UsageError("--oauth and an Authorization --header: give one or the other")
        from anyport.oauth import FileTokenStore, OAuth

        auth = OAuth(scopes=scopes or None, store=FileTokenStore(token_store) if token_store else None)

    async def run() -> None:
        remote = Remote(url, headers=parsed, transport=transport, timeout=timeout, auth=auth)
        try:
            await remote.start()
        except (MCPError, OSError) as exc:
            raise click.ClickException(f"cannot connect to {url}: {exc}") from None
        try:
            await serve_stdio(remote, stdout_fd=stdout_fd)
        finally:
            await remote.aclose()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


@click.group()
def commands() -> None:
    """The bridge commands on their own (``python -m anyport.cli._bridge``)."""


commands.add_command(bridge)
commands.add_command(connect)


def main(argv: list[str] | None = None) -> Any:
    return commands.main(args=argv, prog_name="anyport")


if __name__ == "__main__":
    main()
