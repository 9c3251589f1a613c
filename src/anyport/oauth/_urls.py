"""Pure helpers: canonical resource URIs, well-known URLs, ``WWW-Authenticate`` challenges, PKCE.

No I/O here, so each rule is tested alone (tests/oauth/test_urls.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "Challenge",
    "as_metadata_urls",
    "canonical_resource",
    "origin_of",
    "parse_challenges",
    "pkce_pair",
    "prm_urls",
    "resource_matches",
    "same_origin",
]


def canonical_resource(url: str) -> str:
    """The canonical URI of an MCP server (A-24): lowercase scheme and host, no fragment, no query,
    no trailing slash (unless the path is only ``/``... which is then dropped as well)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    netloc = parts.netloc.lower()
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, path, "", ""))


def origin_of(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` with the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def same_origin(a: str, b: str) -> bool:
    return origin_of(a) == origin_of(b)


def resource_matches(prm_resource: str, server_url: str) -> bool:
    """A-09: the PRM ``resource`` identifies the server we talk to: the same origin, and its path
    equal to the server's path or a whole-segment prefix of it (a root PRM names the whole host)."""
    try:
        prm = canonical_resource(prm_resource)
        ours = canonical_resource(server_url)
    except ValueError:
        return False
    if not same_origin(prm, ours):
        return False
    prm_path, our_path = urlsplit(prm).path, urlsplit(ours).path
    return our_path == prm_path or our_path.startswith(prm_path + "/")


def prm_urls(server_url: str) -> list[str]:
    """A-08: the well-known Protected Resource Metadata URLs, path-inserted first, then the root."""
    parts = urlsplit(server_url)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    urls = [f"{base}/.well-known/oauth-protected-resource{path}"] if path else []
    urls.append(f"{base}/.well-known/oauth-protected-resource")
    return urls


def as_metadata_urls(issuer: str) -> list[str]:
    """A-12: where an issuer's metadata is looked for, in order (RFC 8414, then OIDC Discovery)."""
    parts = urlsplit(issuer)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if path:
        return [
            f"{base}/.well-known/oauth-authorization-server{path}",
            f"{base}/.well-known/openid-configuration{path}",
            f"{base}{path}/.well-known/openid-configuration",
        ]
    return [f"{base}/.well-known/oauth-authorization-server", f"{base}/.well-known/openid-configuration"]


@dataclass
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: its scheme and auth-params (names lowercased)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def scopes(self) -> tuple[str, ...] | None:
        scope = self.params.get("scope")
        return tuple(scope.split()) if scope is not None else None


_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_ITEM = re.compile(rf'\s*(?P<name>{_TOKEN})(?:\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"|[^\s,"]+))?\s*(?P<comma>,)?')


def parse_challenges(header: str | None) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` (RFC 9110 §11.6.1): ``Bearer a="b", c=d, DPoP e="f"`` -> 2 challenges."""
    out: list[Challenge] = []
    if not header:
        return out
    pos = 0
    current: Challenge | None = None
    while pos < len(header):
        m = _ITEM.match(header, pos)
        if m is None or m.end() == pos:
            pos += 1  # skip what we cannot read (stray characters)
            continue
        pos = m.end()
        name, value = m.group("name"), m.group("value")
        if value is None:  # a bare token starts a new challenge: its scheme
            current = Challenge(name)
            out.append(current)
        elif current is not None:
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            current.params[name.lower()] = value
    return out


def pkce_pair() -> tuple[str, str]:
    """``(code_verifier, code_challenge)`` for PKCE S256 (A-20, RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(48)  # 64 characters of [A-Za-z0-9_-]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
