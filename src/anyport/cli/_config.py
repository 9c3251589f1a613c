"""The configuration file of ``anyport serve`` and ``anyport bridge`` (docs/config.md), and the
front door of the ``anyport`` group: every error a user can cause is one line.

``anyport.toml`` in the current directory, else ``[tool.anyport]`` of ``./pyproject.toml``, or the
file named by ``--config FILE`` / ``ANYPORT_CONFIG``. Its values become the commands' click
``default_map``, so click itself decides the precedence: a flag, then an ``ANYPORT_*`` variable,
then the file, then the built-in default. Every value goes through the option's own click type
before anything runs: an unknown key or a bad value is one error naming the file and the key.
"""

from __future__ import annotations

import copy
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click
from click.core import ParameterSource

__all__ = [
    "SERVER_KEYS", "ConfigFile", "FrontDoor", "config", "configurable", "describe", "env_name", "file_origin", "find_config",
    "redact", "servers_of",
]

C = TypeVar("C", bound=click.Command)

#: Tables of a command's section (``[serve.auth]`` ...) that only group keys for the reader.
GROUPS = ("http", "tls", "auth", "limits", "state", "observe", "children")
#: The ``ctx.meta`` key holding where each value of the file came from.
_META = "anyport.config"
#: The parameter ``configurable`` adds.
_PARAM = "config_file"
#: Parameters that never come from the file.
_NOT_IN_FILE = ("help", _PARAM)
#: Parameters whose values are secrets: shown as *** by ``anyport config show``.
_SECRETS = ("introspection_client_secret",)
#: ``[bridge.servers.NAME]``: the stdio servers of one bridge process, one path each (docs/bridge.md).
_SERVERS = "servers"
#: The commands whose section may hold ``servers`` tables.
_SERVER_COMMANDS = ("bridge",)
#: The parameters a server table may set: the bridge's child options, and its path.
SERVER_KEYS = (
    "command", "shared", "min_children", "max_children", "spares", "concurrency", "idle_timeout", "grace", "start_timeout",
    "call_timeout", "env", "cwd", "pass_headers", "watchdog", "child_era", "path",
)
#: A server's name is a path segment of its URL.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
#: The ``ctx.meta`` key holding the checked server tables of the command.
_SERVERS_META = "anyport.config.servers"


class ConfigError(click.UsageError):
    """A bad configuration file: one line naming the file and the key."""


@dataclass(frozen=True)
class ConfigFile:
    """A configuration file: where it is, how it is named in messages, and its table."""

    path: Path
    label: str  # "anyport.toml", "pyproject.toml"
    prefix: str  # "" or "tool.anyport." (in front of every key in messages)
    table: dict[str, Any] = field(default_factory=dict)
    how: str = "found"  # "found", "--config", "ANYPORT_CONFIG"


def find_config(explicit: str | None, *, how: str = "--config", cwd: Path | None = None) -> ConfigFile | None:
    """The configuration file in effect: ``explicit``, else ``./anyport.toml``, else
    ``[tool.anyport]`` of ``./pyproject.toml``; None when there is none."""
    import tomllib

    here = cwd or Path.cwd()
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{how} {explicit}: no such file")
        candidates = [path]
    else:
        candidates = [p for p in (here / "anyport.toml", here / "pyproject.toml") if p.is_file()]
    for path in candidates:
        label = str(path) if explicit is not None else path.name
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{label}: cannot read it: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{label}: not valid TOML: {exc}") from None
        found_how = how if explicit is not None else "found"
        if path.name == "pyproject.toml":
            tool = data.get("tool")
            section = tool.get("anyport") if isinstance(tool, dict) else None
            if section is None and explicit is None:
                continue  # a pyproject.toml without [tool.anyport] is not a configuration file
            if not isinstance(section, dict):
                raise ConfigError(f"{label}: no [tool.anyport] table")
            return ConfigFile(path, label, "tool.anyport.", section, found_how)
        return ConfigFile(path, label, "", data, found_how)
    return None


def configurable(command: C) -> C:
    """A copy of ``command`` that reads the configuration file (``--config FILE``, ``ANYPORT_CONFIG``).

    The command itself is not changed: the copy gets an eager ``--config`` option whose callback
    fills ``ctx.default_map`` before any other parameter is read.
    """
    option = click.Option(
        ["--config", _PARAM], type=click.Path(dir_okay=False), envvar="ANYPORT_CONFIG", is_eager=True,
        expose_value=False, callback=_apply, metavar="FILE",
        help="Settings file (default: ./anyport.toml, else [tool.anyport] in ./pyproject.toml); flags and ANYPORT_* variables override it.",
    )
    clone = copy.copy(command)
    clone.params = [*command.params, option]
    return clone


def _apply(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    how = "--config"
    if value is not None and ctx.get_parameter_source(param.name or _PARAM) == ParameterSource.ENVIRONMENT:
        how = "ANYPORT_CONFIG"
    config = find_config(value, how=how)
    ctx.meta[_META] = (config, {})
    ctx.meta[_SERVERS_META] = {}
    if config is None:
        return
    commands = _configurable_commands(ctx)
    settings = _resolve(config, commands)
    me = ctx.info_name or ctx.command.name or ""
    mine = settings.get(me, {})
    for name, command in commands.items():  # every server table is checked, whichever command runs
        if name in _SERVER_COMMANDS:
            servers = _servers(config, name, command)
            if name == me:
                ctx.meta[_SERVERS_META] = servers
    ctx.default_map = {**(ctx.default_map or {}), **{name: v for name, (v, _) in mine.items()}}
    ctx.meta[_META] = (config, {name: key for name, (_, key) in mine.items()})


def _configurable_commands(ctx: click.Context) -> dict[str, click.Command]:
    root = ctx.find_root()
    found: dict[str, click.Command] = {}
    if isinstance(root.command, click.Group) and root is not ctx:
        for name in root.command.list_commands(root):
            cmd = root.command.get_command(root, name)
            if cmd is not None and any(p.name == _PARAM for p in cmd.params):
                found[name] = cmd
    name = ctx.info_name or ctx.command.name or ""
    if name not in found:  # a command run on its own, or ``config show``'s copy
        found[name] = ctx.command
    return found


def key_names(command: click.Command) -> dict[str, click.Parameter]:
    """Every spelling of a key for ``command``: the parameter's name and its long flags, with
    dashes or underscores."""
    names: dict[str, click.Parameter] = {}
    for param in command.params:
        if param.name is None or param.name in _NOT_IN_FILE:
            continue
        spellings = {param.name}
        if isinstance(param, click.Option):
            spellings.update(o.lstrip("-") for o in param.opts if o.startswith("--"))
        for s in spellings:
            names[s.replace("_", "-")] = param
            names[s.replace("-", "_")] = param
    return names


def _entries(config: ConfigFile, commands: dict[str, click.Command]) -> Iterator[tuple[str | None, str, str, Any]]:
    """(command or None for every command, dotted key, key, value) of each setting in the file."""
    for key, value in config.table.items():
        if key in commands:
            if not isinstance(value, dict):
                raise ConfigError(f"{config.label}: {config.prefix}{key}: expected a table ([{key}])")
            for sub, item in value.items():
                if sub == _SERVERS and key in _SERVER_COMMANDS:
                    continue  # checked by _servers
                if isinstance(item, dict):
                    if sub not in GROUPS:
                        raise _unknown(config, f"{key}.{sub}", sub, [*GROUPS, *key_names(commands[key])])
                    for k, v in item.items():
                        yield key, f"{key}.{sub}.{k}", k, v
                else:
                    yield key, f"{key}.{sub}", sub, item
        elif isinstance(value, dict):
            if key not in GROUPS:
                raise _unknown(config, key, key, [*commands, *GROUPS])
            for k, v in value.items():
                yield None, f"{key}.{k}", k, v
        else:
            yield None, key, key, value


def _unknown(config: ConfigFile, dotted: str, key: str, known: list[str]) -> ConfigError:
    import difflib

    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"{config.label}: {config.prefix}{dotted}: unknown key{hint}")


def _resolve(config: ConfigFile, commands: dict[str, click.Command]) -> dict[str, dict[str, tuple[Any, str]]]:
    """Each command's settings from the file, checked: {command: {param name: (value, dotted key)}}."""
    out: dict[str, dict[str, tuple[Any, str]]] = {name: {} for name in commands}
    shared: list[tuple[str, str, Any]] = []
    own: list[tuple[str, str, str, Any]] = []
    for command, dotted, key, value in _entries(config, commands):
        if command is None:
            shared.append((dotted, key, value))
        else:
            own.append((command, dotted, key, value))
    for dotted, key, value in shared:  # a top-level key holds for every command that has it ...
        targets = [name for name, cmd in commands.items() if key in key_names(cmd)]
        if not targets:
            known = sorted({k for cmd in commands.values() for k in key_names(cmd)})
            raise _unknown(config, dotted, key, known)
        for name in targets:
            param = key_names(commands[name])[key]
            out[name][param.name or key] = (_convert(config, commands[name], param, dotted, value), dotted)
    for name, dotted, key, value in own:  # ... and a command's own section overrides it
        names = key_names(commands[name])
        if key not in names:
            raise _unknown(config, dotted, key, list(names))
        param = names[key]
        out[name][param.name or key] = (_convert(config, commands[name], param, dotted, value), dotted)
    return out


def _servers(config: ConfigFile, name: str, command: click.Command) -> dict[str, dict[str, tuple[Any, str]]]:
    """The ``[NAME.servers.SERVER]`` tables of command ``name``, checked like the rest of the file:
    {server: {param name: (value, dotted key)}}."""
    section = config.table.get(name)
    table = section.get(_SERVERS) if isinstance(section, dict) else None
    if table is None:
        return {}
    where = f"{config.label}: {config.prefix}{name}.{_SERVERS}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected tables ([{name}.{_SERVERS}.NAME])")
    names = {k: p for k, p in key_names(command).items() if p.name in SERVER_KEYS}
    out: dict[str, dict[str, tuple[Any, str]]] = {}
    for server, keys in table.items():
        dotted = f"{name}.{_SERVERS}.{server}"
        if not _SAFE_NAME.match(server):
            raise ConfigError(f"{where}.{server}: a server's name is a path segment: letters, digits, '-' and '_' only")
        if not isinstance(keys, dict):
            raise ConfigError(f"{where}.{server}: expected a table ([{dotted}])")
        settings: dict[str, tuple[Any, str]] = {}
        for key, value in keys.items():
            param = names.get(key)
            if param is None or param.name is None:
                if key in key_names(command):  # host, port, auth, ...: the process's, not a server's
                    raise ConfigError(f"{where}.{server}.{key}: not a server's key: set it in [{name}], for every server")
                raise _unknown(config, f"{dotted}.{key}", key, list(names))
            converted = _convert(config, command, param, f"{dotted}.{key}", value)
            if param.name == "path" and not str(converted).startswith("/"):
                raise ConfigError(f"{where}.{server}.{key}: must start with '/'")
            settings[param.name] = (converted, f"{dotted}.{key}")
        if "command" not in settings:
            raise ConfigError(f"{where}.{server}: no command (each server table names its own)")
        out[server] = settings
    return out


def servers_of(ctx: click.Context) -> dict[str, dict[str, tuple[Any, str]]]:
    """The checked ``[bridge.servers.NAME]`` tables of the settings file in effect:
    {name: {param name: (value, dotted key)}}; empty when there are none."""
    servers: dict[str, dict[str, tuple[Any, str]]] = ctx.meta.get(_SERVERS_META, {})
    return servers


def _convert(config: ConfigFile, command: click.Command, param: click.Parameter, dotted: str, value: Any) -> Any:
    """``value`` through the parameter's click type (a bad one: one line naming file and key)."""
    if isinstance(value, dict):
        raise ConfigError(f"{config.label}: {config.prefix}{dotted}: expected a value, not a table")
    many = param.multiple or param.nargs == -1
    if many and isinstance(value, str):
        import shlex

        value = shlex.split(value) if isinstance(param, click.Argument) else [value]
    elif not many and isinstance(value, list):
        raise ConfigError(f"{config.label}: {config.prefix}{dotted}: expected one value, not a list")
    value = _relative_to(config, param, value)
    try:
        with click.Context(command) as ctx:
            return param.type_cast_value(ctx, value)
    except click.BadParameter as exc:
        raise ConfigError(f"{config.label}: {config.prefix}{dotted}: {exc.message}") from None


def _relative_to(config: ConfigFile, param: click.Parameter, value: Any) -> Any:
    """A relative path in the file is relative to the file's directory (like ``--cwd`` in a Makefile)."""
    base = config.path.parent
    if isinstance(param.type, click.Path) and isinstance(value, str) and value and not os.path.isabs(value):
        return str(base / value) if base != Path() else value
    if param.name == "target" and isinstance(value, str):  # serve's TARGET: file.py[:attr] or a module
        file, sep, attr = value.partition(":")
        if file.endswith(".py") and not os.path.isabs(file) and base != Path():
            return f"{base / file}{sep}{attr}"
    return value


def redact(name: str | None, value: Any) -> Any:
    """``value`` fit to print: a password in a URL and a secret become ***."""
    if value is None or value == ():
        return value
    if name in _SECRETS:
        return "***"
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password is not None:
            user = parts.username or ""
            host = parts.hostname or ""
            if ":" in host:
                host = f"[{host}]"
            netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
            return urlunsplit(parts._replace(netloc=netloc))
    if isinstance(value, (tuple, list)):
        return [redact(name, v) for v in value]
    return value


def describe(ctx: click.Context) -> Iterator[tuple[str, Any, str]]:
    """(key, effective value redacted, where it came from) of each setting of a parsed command."""
    config, origins = ctx.meta.get(_META, (None, {}))
    for param in ctx.command.params:
        if param.name is None or param.name in _NOT_IN_FILE:
            continue
        key = _key(param)
        source = ctx.get_parameter_source(param.name)
        if source == ParameterSource.COMMANDLINE:
            where = "flag"
        elif source == ParameterSource.ENVIRONMENT:
            where = f"env {env_name(param) or '?'}"
        elif source == ParameterSource.DEFAULT_MAP and config is not None:
            where = f"file {config.label}:{config.prefix}{origins.get(param.name, key)}"
        else:
            where = "default"
        yield key, redact(param.name, ctx.params.get(param.name)), where


def _key(param: click.Parameter) -> str:
    """The name of ``param``'s key as ``config show`` prints it: its first long flag, else its name."""
    key = (param.name or "").replace("_", "-")
    if isinstance(param, click.Option):
        longs = [o.lstrip("-") for o in param.opts if o.startswith("--")]
        key = longs[0] if longs else key
    return key


def env_name(param: click.Parameter) -> str | None:
    """The variable that gave ``param`` its value (the first one set)."""
    names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
    return next((n for n in names if os.environ.get(n)), names[0] if names else None)


def show_command(command: click.Command) -> click.Command:
    """A copy of a configurable command for ``config show``: arguments optional, nothing run."""
    clone = copy.copy(command)
    params: list[click.Parameter] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            param = copy.copy(param)
            param.required = False
        params.append(param)
    clone.params = params
    clone.callback = _nothing
    return clone


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


def file_origin(ctx: click.Context, name: str) -> str | None:
    """``PATH: key`` (as in its errors) when the value of parameter ``name`` came from the configuration file."""
    config, origins = ctx.meta.get(_META, (None, {}))
    if config is None or name not in origins:
        return None
    return f"{config.label}: {config.prefix}{origins[name]}"



@click.group()
def config() -> None:
    """The settings file of serve and bridge: anyport.toml, or [tool.anyport] in pyproject.toml (docs/config.md)."""


@config.command("show", context_settings={"ignore_unknown_options": True})
@click.argument("command", type=click.Choice(["serve", "bridge"]), default="serve", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def show(ctx: click.Context, /, command: str, args: tuple[str, ...]) -> None:
    """Print each setting of COMMAND (serve or bridge): its value and where it came from.

    ARGS are the command's own flags, to see what they change: anyport config show serve --port 9000.
    Sources: flag, env NAME, file PATH:key, default. Secrets are shown as ***.
    """
    root = ctx.find_root()
    assert isinstance(root.command, click.Group)
    target = root.command.get_command(root, command)
    if target is None:
        raise click.UsageError(f"no {command} command here")
    with show_command(target).make_context(command, list(args), parent=ctx) as sub:
        found, _ = sub.meta.get(_META, (None, {}))
        if found is None:
            click.echo("# no settings file: no ./anyport.toml, no [tool.anyport] in ./pyproject.toml")
        else:
            via = "" if found.how == "found" else f" (from {found.how})"
            click.echo(f"# settings file: {found.path.resolve()}{via}")
        rows = list(describe(sub))
        width = max(len(key) for key, _, _ in rows)
        for key, value, where in rows:
            click.echo(f"{key:<{width}}  {_shown(value):<24}  {where}")
        params = {p.name: p for p in target.params}
        for name, settings in servers_of(sub).items():  # a line each: what its table sets (the rest is the bridge's)
            assert found is not None
            table = {_key(params[k]): redact(k, v) for k, (v, _) in settings.items()}
            click.echo(f"servers.{name}  {_shown(table)}  file {found.label}:{found.prefix}bridge.servers.{name}")


def _shown(value: Any) -> str:
    import orjson

    if value is None:
        return "-"
    if isinstance(value, tuple):
        value = list(value)
    return orjson.dumps(value).decode()


#: click >= 8.2 raises this for a group called without a command (its message is the help).
_NO_ARGS_IS_HELP: type[Exception] | tuple[()] = getattr(click.exceptions, "NoArgsIsHelpError", ())


class FrontDoor(click.Group):
    """The ``anyport`` group: every error a user can cause is one line on stderr and a non-zero exit
    (click would print the usage and a hint around a usage error)."""

    def main(
        self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
        standalone_mode: bool = True, **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            if isinstance(exc, _NO_ARGS_IS_HELP):  # ``anyport`` alone: the help, as click shows it
                exc.show()
            else:
                click.echo(f"Error: {one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def one_line(exc: click.ClickException) -> str:
    """The message of ``exc`` on one line; a bad value names its variable or its key in the settings file."""
    message = exc.format_message()
    if isinstance(exc, click.BadParameter) and exc.param is not None and exc.ctx is not None and exc.param.name:
        source = exc.ctx.get_parameter_source(exc.param.name)
        if source == ParameterSource.ENVIRONMENT:
            message = f"{env_name(exc.param)}: {exc.message}"
        elif source == ParameterSource.DEFAULT_MAP:
            message = f"{file_origin(exc.ctx, exc.param.name)}: {exc.message}"
    return " ".join(line.strip() for line in message.splitlines() if line.strip())
