"""Opaque access tokens, asked of the authorization server (RFC 7662 token introspection).

The answer is cached by the token's digest for at most ``cache_ttl`` seconds (and never past the
token's ``exp``), in a bounded cache: a revoked token is refused again at most ``cache_ttl`` later.
An inactive answer is cached too (shorter), so a flood of one bad token does not flood the AS.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from anyport.auth._cache import TTLCache, digest, fetch_json
from anyport.auth._jwt import principal_of_claims
from anyport.auth._principal import AuthError, AuthRequest, Principal

__all__ = ["IntrospectionVerifier"]


class IntrospectionVerifier:
    """Bearer tokens introspected at ``url`` with this resource's client credentials.

    The answer must be ``active``; with ``issuer`` its ``iss`` must match; its ``aud`` (when the AS
    sends one, or always with ``require_audience``) must name ``audience`` (default: the chain's
    resource, RFC 8707).
    """

    method = "introspection"

    def __init__(
        self, url: str, *, client_id: str | None = None, client_secret: str | None = None, issuer: str | None = None,
        audience: str | Iterable[str] | None = None, require_audience: bool = False, cache_ttl: float = 60.0,
        negative_ttl: float = 5.0, cache_size: int = 10_000, timeout: float = 5.0, verify: Any = True,
    ) -> None:
        if cache_ttl < 0 or negative_ttl < 0:
            raise ValueError("cache_ttl and negative_ttl must be >= 0")
        self.url = url
        self.credentials = (client_id, client_secret or "") if client_id is not None else None
        self.issuer = issuer
        self.audience: tuple[str, ...] | None = (audience,) if isinstance(audience, str) else None if audience is None else tuple(audience)
        self.require_audience = require_audience
        self.cache_ttl = cache_ttl
        self.negative_ttl = negative_ttl
        self.timeout = timeout
        self.tls_verify = verify
        self.cache: TTLCache[Principal | str] = TTLCache(cache_size)
        #: How many introspection requests were sent (tests and the bench read it).
        self.calls = 0

    @property
    def fast_ttl(self) -> float:
        """How long an active answer is believed (the chain's fast path too)."""
        return self.cache_ttl

    def bind(self, resource: str) -> None:
        if self.audience is None:
            self.audience = (resource,)

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        auth = request.authorization()
        if auth is None or auth[0] not in ("bearer", "dpop") or not auth[1]:
            return None
        return await self.verify(auth[1])

    async def verify(self, token: str) -> Principal:
        key = digest(token)
        cached = self.cache.get(key)
        if isinstance(cached, Principal):
            return cached
        if isinstance(cached, str):
            raise AuthError(cached)
        try:
            return self._accept(key, await self._introspect(token))
        except AuthError as exc:
            if exc.status == 401 and self.negative_ttl > 0:
                self.cache.put(key, exc.description, time.time() + self.negative_ttl)
            raise

    async def _introspect(self, token: str) -> dict[str, Any]:
        self.calls += 1
        try:
            answer = await fetch_json(
                self.url, data={"token": token, "token_type_hint": "access_token"}, auth=self.credentials,
                timeout=self.timeout, verify=self.tls_verify,
            )
        except ValueError as exc:
            raise AuthError(f"the token cannot be checked now (introspection failed: {exc})", status=503, error=None) from exc
        if not isinstance(answer, dict):
            raise AuthError("the introspection answer is not an object", status=503, error=None)
        return answer

    def _accept(self, key: bytes, answer: dict[str, Any]) -> Principal:
        if answer.get("active") is not True:
            raise AuthError("the token is not active (revoked, expired or unknown)")
        now = time.time()
        exp = answer.get("exp")
        if isinstance(exp, (int, float)) and exp <= now:
            raise AuthError("the token has expired")
        if self.issuer is not None and answer.get("iss") not in (None, self.issuer):
            raise AuthError("the token is from another issuer (iss)")
        aud = answer.get("aud")
        if aud is not None or self.require_audience:
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if self.audience is None or not any(a in auds for a in self.audience):
                raise AuthError("the token is for another resource (aud)")
        principal = principal_of_claims(answer, self.method)
        until = now + self.cache_ttl
        if principal.expires_at is not None:
            until = min(until, principal.expires_at)
        self.cache.put(key, principal, until)
        return principal
