"""Finding the authorization server of an MCP server.

1. Protected Resource Metadata (RFC 9728, A-05..A-09): the URL of the 401's ``resource_metadata``
   if there is one, else the path-inserted well-known URL, else the root one (A-08). Its
   ``resource`` must name the server we talk to (A-09), else we stop before any authorization.
2. Authorization-server metadata (A-11..A-13): RFC 8414 then OpenID Connect Discovery, in the
   path-aware order of A-12; a document whose ``issuer`` is not the issuer we asked about is
   discarded (A-13).
3. No PRM at all: the 2025-03-26 rules (A-04): the metadata of the server's origin, else the
   default ``/authorize``, ``/token``, ``/register`` there.

Every fetch is one bounded GET (timeout, size cap, no redirects), and only http(s) URLs are
fetched; endpoints must be https unless they are on a loopback host (A-21).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from anyport._exceptions import OAuthDiscoveryError
from anyport.oauth._urls import Challenge, as_metadata_urls, canonical_resource, prm_urls, resource_matches

if TYPE_CHECKING:
    import httpx

__all__ = ["AuthServer", "Discovery", "check_endpoint", "discover", "fetch_json", "protected_resource"]

MAX_METADATA_BYTES = 1 << 20
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOOPBACK or host.endswith(".localhost")


def check_endpoint(url: object, what: str) -> str:
    """An endpoint from metadata: an absolute https URL, or http on a loopback host (A-21)."""
    if not isinstance(url, str) or not url:
        raise OAuthDiscoveryError(f"the authorization server metadata has no usable {what}")
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and is_loopback(url)):
        return url
    raise OAuthDiscoveryError(f"refusing the {what} {url!r}: authorization endpoints must use https (A-21)")


async def fetch_json(http: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    """GET ``url``: its JSON object, or None when it answers anything but 200 + a JSON object."""
    import httpx

    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return None
    try:
        async with http.stream("GET", url, headers={"accept": "application/json"}) as resp:
            if resp.status_code != 200:
                return None
            body = b""
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_METADATA_BYTES:
                    return None
    except httpx.HTTPError as exc:
        raise OAuthDiscoveryError(f"cannot fetch {url}: {exc!r}") from exc
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@dataclass
class AuthServer:
    """An authorization server: the issuer recorded for it (A-22) and its metadata."""

    issuer: str
    metadata: dict[str, Any]
    #: True when no metadata was found and the 2025-03-26 default endpoints are assumed (A-04).
    assumed: bool = False

    def endpoint(self, name: str) -> str:
        return check_endpoint(self.metadata.get(name), name)

    def supports(self, field_name: str, value: str) -> bool:
        listed = self.metadata.get(field_name)
        return isinstance(listed, list) and value in listed

    @property
    def scopes_supported(self) -> tuple[str, ...] | None:
        listed = self.metadata.get("scopes_supported")
        return tuple(s for s in listed if isinstance(s, str)) if isinstance(listed, list) else None


@dataclass
class Discovery:
    """What discovery found for one MCP server."""

    #: The resource identifier for ``resource=`` (A-23): the PRM's, exactly as published.
    resource: str
    server: AuthServer
    #: The PRM's ``scopes_supported`` (A-26), None when absent.
    scopes_supported: tuple[str, ...] | None = None
    prm: dict[str, Any] | None = None
    challenge_scopes: tuple[str, ...] | None = None
    other_issuers: list[str] = field(default_factory=list)


async def discover(
    http: httpx.AsyncClient, server_url: str, challenge: Challenge | None, *, issuer: str | None = None
) -> Discovery:
    """PRM, then the authorization server's metadata. ``issuer`` picks one of several (A-10)."""
    prm, prm_url = await protected_resource(http, server_url, challenge)
    scopes = challenge.scopes if challenge is not None else None
    if prm is None:
        server = await _legacy_server(http, server_url)
        return Discovery(canonical_resource(server_url), server, None, None, scopes)
    resource = prm.get("resource")
    if not isinstance(resource, str) or not resource_matches(resource, server_url):
        raise OAuthDiscoveryError(
            f"the protected resource metadata at {prm_url} is for {resource!r}, not for {server_url}: "
            "refusing to authorize (A-09)"
        )
    servers = [s for s in prm.get("authorization_servers") or [] if isinstance(s, str) and s]
    if not servers:
        raise OAuthDiscoveryError(f"the protected resource metadata at {prm_url} names no authorization server (A-05)")
    chosen = issuer if issuer is not None and issuer in servers else servers[0]
    metadata = await authorization_server(http, chosen)
    if metadata is None:
        raise OAuthDiscoveryError(
            f"no authorization server metadata for {chosen} (tried {', '.join(as_metadata_urls(chosen))})"
        )
    listed = prm.get("scopes_supported")
    prm_scopes = tuple(s for s in listed if isinstance(s, str)) if isinstance(listed, list) else None
    return Discovery(resource, metadata, prm_scopes, prm, scopes, [s for s in servers if s != chosen])


async def protected_resource(
    http: httpx.AsyncClient, server_url: str, challenge: Challenge | None
) -> tuple[dict[str, Any] | None, str]:
    """A-08: the challenge's ``resource_metadata``, else the well-known URLs in order."""
    candidates = prm_urls(server_url)
    hinted = challenge.params.get("resource_metadata") if challenge is not None else None
    if hinted:
        candidates = [hinted, *(u for u in candidates if u != hinted)]
    for url in candidates:
        doc = await fetch_json(http, url)
        if doc is not None:
            return doc, url
    return None, candidates[0]


async def authorization_server(http: httpx.AsyncClient, issuer: str) -> AuthServer | None:
    """A-12/A-13: the first metadata document in probe order whose ``issuer`` is ``issuer``."""
    mismatched: list[str] = []
    for url in as_metadata_urls(issuer):
        doc = await fetch_json(http, url)
        if doc is None:
            continue
        got = doc.get("issuer")
        # RFC 8414 §3.3: identical; one trailing slash of difference is forgiven (a common URL-library artefact).
        if isinstance(got, str) and (got == issuer or got.rstrip("/") == issuer.rstrip("/")):
            return AuthServer(got, doc)
        mismatched.append(f"{url} says issuer {got!r}")
    if mismatched:
        raise OAuthDiscoveryError(
            f"authorization server metadata for {issuer} names another issuer ({'; '.join(mismatched)}): "
            "discarded (A-13)"
        )
    return None


async def _legacy_server(http: httpx.AsyncClient, server_url: str) -> AuthServer:
    """A-04 (2025-03-26): the authorization base URL is the server's origin."""
    parts = urlsplit(server_url)
    base = f"{parts.scheme}://{parts.netloc}"
    found = await authorization_server(http, base)
    if found is not None:
        return found
    defaults = {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "registration_endpoint": f"{base}/register",
        "code_challenge_methods_supported": ["S256"],
    }
    return AuthServer(base, defaults, assumed=True)
