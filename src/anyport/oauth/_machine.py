"""Grants without a person: client credentials, workload identity, enterprise-managed authorization.

- ``ClientCredentials``: ``grant_type=client_credentials`` (OAuth 2.1 §4.2) with a client secret
  (``client_secret_basic`` or ``_post``) or a private key (``private_key_jwt``, RFC 7523 §2.2).
- ``WorkloadIdentity``: the JWT-bearer grant (RFC 7523 §2.1) with a JWT the platform gave the
  workload (SEP-1933); a refusal is reported as it is, never retried with another grant.
- ``EnterpriseAuth``: SEP-990: the user's ID token is exchanged at the enterprise IdP for an
  ID-JAG (RFC 8693 token exchange, ``audience`` = the MCP authorization server, ``resource`` = the
  MCP server), which the MCP authorization server takes in a JWT-bearer grant.

All send ``resource`` (A-23) and the selected scope (A-26), and step up like the others (A-28).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from anyport._exceptions import OAuthTokenError
from anyport.oauth._discovery import AuthServer, check_endpoint
from anyport.oauth._flow import OAuthFlow, ServerState
from anyport.oauth._register import auth_method_for
from anyport.oauth._tokens import ClientIdentity, Tokens, request_tokens, signing_key

if TYPE_CHECKING:
    import httpx

    from anyport.oauth._store import TokenStore

__all__ = ["ClientCredentials", "EnterpriseAuth", "WorkloadIdentity"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ID_JAG_TYPE = "urn:ietf:params:oauth:token-type:id-jag"

#: A string, or a (sync or async) function returning a fresh one (e.g. a workload token file's contents).
StringSource = str | Callable[[], "str | Awaitable[str]"]


async def _resolve(source: StringSource) -> str:
    if isinstance(source, str):
        return source
    value = source()
    if inspect.isawaitable(value):
        value = await value
    if not isinstance(value, str) or not value:
        raise OAuthTokenError("the assertion source returned no token")
    return value


class _Machine(OAuthFlow):
    def __init__(self, *, scopes: Sequence[str] | None, store: TokenStore | None, dpop: bool | Literal["auto"],
                 max_step_ups: int, issuer: str | None, timeout: float) -> None:
        from anyport.oauth._store import MemoryTokenStore

        super().__init__(
            scopes=tuple(scopes) if scopes is not None else None,
            store=store if store is not None else MemoryTokenStore(),  # a machine asks again, cheaply
            dpop=dpop, max_step_ups=max_step_ups, issuer=issuer, timeout=timeout,
        )

    @staticmethod
    def _form(grant: str, state: ServerState, scope: str | None, **extra: str) -> dict[str, str]:
        assert state.discovery is not None
        form = {"grant_type": grant, "resource": state.discovery.resource, **extra}
        if scope:
            form["scope"] = scope
        return form


class ClientCredentials(_Machine):
    """``client_credentials`` with a secret or a private key (``private_key_jwt``).

    Args:
        client_id: the client registered with the authorization server.
        client_secret: its secret (``client_secret_basic``, or ``_post`` when the server lists only that).
        private_key_pem / signing_algorithm: a PEM private key for ``private_key_jwt`` (e.g. ``ES256``).
        token_endpoint_auth_method: force one method.
        scopes, store (default: in memory), dpop, max_step_ups, issuer, timeout: see ``OAuthFlow``.
    """

    def __init__(
        self,
        client_id: str,
        *,
        client_secret: str | None = None,
        private_key_pem: str | None = None,
        signing_algorithm: str = "ES256",
        token_endpoint_auth_method: str | None = None,
        scopes: Sequence[str] | None = None,
        store: TokenStore | None = None,
        dpop: bool | Literal["auto"] = "auto",
        max_step_ups: int = 1,
        issuer: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(scopes=scopes, store=store, dpop=dpop, max_step_ups=max_step_ups, issuer=issuer, timeout=timeout)
        if (client_secret is None) == (private_key_pem is None):
            raise ValueError("ClientCredentials needs exactly one of client_secret and private_key_pem")
        self.client_id = client_id
        self.client_secret = client_secret
        self.signing_algorithm = signing_algorithm
        self._key = signing_key(private_key_pem, signing_algorithm) if private_key_pem is not None else None
        self.token_endpoint_auth_method = token_endpoint_auth_method

    def _identity_for(self, server: AuthServer) -> ClientIdentity:
        if self._key is not None:
            return ClientIdentity(self.client_id, None, "private_key_jwt")
        method = auth_method_for(server, True, self.token_endpoint_auth_method)
        return ClientIdentity(self.client_id, self.client_secret, method)

    def _assertion_key(self) -> tuple[Any, str] | None:
        return (self._key, self.signing_algorithm) if self._key is not None else None

    async def _refresh_identity(self, http: httpx.AsyncClient, state: ServerState) -> ClientIdentity | None:
        return self._identity_for(state.discovery.server) if state.discovery is not None else None

    async def _obtain(self, http: httpx.AsyncClient, state: ServerState, scope: str | None) -> Tokens:
        d = state.discovery
        assert d is not None
        form = self._form("client_credentials", state, scope)
        return await request_tokens(http, d.server, form, self._identity_for(d.server), dpop=self._dpop_for(d),
                                    assertion_key=self._assertion_key())


class WorkloadIdentity(_Machine):
    """RFC 7523 JWT-bearer grant with a workload identity token (SEP-1933).

    Args:
        assertion: the workload's JWT, or a function returning a fresh one for each grant.
        client_id: sent as ``client_id`` when given (public client, ``none`` authentication).
        client_secret: authenticates the client (``client_secret_basic``) when the server requires it.
    """

    def __init__(
        self,
        assertion: StringSource,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        scopes: Sequence[str] | None = None,
        store: TokenStore | None = None,
        dpop: bool | Literal["auto"] = "auto",
        issuer: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(scopes=scopes, store=store, dpop=dpop, max_step_ups=1, issuer=issuer, timeout=timeout)
        self.assertion = assertion
        self.client_id = client_id
        self.client_secret = client_secret

    async def _obtain(self, http: httpx.AsyncClient, state: ServerState, scope: str | None) -> Tokens:
        d = state.discovery
        assert d is not None
        identity = None
        if self.client_id is not None:
            method = auth_method_for(d.server, self.client_secret is not None)
            identity = ClientIdentity(self.client_id, self.client_secret, method)
        form = self._form(JWT_BEARER, state, scope, assertion=await _resolve(self.assertion))
        return await request_tokens(http, d.server, form, identity, dpop=self._dpop_for(d))


class EnterpriseAuth(_Machine):
    """SEP-990 enterprise-managed authorization: ID token -> ID-JAG at the IdP -> access token.

    Args:
        client_id / client_secret: this client at the MCP authorization server.
        idp_token_endpoint: the enterprise IdP's token endpoint.
        id_token: the user's ID token from the IdP (or a function returning a fresh one).
        idp_client_id / idp_client_secret: this client at the IdP, when it asks for authentication.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str | None,
        idp_token_endpoint: str,
        id_token: StringSource,
        idp_client_id: str | None = None,
        idp_client_secret: str | None = None,
        scopes: Sequence[str] | None = None,
        store: TokenStore | None = None,
        dpop: bool | Literal["auto"] = "auto",
        max_step_ups: int = 1,
        issuer: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(scopes=scopes, store=store, dpop=dpop, max_step_ups=max_step_ups, issuer=issuer, timeout=timeout)
        self.client_id = client_id
        self.client_secret = client_secret
        self.idp_token_endpoint = check_endpoint(idp_token_endpoint, "IdP token endpoint")
        self.id_token = id_token
        self.idp_client_id = idp_client_id
        self.idp_client_secret = idp_client_secret

    async def _obtain(self, http: httpx.AsyncClient, state: ServerState, scope: str | None) -> Tokens:
        d = state.discovery
        assert d is not None
        idp = AuthServer(self.idp_token_endpoint, {"token_endpoint": self.idp_token_endpoint})
        exchange = self._form(
            TOKEN_EXCHANGE, state, scope, subject_token=await _resolve(self.id_token),
            subject_token_type=ID_TOKEN_TYPE, requested_token_type=ID_JAG_TYPE, audience=d.server.issuer,
        )
        idp_identity = None
        if self.idp_client_id is not None:
            method = auth_method_for(idp, self.idp_client_secret is not None)
            idp_identity = ClientIdentity(self.idp_client_id, self.idp_client_secret, method)
        id_jag = await request_tokens(http, idp, exchange, idp_identity)
        method = auth_method_for(d.server, self.client_secret is not None)
        identity = ClientIdentity(self.client_id, self.client_secret, method)
        form = self._form(JWT_BEARER, state, scope, assertion=id_jag.access_token)
        return await request_tokens(http, d.server, form, identity, dpop=self._dpop_for(d))
