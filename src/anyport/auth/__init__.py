"""Server-side authentication for the HTTP transports (issue 13; DIGEST §14, A-*).

An ``AuthChain`` of authenticators yields one ``Principal`` per request, which handlers read as
``ctx.principal``::

    from anyport.auth import AuthChain, JWTVerifier, APIKeys, ClientCertificates

    auth = AuthChain(
        [ClientCertificates(), APIKeys(path="keys.txt"), JWTVerifier(issuer=AS, jwks_url=AS + "/jwks")],
        resource="https://mcp.example.com/mcp", authorization_servers=[AS], scopes_supported=["notes.read"],
    )
    app.run("http", auth=auth)

Nothing here is imported by ``import anyport`` or by a server without auth; joserfc (JWT, DPoP)
and httpx (JWKS, introspection) load with the verifiers that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from anyport.auth._principal import Authenticator, AuthError, AuthRequest, Principal

if TYPE_CHECKING:
    from anyport.auth._apikeys import APIKey, APIKeys, new_api_key
    from anyport.auth._chain import AuthChain, Refusal, canonical_resource
    from anyport.auth._config import auth_from_config
    from anyport.auth._dpop import DPoPVerifier
    from anyport.auth._introspection import IntrospectionVerifier
    from anyport.auth._jwt import JWKS, JWTVerifier
    from anyport.auth._mtls import ClientCertificates

_LAZY = {
    "APIKey": "_apikeys", "APIKeys": "_apikeys", "new_api_key": "_apikeys",
    "AuthChain": "_chain", "Refusal": "_chain", "canonical_resource": "_chain",
    "auth_from_config": "_config",
    "DPoPVerifier": "_dpop",
    "IntrospectionVerifier": "_introspection",
    "JWKS": "_jwt", "JWTVerifier": "_jwt",
    "ClientCertificates": "_mtls",
}

__all__ = [
    "JWKS", "APIKey", "APIKeys", "AuthChain", "AuthError", "AuthRequest", "Authenticator", "ClientCertificates",
    "DPoPVerifier", "IntrospectionVerifier", "JWTVerifier", "Principal", "Refusal", "auth_from_config",
    "canonical_resource", "new_api_key",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'anyport.auth' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"anyport.auth.{module}"), name)
    globals()[name] = value
    return value
