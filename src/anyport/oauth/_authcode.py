"""``OAuth``: the authorization-code grant with PKCE, for people (browser) and tests (headless).

One grant (``_obtain``):

1. the client identity (``_register``: pre-registered, CIMD, DCR; A-14);
2. PKCE S256 (A-20: refused when the metadata does not list S256), a fresh ``state`` (A-21),
   ``resource`` (A-23), the selected scope (A-26/A-28, plus ``offline_access`` when the server lists
   it, A-29);
3. the ``Authorizer`` returns the redirect; the response is checked in the order of A-22: ``iss``
   first (exact string comparison with the recorded issuer; a missing ``iss`` refused when the
   server advertises it; on a mismatch even an ``error`` is ignored), then ``state``, then
   ``error``, then the code;
4. the code is exchanged with ``code_verifier``, ``redirect_uri`` and ``resource`` (A-23).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from anyport._exceptions import OAuthDiscoveryError, OAuthResponseError
from anyport.oauth._authorizers import AuthorizeCallback, Authorizer, BrowserAuthorizer, HeadlessAuthorizer
from anyport.oauth._discovery import is_loopback
from anyport.oauth._flow import OAuthFlow, ServerState
from anyport.oauth._register import known_identity, register
from anyport.oauth._tokens import ClientIdentity, Tokens, request_tokens
from anyport.oauth._urls import pkce_pair

if TYPE_CHECKING:
    import httpx

    from anyport.oauth._discovery import AuthServer
    from anyport.oauth._store import TokenStore

__all__ = ["OAuth"]


class OAuth(OAuthFlow):
    """OAuth 2.1 authorization code + PKCE for ``Client(url, auth=OAuth(...))``.

    Args:
        client_id / client_secret: pre-registered credentials (A-18); without them the client uses
            ``client_metadata_url`` (CIMD) where supported, else dynamic registration.
        client_issuer: the authorization server ``client_id`` is registered with; another one is
            refused with ``OAuthRegistrationError`` instead of seeing the credentials (A-19).
        token_endpoint_auth_method: for pre-registered credentials (default: what the server lists).
        client_metadata_url: an https URL serving this client's metadata document (A-15).
        client_name: the name given in dynamic registration.
        authorize: headless mode: a callback ``(authorization_url) -> redirect URL``; ``"follow"``
            GETs the URL and reads the redirect (servers that approve at once).
        authorizer: any ``Authorizer``; default ``BrowserAuthorizer()`` (browser + loopback listener).
        redirect_uri: headless mode's redirect URI.
        offline_access: ask for ``offline_access`` when the server lists it (A-29).
        scopes, store, dpop, max_step_ups, issuer, timeout: see ``OAuthFlow``.
    """

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        client_issuer: str | None = None,
        token_endpoint_auth_method: str | None = None,
        client_metadata_url: str | None = None,
        client_name: str = "anyport",
        authorize: AuthorizeCallback | Literal["follow"] | None = None,
        authorizer: Authorizer | None = None,
        redirect_uri: str = "http://localhost:3000/callback",
        offline_access: bool = True,
        scopes: Sequence[str] | None = None,
        store: TokenStore | None = None,
        dpop: bool | Literal["auto"] = "auto",
        max_step_ups: int = 2,
        issuer: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(
            scopes=tuple(scopes) if scopes is not None else None, store=store, dpop=dpop,
            max_step_ups=max_step_ups, issuer=issuer, timeout=timeout,
        )
        if client_secret is not None and client_id is None:
            raise ValueError("client_secret without client_id")
        if client_metadata_url is not None and (
            urlsplit(client_metadata_url).scheme != "https" or urlsplit(client_metadata_url).path in ("", "/")
        ):
            raise ValueError("client_metadata_url must be an https URL with a path (A-15)")
        if urlsplit(redirect_uri).scheme != "https" and not is_loopback(redirect_uri):
            raise ValueError("redirect_uri must be https or on a loopback host (A-21)")
        if authorize is not None and authorizer is not None:
            raise ValueError("pass authorize= or authorizer=, not both")
        self.client_id = client_id
        self.client_issuer = client_issuer
        self.client_secret = client_secret
        self.token_endpoint_auth_method = token_endpoint_auth_method
        self.client_metadata_url = client_metadata_url
        self.client_name = client_name
        self.offline_access = offline_access
        if authorizer is not None:
            self.authorizer: Authorizer = authorizer
        elif authorize is not None:
            self.authorizer = HeadlessAuthorizer(None if authorize == "follow" else authorize, redirect_uri=redirect_uri)
        else:
            self.authorizer = BrowserAuthorizer()

    @property
    def interactive(self) -> bool:  # type: ignore[override]
        """True with a browser: ``Client`` then authorizes before its handshake (``prepare``)."""
        return bool(getattr(self.authorizer, "interactive", False))

    async def _identity(self, http: httpx.AsyncClient, state: ServerState, server: AuthServer) -> ClientIdentity:
        redirect_uri = await self.authorizer.redirect_uri()
        identity = state.identity
        if identity is None or redirect_uri not in identity.redirect_uris:
            identity = await register(
                http, server, self.store, redirect_uri, client_id=self.client_id, client_secret=self.client_secret,
                auth_method=self.token_endpoint_auth_method, client_metadata_url=self.client_metadata_url,
                client_name=self.client_name, client_issuer=self.client_issuer,
            )
            state.identity = identity
        return identity

    async def _refresh_identity(self, http: httpx.AsyncClient, state: ServerState) -> ClientIdentity | None:
        """Who refreshes: no redirect URI needed, so no listener is opened and nothing is registered."""
        if state.identity is None and state.discovery is not None:
            state.identity = await known_identity(
                state.discovery.server, self.store, None, client_id=self.client_id, client_secret=self.client_secret,
                auth_method=self.token_endpoint_auth_method, client_metadata_url=self.client_metadata_url,
                client_issuer=self.client_issuer,
            )
        return state.identity

    def _select_scope(self, d: Any, extra: tuple[str, ...] = ()) -> str | None:
        scope = super()._select_scope(d, extra)
        server_scopes = d.server.scopes_supported or ()
        if scope and self.offline_access and "offline_access" in server_scopes and "offline_access" not in scope.split():
            scope += " offline_access"
        return scope

    async def _obtain(self, http: httpx.AsyncClient, state: ServerState, scope: str | None) -> Tokens:
        d = state.discovery
        assert d is not None
        server = d.server
        methods = server.metadata.get("code_challenge_methods_supported")
        if not isinstance(methods, list) or "S256" not in methods:
            raise OAuthDiscoveryError(
                f"{server.issuer} does not list S256 in code_challenge_methods_supported: "
                "refusing to authorize without PKCE (A-20)"
            )
        endpoint = server.endpoint("authorization_endpoint")
        identity = await self._identity(http, state, server)
        redirect_uri = await self.authorizer.redirect_uri()
        verifier, challenge = pkce_pair()
        expected_state = secrets.token_urlsafe(24)
        params = {
            "response_type": "code",
            "client_id": identity.client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": expected_state,
            "resource": d.resource,
        }
        if scope:
            params["scope"] = scope
        url = endpoint + ("&" if urlsplit(endpoint).query else "?") + urlencode(params)
        returned = await self.authorizer.authorize(url)
        code = self._check_response(returned, server, expected_state)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "resource": d.resource,
        }
        tokens = await request_tokens(http, server, form, identity, dpop=self._dpop_for(d))
        tokens.requested_scope = scope
        return tokens

    @staticmethod
    def _check_response(returned: str, server: AuthServer, expected_state: str) -> str:
        """A-22, then A-21: the code of an authorization response we can trust."""
        query = parse_qs(urlsplit(returned).query, keep_blank_values=True)

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        iss = one("iss")
        if iss is not None and iss != server.issuer:
            raise OAuthResponseError(
                f"the authorization response names issuer {iss!r}, not {server.issuer!r}: refused (A-22, RFC 9207)"
            )
        if iss is None and server.metadata.get("authorization_response_iss_parameter_supported") is True:
            raise OAuthResponseError(
                f"{server.issuer} promises an iss parameter in its authorization responses, and this one has none: "
                "refused (A-22, RFC 9207)"
            )
        if one("state") != expected_state:
            raise OAuthResponseError("the authorization response's state does not match the request: refused (A-21)")
        error = one("error")
        if error is not None:
            detail = one("error_description")
            raise OAuthResponseError(f"the authorization server refused: {error}" + (f" ({detail})" if detail else ""))
        code = one("code")
        if not code:
            raise OAuthResponseError("the authorization response carries no code")
        return code
