"""Who the client is at an authorization server, in the order of A-14.

1. Pre-registered credentials (A-18), when given.
2. A Client ID Metadata Document URL (A-15), when the server says
   ``client_id_metadata_document_supported``.
3. Dynamic Client Registration (RFC 7591, A-17), when it lists a ``registration_endpoint``:
   ``application_type`` ``native`` for loopback redirects, else ``web``; ``refresh_token`` among the
   grant types (A-29). What it returns is stored under the issuer (A-19) and reused while its
   redirect URIs still hold ours.
4. Otherwise ``OAuthRegistrationError``: the user must register a client and pass its id.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from anyport._exceptions import OAuthRegistrationError
from anyport.oauth._discovery import AuthServer, check_endpoint, is_loopback
from anyport.oauth._tokens import ClientIdentity

if TYPE_CHECKING:
    import httpx

    from anyport.oauth._store import TokenStore

__all__ = ["auth_method_for", "known_identity", "register"]


def auth_method_for(server: AuthServer, has_secret: bool, wanted: str | None = None) -> str:
    """The token-endpoint authentication method: ``wanted``, else one the server lists."""
    if wanted is not None:
        return wanted
    listed = server.metadata.get("token_endpoint_auth_methods_supported")
    supported = [m for m in listed if isinstance(m, str)] if isinstance(listed, list) else None
    if not has_secret:
        return "none"
    if supported is None or "client_secret_basic" in supported:
        return "client_secret_basic"  # RFC 8414 §2: the default when the list is absent
    if "client_secret_post" in supported:
        return "client_secret_post"
    return "client_secret_basic"


async def known_identity(
    server: AuthServer,
    store: TokenStore,
    redirect_uri: str | None,
    *,
    client_id: str | None,
    client_secret: str | None,
    auth_method: str | None,
    client_metadata_url: str | None,
    client_issuer: str | None = None,
) -> ClientIdentity | None:
    """Steps 1-2 of A-14 and a stored registration (valid for ``redirect_uri`` when one is given:
    a refresh needs none); None when a new registration is needed."""
    if client_id is not None and client_issuer is not None and client_issuer != server.issuer:
        raise OAuthRegistrationError(
            f"the server's authorization server is {server.issuer}, but client_id {client_id!r} was registered "
            f"with {client_issuer}: not sending it there (A-19); register with {server.issuer} or fix client_issuer"
        )
    uris = [redirect_uri] if redirect_uri is not None else []
    if client_id is not None:
        method = auth_method_for(server, client_secret is not None, auth_method)
        return ClientIdentity(client_id, client_secret, method, uris, "pre-registered")
    if client_metadata_url is not None and server.metadata.get("client_id_metadata_document_supported") is True:
        return ClientIdentity(client_metadata_url, None, "none", uris, "cimd")
    stored = await store.get(f"client {server.issuer}")
    identity = ClientIdentity.from_dict(stored) if stored is not None else None
    if identity is not None and (redirect_uri is None or redirect_uri in identity.redirect_uris):
        return identity
    return None


async def register(
    http: httpx.AsyncClient,
    server: AuthServer,
    store: TokenStore,
    redirect_uri: str,
    *,
    client_id: str | None,
    client_secret: str | None,
    auth_method: str | None,
    client_metadata_url: str | None,
    client_name: str,
    client_issuer: str | None = None,
) -> ClientIdentity:
    """The client identity for ``server`` (see the module docstring for the order).

    ``client_issuer``: the issuer the pre-registered ``client_id`` belongs to; another issuer is
    refused rather than shown those credentials (A-19).
    """
    known = await known_identity(
        server, store, redirect_uri, client_id=client_id, client_secret=client_secret, auth_method=auth_method,
        client_metadata_url=client_metadata_url, client_issuer=client_issuer,
    )
    if known is not None:
        return known
    key = f"client {server.issuer}"
    endpoint = server.metadata.get("registration_endpoint")
    if not endpoint:
        raise OAuthRegistrationError(
            f"{server.issuer} offers no dynamic client registration"
            + (" and no client ID metadata documents" if client_metadata_url is None else "")
            + ": register a client there and pass its client_id (and client_secret)"
        )
    identity = await _dcr(http, server, check_endpoint(endpoint, "registration_endpoint"), redirect_uri, client_name)
    await store.set(key, identity.to_dict())
    return identity


async def _dcr(http: httpx.AsyncClient, server: AuthServer, endpoint: str, redirect_uri: str, name: str) -> ClientIdentity:
    import httpx

    listed = server.metadata.get("token_endpoint_auth_methods_supported")
    supported = [m for m in listed if isinstance(m, str)] if isinstance(listed, list) else None
    if supported is None or "none" in supported:
        wanted = "none"
    elif "client_secret_basic" in supported:
        wanted = "client_secret_basic"
    else:
        wanted = "client_secret_post" if "client_secret_post" in supported else supported[0]
    body = {
        "client_name": name,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": wanted,
        "application_type": "native" if is_loopback(redirect_uri) else "web",
    }
    try:
        resp = await http.post(endpoint, json=body, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise OAuthRegistrationError(f"dynamic client registration at {endpoint} failed: {exc!r}") from exc
    try:
        data = json.loads(resp.content[: 1 << 20])
    except ValueError:
        data = {}
    if resp.status_code not in (200, 201) or not isinstance(data, dict) or not isinstance(data.get("client_id"), str):
        detail = data.get("error_description") or data.get("error") if isinstance(data, dict) else None
        raise OAuthRegistrationError(
            f"{server.issuer} refused dynamic client registration (HTTP {resp.status_code}"
            + (f": {detail})" if detail else ")")
            + "; register a client there and pass its client_id"
        )
    secret = data.get("client_secret") if isinstance(data.get("client_secret"), str) else None
    method = data.get("token_endpoint_auth_method")
    if not isinstance(method, str):
        method = wanted  # not echoed back: what we asked for
    uris = data.get("redirect_uris")
    redirect_uris = [u for u in uris if isinstance(u, str)] if isinstance(uris, list) and uris else [redirect_uri]
    return ClientIdentity(data["client_id"], secret, method, redirect_uris, "dcr")
