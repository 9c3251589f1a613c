"""Reading the recipes of ``deploy/`` the way their tools do, for the tests: the instructions of a
Dockerfile stage (``ENV``, ``CMD``, ``HEALTHCHECK``), a compose file, the nginx.conf made runnable on
loopback ports."""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
NGINX_CONF = DEPLOY / "compose" / "nginx.conf"


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (from its FROM on)."""
    out: list[list[tuple[str, str]]] = []
    for ins in instructions:
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def runtime_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The ``ENV KEY=VALUE ...`` of a stage (``$PATH``-style references left as they are)."""
    env: dict[str, str] = {}
    for word, args in stage:
        if word == "ENV":
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                assert sep, f"ENV {args!r}: use the KEY=VALUE form"
                env[key] = value
    return env


def exec_form(stage: list[tuple[str, str]], word: str) -> list[str]:
    """The JSON (exec) form of the last ``CMD`` / ``ENTRYPOINT`` / ``HEALTHCHECK ... CMD`` of a stage."""
    found = [args for w, args in stage if w == word]
    assert found, f"no {word} in the stage"
    args = found[-1]
    if word == "HEALTHCHECK":
        args = args[args.index("CMD ") + 4 :].strip()
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"{word} is not in the exec form"
    return value


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _sub(text: str, pattern: str, repl: str, count: int) -> str:
    new, n = re.subn(pattern, repl, text, flags=re.MULTILINE)
    assert n == count, f"nginx.conf: expected {count} match(es) of {pattern!r}, found {n}"
    return new


def local_nginx_conf(folder: Path, port: int, upstreams: list[int], text: str | None = None) -> str:
    """deploy/compose/nginx.conf with only what ties it to the containers changed: the three
    upstream servers become loopback ports, nginx listens on ``127.0.0.1:port``, its pid file, logs
    and temporary files go to ``folder``, one worker process. Every other line runs as written."""
    text = NGINX_CONF.read_text() if text is None else text
    servers = re.findall(r"^\s*server anyport-\d:8000\b.*$", text, flags=re.MULTILINE)
    assert len(servers) == len(upstreams), servers
    for line, up in zip(servers, upstreams, strict=True):
        text = text.replace(line, re.sub(r"anyport-\d:8000", f"127.0.0.1:{up}", line), 1)
    text = _sub(text, r"^worker_processes .*;$", "worker_processes 1;", 1)
    text = _sub(text, r"^pid .*;$", f"pid {folder}/nginx.pid;", 1)
    text = _sub(text, r"^error_log .*;$", f"error_log {folder}/error.log warn;", 1)
    text = _sub(text, r"^(\s*)access_log /dev/stdout (\w+);$", rf"\1access_log {folder}/access.log \2;", 1)
    text = _sub(text, r"^(\s*)listen 8080;$", rf"\1listen 127.0.0.1:{port};", 1)
    temp = "".join(
        f"    {name}_temp_path {folder}/{name};\n" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = _sub(text, r"^http \{\n", "http {\n" + temp, 1)
    # As root the worker would switch to nginx's compiled-in user, which cannot write the folder.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    return "daemon off;\n" + user + text
