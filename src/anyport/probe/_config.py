"""The exporter's configuration: modules (how to probe) and the targets it may probe.

TOML always (``tomllib``); YAML when PyYAML is installed and the file ends in ``.yaml``/``.yml``.
Every key is checked: a misspelt one is an error naming it, never silently ignored.

Targets: a URL given in ``/probe?target=`` is probed only when it matches ``allowed_targets``
(or when ``allow_any_target = true``, which turns the exporter into an open proxy: an SSRF risk
that must be chosen explicitly). A module may name its own ``target`` URL or stdio ``command``;
those were written by the operator and are always allowed. A command never comes from a request.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from anyport.probe._engine import ProbeOptions

__all__ = ["ConfigError", "ExporterConfig", "Module", "TargetPattern", "load_config", "parse_config"]


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


_EXPORTER_KEYS = {"listen", "max_concurrency", "max_pending", "allowed_targets", "allow_any_target", "timeout_offset"}
_MODULE_KEYS = {
    "timeout", "era", "transport", "headers", "bearer_token_env", "call", "args", "expect_tools_hash",
    "auth_challenge", "insecure", "cafile", "target", "command", "env", "total_timeout",
}


@dataclass(frozen=True, slots=True)
class TargetPattern:
    """One entry of ``allowed_targets``: scheme and host exact (``*.example.com`` matches subdomains),
    port exact or ``*``, path exact or ending in ``*`` (a prefix)."""

    scheme: str
    host: str
    port: str
    path: str

    @classmethod
    def parse(cls, text: str) -> TargetPattern:
        scheme, sep, rest = text.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            raise ConfigError(f"allowed_targets: {text!r} is not an http:// or https:// URL pattern")
        authority, slash, path = rest.partition("/")
        if "@" in authority or not authority:
            raise ConfigError(f"allowed_targets: {text!r}: give host[:port] (no user info)")
        if authority.startswith("["):
            host, _, tail = authority[1:].partition("]")
            port = tail.removeprefix(":")
        else:
            host, _, port = authority.partition(":")
        if "*" in host and not (host.startswith("*.") and "*" not in host[2:]):
            raise ConfigError(f"allowed_targets: {text!r}: a host wildcard is only a leading '*.'")
        if port and port != "*" and not port.isdigit():
            raise ConfigError(f"allowed_targets: {text!r}: the port is a number or '*'")
        default = "443" if scheme.lower() == "https" else "80"
        return cls(scheme.lower(), host.lower(), port or default, "/" + path if slash else "/")

    def matches(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme.lower() != self.scheme or parts.username is not None or parts.password is not None:
            return False
        host = (parts.hostname or "").lower()
        if self.host.startswith("*."):
            if not host.endswith(self.host[1:]) or host == self.host[2:]:
                return False
        elif host != self.host:
            return False
        actual = str(port or (443 if self.scheme == "https" else 80))
        if self.port != "*" and actual != self.port:
            return False
        path = parts.path or "/"
        if parts.query or parts.fragment:
            return False
        if self.path.endswith("*"):
            return fnmatch.fnmatchcase(path, self.path) and path.startswith(self.path[:-1])
        return path == self.path


@dataclass(frozen=True, slots=True)
class Module:
    """How to probe: ``options_for(target)`` gives the ``ProbeOptions`` of one probe."""

    name: str
    settings: Mapping[str, Any]
    target: str | None = None
    command: tuple[str, ...] | None = None
    total_timeout: float | None = None

    @property
    def fixed(self) -> bool:
        return self.target is not None or self.command is not None

    def options_for(self, target: str | None) -> ProbeOptions:
        s = dict(self.settings)
        headers = dict(s.pop("headers", {}))
        env_name = s.pop("bearer_token_env", None)
        if env_name is not None:
            token = os.environ.get(env_name)
            if not token:
                raise ConfigError(f"modules.{self.name}.bearer_token_env: ${env_name} is not set")
            headers["Authorization"] = f"Bearer {token}"
        args = s.pop("args", {})
        where: str | tuple[str, ...] = self.command if self.command is not None else (self.target or target or "")
        return ProbeOptions(where, headers=headers, call_args=args, **s)


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    modules: Mapping[str, Module]
    allowed_targets: tuple[TargetPattern, ...] = ()
    allow_any_target: bool = False
    listen: str = "127.0.0.1:9474"
    max_concurrency: int = 4
    max_pending: int = 32
    timeout_offset: float = 0.5
    source: str = field(default="<memory>")

    def allowed(self, url: str) -> bool:
        if self.allow_any_target:
            return True
        return any(p.matches(url) for p in self.allowed_targets)


def _check_keys(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


def _typed(where: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    return value


def _module(name: str, raw: Any) -> Module:
    where = f"modules.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    _check_keys(where, raw, _MODULE_KEYS)
    settings: dict[str, Any] = {}
    for key in ("timeout",):
        if key in raw:
            settings[key] = float(_typed(f"{where}.{key}", raw[key], (int, float), "seconds"))
    for key in ("era", "transport", "call", "expect_tools_hash", "bearer_token_env", "cafile"):
        if key in raw:
            settings[key] = _typed(f"{where}.{key}", raw[key], str, "a string")
    for key in ("auth_challenge", "insecure"):
        if key in raw:
            settings[key] = _typed(f"{where}.{key}", raw[key], bool, "true or false")
    for key in ("headers", "env"):
        if key in raw:
            table = _typed(f"{where}.{key}", raw[key], dict, "a table of strings")
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
                raise ConfigError(f"{where}.{key}: every name and value is a string")
            settings[key] = dict(table)
    if "args" in raw:
        settings["args"] = dict(_typed(f"{where}.args", raw["args"], dict, "a table"))
    target = raw.get("target")
    command = raw.get("command")
    if target is not None and command is not None:
        raise ConfigError(f"{where}: give target or command, not both")
    if target is not None:
        _typed(f"{where}.target", target, str, "a URL")
    if command is not None and (not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command)):
        raise ConfigError(f"{where}.command: expected a list of strings")
    total = raw.get("total_timeout")
    if total is not None:
        total = float(_typed(f"{where}.total_timeout", total, (int, float), "seconds"))
    module = Module(name, settings, target, tuple(command) if command is not None else None, total)
    try:  # every option checked now, not at the first scrape
        check = dict(settings, bearer_token_env=None) if "bearer_token_env" in settings else settings
        Module(name, {k: v for k, v in check.items() if v is not None}, target, module.command).options_for(
            target or "http://127.0.0.1/"
        )
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return module


def parse_config(data: Mapping[str, Any], source: str = "<memory>") -> ExporterConfig:
    _check_keys("top level", data, {"exporter", "modules"})
    exp = data.get("exporter", {})
    if not isinstance(exp, dict):
        raise ConfigError("exporter: expected a table")
    _check_keys("exporter", exp, _EXPORTER_KEYS)
    raw_modules = data.get("modules", {})
    if not isinstance(raw_modules, dict) or not raw_modules:
        raise ConfigError("modules: define at least one module (e.g. [modules.default])")
    modules = {name: _module(name, raw) for name, raw in raw_modules.items()}
    patterns = exp.get("allowed_targets", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError("exporter.allowed_targets: expected a list of URL patterns")
    conf = ExporterConfig(
        modules=modules,
        allowed_targets=tuple(TargetPattern.parse(p) for p in patterns),
        allow_any_target=_typed("exporter.allow_any_target", exp.get("allow_any_target", False), bool, "true or false"),
        listen=_typed("exporter.listen", exp.get("listen", "127.0.0.1:9474"), str, "host:port"),
        max_concurrency=_typed("exporter.max_concurrency", exp.get("max_concurrency", 4), int, "an integer"),
        max_pending=_typed("exporter.max_pending", exp.get("max_pending", 32), int, "an integer"),
        timeout_offset=float(_typed("exporter.timeout_offset", exp.get("timeout_offset", 0.5), (int, float), "seconds")),
        source=source,
    )
    if not 1 <= conf.max_concurrency <= 256:
        raise ConfigError("exporter.max_concurrency: between 1 and 256")
    if not 0 <= conf.max_pending <= 10_000:
        raise ConfigError("exporter.max_pending: between 0 and 10000")
    return conf


def load_config(path: str | os.PathLike[str]) -> ExporterConfig:
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        import importlib

        try:
            yaml: Any = importlib.import_module("yaml")
        except ImportError:
            raise ConfigError(f"{p}: a YAML configuration needs PyYAML (pip install pyyaml), or write it in TOML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    else:
        import tomllib

        try:
            data = tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a table at the top level")
    return parse_config(data, str(p))
