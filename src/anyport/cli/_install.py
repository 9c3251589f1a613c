"""``anyport install HOST TARGET``: the configuration an MCP host needs to start (or reach) a server.

HOST is ``claude-desktop``, ``claude-code``, ``cursor``, ``vscode`` or ``json``; TARGET is a server
file (``path/to/server.py[:attr]``), a module (``package.module[:attr]``) or the URL of a running
server. One entry of the host's JSON file is added or replaced; every other entry and key is kept.
The file is written atomically (a temporary file in the same folder, then a rename) after a copy of
the previous version is kept next to it (``<file>.bak``). A file that is not plain JSON (VS Code
allows comments) is never rewritten: the entry is printed to add by hand. ``--print`` writes nothing
and prints what would be written. Claude Code is configured through its own CLI (``claude mcp add``)
when ``claude`` is on PATH; otherwise the command is printed.

Not registered in ``_main.py`` here; ``cli.add_command(install)`` does it. Nothing is imported from
the server: TARGET is never loaded, so installing cannot run the server's code.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

__all__ = ["HOSTS", "Launch", "config_path", "entry_for", "install", "merge_entry", "write_atomic"]

HOSTS = ("claude-desktop", "claude-code", "cursor", "vscode", "json")
#: The key of the servers' object in each host's file.
SERVERS_KEY = {"claude-desktop": "mcpServers", "cursor": "mcpServers", "json": "mcpServers", "vscode": "servers"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Launch:
    """How a host starts the server (``command`` + ``args``, with ``env``) or reaches it (``url``)."""

    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _system(system: str | None) -> str:
    value = system or sys.platform
    return "macos" if value == "darwin" else "windows" if value.startswith("win") else "linux"


def config_path(
    host: str, *, system: str | None = None, home: Path | None = None, environ: Mapping[str, str] | None = None,
    workspace: Path | None = None, user: bool = False,
) -> Path:
    """Where ``host`` keeps its MCP servers on this (or the named) system.

    ``system``: ``sys.platform``-style (``darwin``, ``win32``, ``linux``). Cursor and VS Code have a
    file per project (``<workspace>/.cursor/mcp.json``, ``<workspace>/.vscode/mcp.json``) and one per
    user; Cursor's default is the user's, VS Code's the workspace's (``user=True``: the user's).
    """
    kind = _system(system)
    home = home if home is not None else Path.home()
    env = os.environ if environ is None else environ
    roaming = Path(env["APPDATA"]) if env.get("APPDATA") else home / "AppData" / "Roaming"
    if host == "claude-desktop":
        if kind == "macos":
            return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
        if kind == "windows":
            return roaming / "Claude" / "claude_desktop_config.json"
        base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
        return base / "Claude" / "claude_desktop_config.json"
    if host == "cursor":
        if workspace is not None and not user:
            return workspace / ".cursor" / "mcp.json"
        return home / ".cursor" / "mcp.json"  # the same place on every system
    if host == "vscode":
        if not user:
            return (workspace if workspace is not None else Path.cwd()) / ".vscode" / "mcp.json"
        if kind == "macos":
            return home / "Library" / "Application Support" / "Code" / "User" / "mcp.json"
        if kind == "windows":
            return roaming / "Code" / "User" / "mcp.json"
        base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
        return base / "Code" / "User" / "mcp.json"
    raise ValueError(f"{host} keeps no configuration file of ours")


def is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def _server_spec(target: str) -> str:
    """A file target made absolute (the host starts the server from a folder of its own)."""
    drive, rest = (target[:2], target[2:]) if re.match(r"[A-Za-z]:[\\/]", target) else ("", target)
    path_part, sep, attr = rest.partition(":")
    path_part = drive + path_part
    path = Path(path_part).expanduser()
    if path_part.endswith(".py") or path.exists():
        if not path.is_file():
            raise click.UsageError(f"no such file: {path_part}")
        return str(path.resolve()) + (f":{attr}" if sep else "")
    return target  # package.module[:attr], imported by the interpreter that runs it


def stdio_launch(
    target: str, *, env: Mapping[str, str], with_packages: Sequence[str] = (), python: str | None = None,
    use_uv: bool = False, executable: str | None = None,
) -> Launch:
    """``<this python> -m anyport serve TARGET``, or with uv (``--with``/``--python``/``--uv``):
    ``uv run --with anyport[cli] [--with PKG]... [--python VERSION] anyport serve TARGET``."""
    spec = _server_spec(target)
    if use_uv or with_packages or python:
        uv = shutil.which("uv") or "uv"
        args = ["run", "--with", "anyport[cli]"]
        for package in with_packages:
            args += ["--with", package]
        if python:
            args += ["--python", python]
        return Launch(uv, [*args, "anyport", "serve", spec], dict(env))
    # Hosts start servers with a short PATH: the absolute interpreter that has anyport installed.
    return Launch(executable or sys.executable, ["-m", "anyport", "serve", spec], dict(env))


def entry_for(host: str, launch: Launch) -> dict[str, Any]:
    """The host's JSON entry for one server."""
    if launch.url is not None:
        if host == "vscode":
            entry: dict[str, Any] = {"type": "http", "url": launch.url}
        elif host == "claude-desktop":
            # Claude Desktop's file starts local processes only: a stdio bridge to the URL.
            args = ["-y", "mcp-remote", launch.url]
            for name, value in launch.headers.items():
                args += ["--header", f"{name}: {value}"]
            entry = {"command": "npx", "args": args}
            if launch.env:
                entry["env"] = dict(launch.env)
            return entry
        else:
            entry = {"url": launch.url}
        if launch.headers:
            entry["headers"] = dict(launch.headers)
        return entry
    assert launch.command is not None
    entry = {"type": "stdio"} if host == "vscode" else {}
    entry.update(command=launch.command, args=list(launch.args))
    if launch.env:
        entry["env"] = dict(launch.env)
    return entry


class ConfigError(click.ClickException):
    """The host's file cannot be updated without losing what is in it."""


def read_config(path: Path) -> dict[str, Any]:
    """The host's file as a JSON object ({} when it does not exist or is empty)."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not plain JSON ({exc.msg}, line {exc.lineno}; comments or trailing commas?): "
            "it was left as it is, add the entry by hand"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, not an object: it was left as it is")
    return data


def merge_entry(config: dict[str, Any], key: str, name: str, entry: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``config`` with ``config[key][name] = entry`` (everything else kept), and whether it replaced one."""
    servers = config.get(key, {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{key!r} is a JSON {type(servers).__name__}, not an object: the file was left as it is")
    replaced = name in servers
    return {**config, key: {**servers, name: entry}}, replaced


def write_atomic(path: Path, data: dict[str, Any]) -> Path | None:
    """Write ``data`` as JSON to ``path`` in one rename; the previous file, if any, is kept as
    ``<path>.bak`` (returned). A new file is readable by its owner only (entries may hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backup: Path | None = None
    mode = 0o600
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
        mode = path.stat().st_mode & 0o777
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return backup


def claude_code_command(name: str, launch: Launch, scope: str, claude: str = "claude") -> list[str]:
    """``claude mcp add`` for one server."""
    cmd = [claude, "mcp", "add", "--scope", scope]
    for key, value in launch.env.items():
        cmd += ["--env", f"{key}={value}"]
    if launch.url is not None:
        cmd += ["--transport", "http"]
        for header, value in launch.headers.items():
            cmd += ["--header", f"{header}: {value}"]
        return [*cmd, name, launch.url]
    assert launch.command is not None
    return [*cmd, "--transport", "stdio", name, "--", launch.command, *launch.args]


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not _ENV_NAME.fullmatch(key):
            raise click.BadParameter(f"{item!r}: give KEY=VALUE", param_hint=what)
        out[key] = value
    return out


def _env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines (``export``, quotes and comments as in a .env file)."""
    out: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not _ENV_NAME.fullmatch(key.strip()):
            raise click.BadParameter(f"line {number}: {raw!r} is not KEY=VALUE", param_hint="--env-file")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def _headers(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name.strip()):
            raise click.BadParameter(f"{item!r}: give 'Name: value'", param_hint="--header")
        out[name.strip()] = value.strip()
    return out


def _default_name(target: str) -> str:
    if is_url(target):
        return urlsplit(target).hostname or "mcp"
    drive, rest = (target[:2], target[2:]) if re.match(r"[A-Za-z]:[\\/]", target) else ("", target)
    spec, _, attr = rest.partition(":")
    spec = drive + spec
    if spec.endswith(".py"):
        return Path(spec).stem or "mcp"
    return spec.rsplit(".", 1)[-1] or attr or "mcp"


@click.command()
@click.argument("host", type=click.Choice(HOSTS))
@click.argument("target")
@click.option("--name", help="The server's name in the host (default: the file's stem, the module, or the URL's host).")
@click.option("--env", "env_items", multiple=True, metavar="KEY=VALUE", help="An environment variable of the server (repeatable).")
@click.option("--env-file", type=click.Path(exists=True, dir_okay=False), help="More variables, from a .env file (--env wins).")
@click.option("--with", "with_packages", multiple=True, metavar="PACKAGE", help="A package the server needs: run it with uv (repeatable).")
@click.option("--python", help="The Python version uv runs the server with (e.g. 3.12).")
@click.option("--uv", "use_uv", is_flag=True, help="Run the server with `uv run` (implied by --with and --python).")
@click.option("--header", "header_items", multiple=True, metavar="'NAME: VALUE'", help="URL targets: an HTTP header sent to the server (repeatable).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Write this file instead of the host's usual one.")
@click.option("--workspace", type=click.Path(file_okay=False), help="cursor, vscode: the project folder (default for vscode: the current one).")
@click.option("--user", "user_level", is_flag=True, help="cursor, vscode: the user's file, not the project's.")
@click.option("--scope", type=click.Choice(["local", "user", "project"]), default="local", show_default=True, help="claude-code: where Claude Code keeps it.")
@click.option("--print", "print_only", is_flag=True, help="Print what would be written (or run); change nothing.")
def install(
    host: str, target: str, name: str | None, env_items: tuple[str, ...], env_file: str | None, with_packages: tuple[str, ...],
    python: str | None, use_uv: bool, header_items: tuple[str, ...], config_file: str | None, workspace: str | None,
    user_level: bool, scope: str, print_only: bool,
) -> None:
    """Add TARGET (a server file, module or URL) to an MCP host's configuration.

    \b
    anyport install claude-desktop notes.py
    anyport install cursor notes.py --env NOTES_DIR=/srv/notes
    anyport install vscode https://mcp.example.com/mcp --header "Authorization: Bearer ${input:token}"
    anyport install claude-code notes.py --with httpx --scope user
    anyport install json notes.py            # prints {"mcpServers": {...}} for any other host

    Other servers in the file are kept; the previous file is saved as <file>.bak.
    """
    env = {**(_env_file(env_file) if env_file else {}), **_pairs(env_items, "--env")}
    headers = _headers(header_items)
    if is_url(target):
        if with_packages or python or use_uv:
            raise click.UsageError("--with, --python and --uv start a local server: not with a URL")
        launch = Launch(url=target, headers=headers, env=env if host == "claude-desktop" else {})
        if env and host != "claude-desktop":
            raise click.UsageError("--env sets the environment of a local server: a URL target has none (use --header)")
    else:
        if headers:
            raise click.UsageError("--header is for URL targets")
        launch = stdio_launch(target, env=env, with_packages=with_packages, python=python, use_uv=use_uv)
    server_name = name if name is not None else _default_name(target)
    if not server_name.strip():
        raise click.BadParameter("give a non-empty name", param_hint="--name")
    if launch.command and (with_packages or python or use_uv) and not shutil.which("uv"):
        click.echo("anyport: uv is not on PATH; the host will need it to start the server (https://docs.astral.sh/uv/)", err=True)

    if host == "claude-code":
        _claude_code(server_name, launch, scope, print_only)
        return
    entry = entry_for(host, launch)
    if host == "json" and config_file is None:
        click.echo(json.dumps({SERVERS_KEY[host]: {server_name: entry}}, indent=2, ensure_ascii=False))
        return
    path = Path(config_file).expanduser() if config_file else config_path(
        host, workspace=Path(workspace).expanduser() if workspace else None, user=user_level,
    )
    try:
        config = read_config(path)
    except ConfigError as exc:
        click.echo(json.dumps({SERVERS_KEY[host]: {server_name: entry}}, indent=2, ensure_ascii=False))
        raise exc from None
    updated, replaced = merge_entry(config, SERVERS_KEY[host], server_name, entry)
    if print_only:
        click.echo(json.dumps(updated, indent=2, ensure_ascii=False))
        click.echo(f"anyport: would {'replace' if replaced else 'add'} {server_name!r} in {path} (nothing written)", err=True)
        return
    try:
        backup = write_atomic(path, updated)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc}") from exc
    saved = f" (previous file: {backup})" if backup else ""
    click.echo(f"anyport: {'replaced' if replaced else 'added'} {server_name!r} in {path}{saved}", err=True)
    if host == "claude-desktop":
        click.echo("anyport: restart Claude Desktop to load it", err=True)


def _claude_code(name: str, launch: Launch, scope: str, print_only: bool) -> None:
    claude = shutil.which("claude")
    command = claude_code_command(name, launch, scope, claude or "claude")
    if print_only or claude is None:
        click.echo(shlex.join(command))
        if claude is None and not print_only:
            click.echo("anyport: `claude` is not on PATH: run the command above where Claude Code is installed", err=True)
        return
    # Replace, not add twice: an entry of that name in that scope goes first (absent is fine).
    subprocess.run([claude, "mcp", "remove", "--scope", scope, name], capture_output=True, timeout=60, check=False)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"`{shlex.join(command)}` failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
    click.echo(f"anyport: added {name!r} to Claude Code ({scope} scope)", err=True)
