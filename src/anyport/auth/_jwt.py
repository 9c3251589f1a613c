"""JWT access tokens verified against the authorization server's JWKS (A-31, A-33; RFC 9068, RFC 8707).

The signature is checked by joserfc, never by hand. What is checked, in order: the token is a
compact JWS whose ``alg`` is on the allow-list (asymmetric only: never ``none``, never HMAC, so a
public key can never be used as an HMAC secret); its ``kid`` names a key of the JWKS (an unknown
``kid`` refetches the JWKS, at most once per ``refresh_interval``: rotation needs no restart); the
signature; ``iss``; ``aud`` names this resource (its canonical URI); ``exp`` / ``nbf`` / ``iat`` with
a bounded leeway. A verified token is cached by its digest until it expires.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from joserfc import jwk, jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
)

from anyport.auth._cache import TTLCache, digest, fetch_json
from anyport.auth._principal import AuthError, AuthRequest, Principal

__all__ = ["ASYMMETRIC_ALGORITHMS", "JWKS", "JWTVerifier", "principal_of_claims", "scopes_of"]

#: The signature algorithms a JWT may use unless configured otherwise (RFC 7518, RFC 8037).
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
#: The largest clock leeway accepted for exp/nbf/iat (seconds).
MAX_LEEWAY = 300.0


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """``scope`` (space-separated, RFC 9068 / RFC 7662) or ``scp`` (a list, or a string)."""
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(s for s in raw if isinstance(s, str))
    return frozenset()


def principal_of_claims(claims: Mapping[str, Any], method: str) -> Principal:
    subject = claims.get("sub")
    client = claims.get("client_id", claims.get("azp"))
    if not isinstance(subject, str) or not subject:
        subject = client if isinstance(client, str) and client else "anonymous"
    exp = claims.get("exp")
    iss = claims.get("iss")
    return Principal(
        subject=subject, method=method, client_id=client if isinstance(client, str) else None, scopes=scopes_of(claims),
        expires_at=float(exp) if isinstance(exp, (int, float)) else None, issuer=iss if isinstance(iss, str) else None,
        claims=dict(claims),
    )


class JWKS:
    """The signing keys of an issuer: fetched from ``url`` (or given as ``keys``), cached for
    ``max_age`` seconds, fetched again for an unknown ``kid`` at most once per ``refresh_interval``."""

    def __init__(
        self, url: str | None = None, *, keys: Mapping[str, Any] | None = None, max_age: float = 300.0,
        refresh_interval: float = 30.0, timeout: float = 5.0, verify: Any = True, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (url is None) == (keys is None):
            raise ValueError("give a JWKS url or keys (not both)")
        self.url = url
        self.max_age = max_age
        self.refresh_interval = refresh_interval
        self.timeout = timeout
        self.tls_verify = verify
        self.clock = clock
        self._keys: dict[str | None, Any] = {}
        self._fetched = float("-inf")
        self._lock = asyncio.Lock()
        #: How many times the JWKS was fetched (rate-limit tests and the bench read it).
        self.fetches = 0
        if keys is not None:
            self._load(keys)
            self._fetched = float("inf")

    def _load(self, document: Any) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError(f"{self.url or 'JWKS'}: not a JWK set")
        keys: dict[str | None, Any] = {}
        for data in document["keys"]:
            if not isinstance(data, dict) or data.get("kty") == "oct" or data.get("use", "sig") != "sig":
                continue  # never a symmetric key: its bytes are public here
            try:
                key = jwk.import_key(data)
            except (JoseError, ValueError, TypeError):
                continue
            keys[data.get("kid") if isinstance(data.get("kid"), str) else None] = key
        self._keys = keys

    async def _refresh(self, *, forced: bool) -> None:
        if self.url is None:
            return
        async with self._lock:
            now = self.clock()
            since = now - self._fetched
            if since < (self.refresh_interval if forced else self.max_age):
                return  # fetched meanwhile, or too recently to ask again
            self._fetched = now
            self.fetches += 1
            try:
                self._load(await fetch_json(self.url, timeout=self.timeout, verify=self.tls_verify))
            except ValueError as exc:
                if not self._keys:
                    raise AuthError(f"the signing keys are unavailable ({exc})", error="invalid_token") from exc

    async def key(self, kid: str | None) -> Any:
        """The key for ``kid``; None when the JWKS has none (after one rate-limited refetch)."""
        if self.clock() - self._fetched >= self.max_age:
            await self._refresh(forced=False)
        key = self._pick(kid)
        if key is None:
            await self._refresh(forced=True)
            key = self._pick(kid)
        return key

    async def unready(self) -> str | None:
        """Why tokens cannot be verified now (for ``/readyz``): no signing key was ever fetched and
        a fetch, at most once per ``refresh_interval``, fails; None once keys are at hand (stale
        keys still verify; requests refresh them)."""
        if self._keys or self.url is None:
            return None
        try:
            await self._refresh(forced=True)
        except AuthError as exc:
            return str(exc)
        return None if self._keys else f"no signing key at {self.url}"

    def _pick(self, kid: str | None) -> Any:
        if kid is not None:
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None


class JWTVerifier:
    """Bearer JWTs signed by ``issuer``'s keys (``jwks_url`` or ``jwks``), for ``audience``.

    ``audience`` defaults to the chain's ``resource`` (this server's canonical URI, RFC 8707).
    ``required_claims`` must be present; ``leeway`` (<= 300 s) absorbs clock skew.
    """

    method = "jwt"
    #: A verified token stays valid until its ``exp`` (the chain's fast path keeps it that long).
    fast_ttl = float("inf")

    def __init__(
        self, *, issuer: str, jwks_url: str | None = None, jwks: Mapping[str, Any] | JWKS | None = None,
        audience: str | Iterable[str] | None = None, algorithms: Collection[str] = ASYMMETRIC_ALGORITHMS,
        leeway: float = 30.0, refresh_interval: float = 30.0, max_age: float = 300.0, cache_size: int = 10_000,
        required_claims: Collection[str] = ("exp",), verify: Any = True,
    ) -> None:
        bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(f"algorithms must be asymmetric signature algorithms, not {', '.join(bad)} (never none or HMAC)")
        if not algorithms:
            raise ValueError("algorithms must not be empty")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY:g} seconds")
        self.issuer = issuer
        self.keys = jwks if isinstance(jwks, JWKS) else JWKS(
            jwks_url, keys=jwks, refresh_interval=refresh_interval, max_age=max_age, verify=verify,
        )
        self.audience: tuple[str, ...] | None = (audience,) if isinstance(audience, str) else None if audience is None else tuple(audience)
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.required_claims = tuple(required_claims)
        self.cache: TTLCache[Principal] = TTLCache(cache_size)

    async def unready(self) -> str | None:
        """Why this verifier cannot work now (its JWKS is unreachable), for ``/readyz``."""
        reason = await self.keys.unready()
        return None if reason is None else f"JWT issuer {self.issuer}: {reason}"

    def bind(self, resource: str) -> None:
        """The chain's canonical resource URI becomes the audience unless one was given."""
        if self.audience is None:
            self.audience = (resource,)

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        auth = request.authorization()
        if auth is None or auth[0] not in ("bearer", "dpop") or auth[1].count(".") != 2:
            return None  # not a JWT: another verifier (introspection) may know it
        return await self.verify(auth[1])

    async def verify(self, token: str) -> Principal:
        key_digest = digest(token)
        cached = self.cache.get(key_digest)
        if cached is not None:
            return cached
        principal = await self._verify(token)
        self.cache.put(key_digest, principal, principal.expires_at if principal.expires_at is not None else time.time() + 300)
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, TypeError):
            raise AuthError("the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthError(f"the token's algorithm {str(alg)[:20]!r} is not accepted")
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None)
        if key is None:
            raise AuthError("the token was signed with an unknown key (kid)")
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except BadSignatureError:
            raise AuthError("the token's signature is invalid") from None
        except (JoseError, ValueError, TypeError) as exc:
            raise AuthError(f"the token cannot be verified ({type(exc).__name__})") from None
        claims = decoded.claims
        if self.audience is None:
            raise AuthError("no audience is configured: bind the verifier to the resource", status=401)
        options: dict[str, Any] = {name: {"essential": True} for name in self.required_claims}
        options["iss"] = {"essential": True, "value": self.issuer}
        options["aud"] = {"essential": True, "values": list(self.audience)}
        try:
            jwt.JWTClaimsRegistry(leeway=int(self.leeway), **options).validate(claims)
        except ExpiredTokenError:
            raise AuthError("the token has expired") from None
        except MissingClaimError as exc:
            raise AuthError(f"the token lacks a required claim ({exc.claim})") from None
        except ClaimError as exc:
            raise AuthError(_claim_message(exc)) from None
        return principal_of_claims(claims, self.method)


def _claim_message(exc: ClaimError) -> str:
    claim = getattr(exc, "claim", "?")
    if claim == "aud":
        return "the token is for another resource (aud)"
    if claim == "iss":
        return "the token is from another issuer (iss)"
    if claim == "nbf":
        return "the token is not valid yet (nbf)"
    if claim == "iat":
        return "the token was issued in the future (iat)"
    return f"the token's {claim} claim is invalid"
