"""``anyport serve`` authentication flags (``ANYPORT_*`` variables, ``--auth-config FILE``) and
``anyport keys new``. ``anyport.auth`` is imported only when one of them is used."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["AUTH_OPTIONS", "auth_chain", "auth_options", "keys"]

F = TypeVar("F", bound=Callable[..., Any])

#: The ``serve`` parameters this module adds (all of them only mean something with --http).
AUTH_OPTIONS = (
    "auth_config", "resource_url", "authorization_server", "required_scope", "scope", "jwt_issuer",
    "jwks_url", "introspection_url", "introspection_client_id", "introspection_client_secret", "api_keys",
    "api_keys_env", "client_ca", "client_cert", "client_cert_header", "hide_unauthorized",
)


def auth_options(fn: F) -> F:
    """The authentication options of ``anyport serve`` (docs/authentication.md)."""
    options = [
        click.option("--auth-config", type=click.Path(exists=True, dir_okay=False), envvar="ANYPORT_AUTH_CONFIG",
                     help="HTTP auth: a TOML/JSON file describing the authenticators (flags override it)."),
        click.option("--resource-url", envvar="ANYPORT_RESOURCE_URL", metavar="URL",
                     help="HTTP auth: this server's URL as clients use it (the token audience, RFC 8707); "
                          "default: built from --host/--port/--path."),
        click.option("--authorization-server", "authorization_server", multiple=True, envvar="ANYPORT_AUTHORIZATION_SERVERS",
                     metavar="ISSUER", help="HTTP auth: an authorization server clients get tokens from (repeatable)."),
        click.option("--required-scope", "required_scope", multiple=True, envvar="ANYPORT_REQUIRED_SCOPES",
                     help="HTTP auth: a scope every request needs (repeatable)."),
        click.option("--scope", "scope", multiple=True, envvar="ANYPORT_SCOPES_SUPPORTED",
                     help="HTTP auth: a scope published in the protected-resource metadata (repeatable)."),
        click.option("--jwt-issuer", envvar="ANYPORT_JWT_ISSUER", metavar="ISSUER", help="HTTP auth: accept JWTs of this issuer."),
        click.option("--jwks-url", envvar="ANYPORT_JWKS_URL", metavar="URL", help="HTTP auth: the issuer's JWKS."),
        click.option("--introspection-url", envvar="ANYPORT_INTROSPECTION_URL", metavar="URL",
                     help="HTTP auth: introspect opaque tokens there (RFC 7662)."),
        click.option("--introspection-client-id", envvar="ANYPORT_INTROSPECTION_CLIENT_ID", help="HTTP auth: this server's client id at the AS."),
        click.option("--introspection-client-secret", envvar="ANYPORT_INTROSPECTION_CLIENT_SECRET",
                     help="HTTP auth: its secret (prefer the variable to the flag)."),
        click.option("--api-keys", envvar="ANYPORT_API_KEYS_FILE", type=click.Path(dir_okay=False), metavar="FILE",
                     help="HTTP auth: API keys file (lines from 'anyport keys new'); re-read when it changes."),
        click.option("--api-keys-env", envvar="ANYPORT_API_KEYS_ENV", metavar="NAME",
                     help="HTTP auth: an environment variable holding API key lines (';'-separated)."),
        click.option("--client-ca", type=click.Path(exists=True, dir_okay=False), envvar="ANYPORT_CLIENT_CA",
                     help="HTTP auth (with --certfile): verify client certificates against this CA bundle (mTLS)."),
        click.option("--client-cert", type=click.Choice(["required", "optional"]), default="required", show_default=True,
                     envvar="ANYPORT_CLIENT_CERT", help="HTTP auth: with --client-ca, whether a certificate is required at the handshake."),
        click.option("--client-cert-header", envvar="ANYPORT_CLIENT_CERT_HEADER", metavar="NAME",
                     help="HTTP auth: a proxy's client-certificate header (x-forwarded-client-cert, or nginx's), "
                          "believed only from --trusted-proxy peers."),
        click.option("--hide-unauthorized", is_flag=True, envvar="ANYPORT_HIDE_UNAUTHORIZED",
                     help="HTTP auth: list only the tools, resources and prompts the caller has the scopes for."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def auth_chain(
    flags: dict[str, Any], *, host: str, port: int, path: str, tls: bool, trusted_proxies: tuple[str, ...],
) -> Any:
    """The ``AuthChain`` the flags (and ``--auth-config``) describe, or None when they describe none."""
    given = {k: v for k, v in flags.items() if v not in (None, (), False) and k not in ("client_cert", "hide_unauthorized")}
    if not given:
        return None
    from anyport.auth import auth_from_config
    from anyport.auth._config import load_auth_file

    notice = ""
    try:
        config: dict[str, Any] = load_auth_file(flags["auth_config"]) if flags.get("auth_config") else {}
        if flags.get("resource_url"):
            config["resource"] = flags["resource_url"]
        elif "resource" not in config:
            shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
            config["resource"] = f"{'https' if tls else 'http'}://{shown}:{port}{path}"
            notice = (f"anyport: auth: the resource URL (token audience) is {config['resource']}; "
                      "set --resource-url to the URL clients use")
        for flag, key in (("authorization_server", "authorization_servers"), ("required_scope", "required_scopes"),
                          ("scope", "scopes_supported")):
            if flags.get(flag):
                config[key] = list(flags[flag])
        if flags.get("jwks_url") or flags.get("jwt_issuer"):
            if not (flags.get("jwks_url") and flags.get("jwt_issuer")):
                raise ValueError("--jwt-issuer and --jwks-url go together")
            config["jwt"] = {**config.get("jwt", {}), "issuer": flags["jwt_issuer"], "jwks_url": flags["jwks_url"]}
        if flags.get("introspection_url"):
            config["introspection"] = {
                **config.get("introspection", {}), "url": flags["introspection_url"],
                "client_id": flags.get("introspection_client_id"), "client_secret": flags.get("introspection_client_secret"),
            }
        if flags.get("api_keys") or flags.get("api_keys_env"):
            section = {**config.get("api_keys", {})}
            if flags.get("api_keys"):
                section["file"] = flags["api_keys"]
            if flags.get("api_keys_env"):
                section["env"] = flags["api_keys_env"]
            config["api_keys"] = section
        if flags.get("client_ca") or flags.get("client_cert_header"):
            section = {**config.get("mtls", {}), "native": bool(flags.get("client_ca"))}
            if flags.get("client_cert_header"):
                section["header"] = flags["client_cert_header"]
                section["trusted_proxies"] = list(trusted_proxies)
            config["mtls"] = section
        if config.get("authorization_servers") is None and flags.get("jwt_issuer"):
            config["authorization_servers"] = [flags["jwt_issuer"]]
        chain = auth_from_config(config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if notice:  # only once the configuration is known to be good: an error stays one line
        click.echo(notice, err=True)
    return chain


@click.group()
def keys() -> None:
    """API keys for 'anyport serve --api-keys FILE'."""


@keys.command("new")
@click.option("--name", required=True, help="Who or what holds the key (one word); it becomes the principal's subject.")
@click.option("--scope", "scopes", multiple=True, help="A scope the key grants (repeatable).")
@click.option("--expires-in", type=click.FloatRange(min=0, min_open=True), default=None, metavar="DAYS",
              help="Days until the key expires (default: never).")
def new(name: str, scopes: tuple[str, ...], expires_in: float | None) -> None:
    """Print a new API key (once: it is stored nowhere) and the line to add to the keys file."""
    from anyport.auth import new_api_key

    try:
        key, entry = new_api_key(name, scopes, None if expires_in is None else time.time() + expires_in * 86400)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(key)
    click.echo(entry.line())
    click.echo(
        "anyport: line 1 is the key: give it to its holder now, it is not shown again (clients send it as\n"
        "anyport: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'). Line 2 goes into the --api-keys file;\n"
        "anyport: the server re-reads the file when it changes (delete the line to revoke the key).",
        err=True,
    )
