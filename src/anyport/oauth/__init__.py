"""The client side of MCP authorization (OAuth 2.1): ``Client(url, auth=anyport.oauth.OAuth())``.

Each class is an ``httpx.Auth``: it adds the access token to every request the HTTP transports
make to the server, and on a 401 finds the authorization server (RFC 9728, RFC 8414 / OIDC
Discovery), registers (pre-registered, CIMD, DCR), obtains a token (PKCE S256, ``resource``,
``iss`` checks) and retries; 403 ``insufficient_scope`` steps up a bounded number of times.

- ``OAuth``: authorization code for people (``BrowserAuthorizer``, the default) or tests
  (``authorize="follow"`` or a callback: headless).
- ``ClientCredentials``, ``WorkloadIdentity``, ``EnterpriseAuth``: grants without a person.
- ``FileTokenStore`` (default), ``MemoryTokenStore``, or any ``TokenStore``.
- ``login(url)``: authorize now (what ``anyport call URL --login`` runs).

Errors are ``anyport.AuthError`` subclasses; see docs/oauth-client.md. This package loads httpx
and joserfc; ``import anyport`` does not load it.
"""

from __future__ import annotations

from typing import Any

from anyport.oauth._authcode import OAuth
from anyport.oauth._authorizers import Authorizer, BrowserAuthorizer, HeadlessAuthorizer, follow_redirect
from anyport.oauth._dpop import DPoPKey
from anyport.oauth._flow import OAuthFlow
from anyport.oauth._machine import ClientCredentials, EnterpriseAuth, WorkloadIdentity
from anyport.oauth._store import FileTokenStore, MemoryTokenStore, TokenStore, default_store_path
from anyport.oauth._tokens import Tokens

__all__ = [
    "Authorizer",
    "BrowserAuthorizer",
    "ClientCredentials",
    "DPoPKey",
    "EnterpriseAuth",
    "FileTokenStore",
    "HeadlessAuthorizer",
    "MemoryTokenStore",
    "OAuth",
    "OAuthFlow",
    "TokenStore",
    "Tokens",
    "WorkloadIdentity",
    "default_store_path",
    "follow_redirect",
    "login",
]


async def login(url: str, *, auth: OAuthFlow | None = None, **options: Any) -> Tokens:
    """Authorize for the MCP server at ``url`` now and keep the tokens in the store.

    ``auth`` defaults to ``OAuth(**options)`` (browser mode, ``FileTokenStore``), so a later
    ``Client(url, auth=OAuth())`` in any process uses the stored token without asking again.
    Raises an ``anyport.AuthError`` subclass when authorization fails.
    """
    flow = auth if auth is not None else OAuth(**options)
    return await flow.login(url)
