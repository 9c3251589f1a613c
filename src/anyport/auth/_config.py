"""An ``AuthChain`` from plain data: a TOML or JSON file (``anyport serve --auth-config``), the
``anyport serve`` flags and ``ANYPORT_AUTH_*`` variables (the CLI builds the same mapping).

```toml
resource = "https://mcp.example.com/mcp"          # this server's canonical URI (the token audience)
authorization_servers = ["https://login.example.com"]
scopes_supported = ["notes.read", "notes.write"]
required_scopes = []                              # needed for any request
implied_scopes = { "notes.admin" = ["notes.read", "notes.write"] }   # scope hierarchies (A-29)
order = ["mtls", "api_keys", "jwt", "introspection"]   # the default: every configured method, this order

[jwt]            # issuer, jwks_url (default: the issuer's metadata jwks_uri is not guessed), algorithms, leeway
issuer = "https://login.example.com"
jwks_url = "https://login.example.com/jwks"

[introspection]  # url, client_id, client_secret or client_secret_env, issuer, cache_ttl
[api_keys]       # file, env, reload_interval, header
[mtls]           # native, header, trusted_proxies, identity, scopes = {pattern = [scopes]}, default_scopes
[dpop]           # window
```
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anyport.auth._principal import Authenticator

__all__ = ["auth_from_config", "load_auth_file"]

_TOP = {
    "resource", "authorization_servers", "scopes_supported", "required_scopes", "resource_name", "order",
    "jwt", "introspection", "api_keys", "mtls", "dpop", "implied_scopes",
}
_SECTIONS: dict[str, set[str]] = {
    "jwt": {"issuer", "jwks_url", "audience", "algorithms", "leeway", "refresh_interval", "max_age", "required_claims"},
    "introspection": {"url", "client_id", "client_secret", "client_secret_env", "issuer", "audience", "require_audience",
                      "cache_ttl", "negative_ttl"},
    "api_keys": {"file", "env", "reload_interval", "header"},
    "mtls": {"native", "header", "trusted_proxies", "identity", "scopes", "default_scopes", "verify_header"},
    "dpop": {"window", "algorithms"},
}
_DEFAULT_ORDER = ("mtls", "api_keys", "jwt", "introspection")


def load_auth_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping of a ``.toml`` or ``.json`` file (an ``[auth]`` table of a TOML file also works)."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read the auth config {file}: {exc}") from exc
    try:
        data: Any = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{file}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a table")
    auth = data.get("auth", data)
    if not isinstance(auth, dict):
        raise ValueError(f"{file}: [auth] must be a table")
    base = file.parent
    keys = auth.get("api_keys")
    if isinstance(keys, dict) and isinstance(keys.get("file"), str) and not os.path.isabs(keys["file"]):
        keys["file"] = str(base / keys["file"])
    return auth


def _section(config: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    raw = config.get(name)
    if raw is None or raw is False:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"auth config: {name} must be a table")
    unknown = set(raw) - _SECTIONS[name]
    if unknown:
        raise ValueError(f"auth config: unknown key(s) in {name}: {', '.join(sorted(unknown))}")
    return dict(raw)


def auth_from_config(config: Mapping[str, Any]) -> Any:
    """The ``AuthChain`` a mapping describes (see the module doc); ``ValueError`` naming what is wrong."""
    from anyport.auth._chain import AuthChain

    unknown = set(config) - _TOP
    if unknown:
        raise ValueError(f"auth config: unknown key(s): {', '.join(sorted(unknown))}")
    resource = config.get("resource")
    if not isinstance(resource, str) or not resource:
        raise ValueError("auth config: resource (this server's URL as clients use it, e.g. https://host/mcp) is required")
    order = config.get("order", _DEFAULT_ORDER)
    if not isinstance(order, (list, tuple)) or any(o not in _DEFAULT_ORDER for o in order):
        raise ValueError(f"auth config: order lists some of {', '.join(_DEFAULT_ORDER)}")
    authenticators: list[Authenticator] = []
    for name in order:
        section = _section(config, name)
        if section is not None:
            authenticators.append(_BUILDERS[name](section))
    if not authenticators:
        raise ValueError("auth config: configure at least one of jwt, introspection, api_keys, mtls")
    dpop = _section(config, "dpop")
    verifier = None
    if dpop:
        from anyport.auth._dpop import DPoPVerifier

        verifier = DPoPVerifier(**dpop)
    return AuthChain(
        authenticators, resource=resource, authorization_servers=_strings(config, "authorization_servers"),
        scopes_supported=_strings(config, "scopes_supported"), required_scopes=_strings(config, "required_scopes"),
        resource_name=config.get("resource_name"), dpop=verifier, implied_scopes=_implied(config.get("implied_scopes")),
    )


def _implied(value: Any) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in value.values()
    ):
        raise ValueError("auth config: implied_scopes maps a scope to the list of scopes it includes")
    return {str(k): list(v) for k, v in value.items()}


def _strings(config: Mapping[str, Any], key: str) -> list[str]:
    value = config.get(key) or []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"auth config: {key} must be a list of strings")
    return value


def _jwt(section: dict[str, Any]) -> Authenticator:
    from anyport.auth._jwt import JWTVerifier

    if "issuer" not in section or "jwks_url" not in section:
        raise ValueError("auth config: jwt needs issuer and jwks_url")
    return JWTVerifier(**section)


def _introspection(section: dict[str, Any]) -> Authenticator:
    from anyport.auth._introspection import IntrospectionVerifier

    env = section.pop("client_secret_env", None)
    if env:
        section["client_secret"] = os.environ.get(env)
        if section["client_secret"] is None:
            raise ValueError(f"auth config: introspection.client_secret_env names ${env}, which is not set")
    if "url" not in section:
        raise ValueError("auth config: introspection needs url")
    return IntrospectionVerifier(section.pop("url"), **section)


def _api_keys(section: dict[str, Any]) -> Authenticator:
    from anyport.auth._apikeys import APIKeys

    if not section.get("file") and not section.get("env"):
        raise ValueError("auth config: api_keys needs file and/or env")
    return APIKeys(path=section.pop("file", None), **section)


def _mtls(section: dict[str, Any]) -> Authenticator:
    from anyport.auth._mtls import ClientCertificates

    return ClientCertificates(**section)


_BUILDERS = {"jwt": _jwt, "introspection": _introspection, "api_keys": _api_keys, "mtls": _mtls}
