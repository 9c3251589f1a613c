"""``AuthChain``: the authenticators of a server, tried in order ("mTLS or API key or JWT"), the
one ``Principal`` they yield, the challenges of a refusal (RFC 6750 / RFC 9728), and the
protected-resource metadata the HTTP app serves (A-05..A-09, A-25, A-27, A-31, A-34).

The HTTP app calls ``admit`` once per request that carries MCP, right after its Origin/Host check,
and ``refusal_for_scopes`` before a tool, resource or prompt that needs scopes runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from anyport.auth._cache import fetch_json
from anyport.auth._dpop import DPoPVerifier, bound_key
from anyport.auth._principal import Authenticator, AuthError, AuthRequest, Principal
from anyport.protocol import dumps

__all__ = ["AuthChain", "Refusal", "canonical_resource"]

log = logging.getLogger("anyport.auth")

PRM_PATH = "/.well-known/oauth-protected-resource"
AS_METADATA_PATH = "/.well-known/oauth-authorization-server"


def canonical_resource(url: str) -> str:
    """The canonical URI of an MCP server (A-24, RFC 8707): scheme and host in lower case, no
    fragment or query, no trailing slash (unless the path is only ``/``)."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the resource must be an absolute http(s) URL, not {url[:80]!r}")
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


@dataclass(frozen=True, slots=True)
class Refusal:
    """What the HTTP app answers instead of serving a request: a status, headers
    (``WWW-Authenticate``) and a message for the JSON-RPC error body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    message: str


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AuthChain:
    """Authenticators tried in order; the first that recognises a valid credential wins.

    - ``resource``: this server's canonical URI as clients reach it (``https://host/mcp``): the
      audience tokens must name, and the ``resource`` of the metadata.
    - ``authorization_servers``: issuers clients get tokens from (the metadata lists them, A-05).
    - ``scopes_supported``: published in the metadata; ``required_scopes``: needed for any request
      (the first 401 challenge names them, A-25).
    - ``dpop``: checks proofs for DPoP-bound tokens (a default one unless given).
    - ``implied_scopes``: scope hierarchies (A-29): a granted scope -> the scopes it includes
      (``{"notes.admin": ["notes.read", "notes.write"]}``, followed transitively); the principal's
      ``scopes`` hold the granted scopes and everything they imply.

    ``offline_access`` is never published in the metadata or a challenge (A-29).
    """

    def __init__(
        self, authenticators: Iterable[Authenticator], *, resource: str, authorization_servers: Sequence[str] = (),
        scopes_supported: Sequence[str] = (), required_scopes: Sequence[str] = (), resource_name: str | None = None,
        dpop: DPoPVerifier | None = None, as_metadata_ttl: float = 300.0,
        implied_scopes: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.authenticators = list(authenticators)
        if not self.authenticators:
            raise ValueError("an AuthChain needs at least one authenticator")
        self.resource = canonical_resource(resource)
        self._by_method: dict[str, Any] = {getattr(a, "method", ""): a for a in self.authenticators}
        for a in self.authenticators:
            bind = getattr(a, "bind", None)
            if callable(bind):
                bind(self.resource)
        self.authorization_servers = list(authorization_servers)
        self.required_scopes = tuple(required_scopes)
        self.scopes_supported = [s for s in dict.fromkeys([*scopes_supported, *required_scopes]) if s != "offline_access"]
        self.implied = _closure(implied_scopes or {})
        self.dpop = dpop or DPoPVerifier()
        parts = urlsplit(self.resource)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.path = parts.path
        #: Where the metadata is (the path-inserted form of RFC 9728 §3.1), named in every challenge.
        self.metadata_url = f"{self.origin}{PRM_PATH}{self.path}"
        document: dict[str, Any] = {"resource": self.resource, "bearer_methods_supported": ["header"]}
        if self.authorization_servers:
            document["authorization_servers"] = self.authorization_servers
        if self.scopes_supported:
            document["scopes_supported"] = self.scopes_supported
        if resource_name:
            document["resource_name"] = resource_name
        document["dpop_signing_alg_values_supported"] = list(self.dpop.algorithms)
        self.metadata = dumps(document)
        self.as_metadata_ttl = as_metadata_ttl
        self._as_metadata: tuple[float, bytes | None] | None = None
        self._challenge_cache: dict[tuple[int, str | None, str, tuple[str, ...]], Refusal] = {}
        #: The fast path (``cached``): digest of the credential header -> (principal, deadline).
        #: Only for chains without client certificates (the order of the chain must decide then),
        #: and only principals whose authenticator says how long they stay valid (``fast_ttl``).
        self._fast: dict[bytes, tuple[Principal, float]] = {}
        self._fast_ok = not any(
            type(a).__name__ == "ClientCertificates" or getattr(a, "header", b"x-api-key") != b"x-api-key" for a in self.authenticators
        )
        self.fast_entries = 10_000

    async def unready(self) -> str | None:
        """Why requests cannot be authenticated now (a JWKS never reached), for ``/readyz``; None
        when every authenticator that can tell says it is ready."""
        for authenticator in self.authenticators:
            check = getattr(authenticator, "unready", None)
            if check is not None:
                reason: str | None = await check()
                if reason is not None:
                    return reason
        return None

    # -- well-known documents --------------------------------------------------------------------

    def metadata_paths(self) -> tuple[str, ...]:
        """The paths of the protected-resource metadata: path-inserted and root (A-07)."""
        inserted = f"{PRM_PATH}{self.path}"
        return (inserted, PRM_PATH) if inserted != PRM_PATH else (PRM_PATH,)

    async def well_known(self, path: str) -> bytes | None:
        """The JSON document served at ``path`` (a ``/.well-known/`` path), or None (404).

        Besides the protected-resource metadata, a 2025-03-26 client looks for the authorization
        server's metadata at this server's origin (A-04): the first authorization server's RFC 8414
        document is fetched, cached and served there."""
        path = path.rstrip("/") or "/"
        if path in self.metadata_paths():
            return self.metadata
        if path == AS_METADATA_PATH and self.authorization_servers:
            return await self._authorization_server_metadata()
        return None

    async def _authorization_server_metadata(self) -> bytes | None:
        cached = self._as_metadata
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.as_metadata_ttl:
            return cached[1]
        issuer = self.authorization_servers[0].rstrip("/")
        parts = urlsplit(issuer)
        base = f"{parts.scheme}://{parts.netloc}"
        document: bytes | None = None
        for url in (f"{base}{AS_METADATA_PATH}{parts.path}", f"{base}/.well-known/openid-configuration{parts.path}",
                    f"{issuer}/.well-known/openid-configuration"):
            try:
                found = await fetch_json(url, timeout=5.0)
            except (ValueError, ImportError):
                continue
            if isinstance(found, dict) and found.get("issuer") == self.authorization_servers[0]:
                document = dumps(found)
                break
        self._as_metadata = (now, document)
        return document

    # -- per request -----------------------------------------------------------------------------

    async def authenticate(self, request: AuthRequest) -> Principal:
        """The principal of ``request``, or ``AuthError``: no credential (401 without an error
        code), an invalid one (401 ``invalid_token``), or missing ``required_scopes`` (403)."""
        first_error: AuthError | None = None
        principal: Principal | None = None
        for authenticator in self.authenticators:
            try:
                principal = await authenticator.authenticate(request)
            except AuthError as exc:
                if exc.status != 401:
                    raise
                first_error = first_error or exc
                continue
            if principal is not None:
                break
        if principal is None:
            raise first_error or AuthError("authentication required", error=None, scopes=self.required_scopes)
        if self.implied and principal.scopes & self.implied.keys():
            expanded = principal.scopes.union(*(self.implied.get(s, ()) for s in principal.scopes))
            principal = dataclasses.replace(principal, scopes=frozenset(expanded))
        jkt = bound_key(principal.claims) if principal.method in ("jwt", "introspection") else None
        if jkt is not None:
            auth = request.authorization()
            if auth is None or auth[0] != "dpop":
                raise AuthError("a DPoP-bound token must be sent with the DPoP scheme")
            self.dpop.verify(request.header(b"dpop"), method=request.method, url=request.url, token=auth[1], jkt=jkt)
        if self.required_scopes and not principal.has_scopes(self.required_scopes):
            raise AuthError(
                "insufficient scope: this server needs " + " ".join(self.required_scopes), status=403,
                error="insufficient_scope", scopes=self.required_scopes,
            )
        return principal

    def cached(self, headers: Mapping[bytes, bytes]) -> Principal | None:
        """The principal of a credential verified before and still valid, without awaiting anything:
        one SHA-256 of the header and a lookup (the hot path; None: call ``admit``)."""
        if not self._fast_ok:
            return None
        auth = headers.get(b"authorization")
        key = headers.get(b"x-api-key")
        if auth is None and key is None:
            return None
        hit = self._fast.get(_digest((auth or b"") + b"\n" + (key or b"")))
        if hit is None or hit[1] <= time.time():
            return None
        return hit[0]

    def _remember(self, headers: Mapping[bytes, bytes], principal: Principal, authenticator: Any) -> None:
        ttl = getattr(authenticator, "fast_ttl", None)
        auth = headers.get(b"authorization")
        key = headers.get(b"x-api-key")
        if ttl is None or (auth is None and key is None) or not self._fast_ok or bound_key(principal.claims) is not None:
            return  # DPoP-bound tokens need their proof checked on every request
        until = time.time() + ttl
        if principal.expires_at is not None:
            until = min(until, principal.expires_at)
        fast = self._fast
        if len(fast) >= self.fast_entries:
            now = time.time()
            for k in [k for k, (_, deadline) in fast.items() if deadline <= now]:
                del fast[k]
            while len(fast) >= self.fast_entries:
                del fast[next(iter(fast))]
        # Keyed by both credential headers: the chain's order decided between them.
        fast[_digest((auth or b"") + b"\n" + (key or b""))] = (principal, until)

    async def admit(self, scope: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> tuple[Principal | None, Refusal | None]:
        """``authenticate`` for an ASGI request: (its principal, None), or (None, the refusal to answer with)."""
        client = scope.get("client")
        tls = (scope.get("extensions") or {}).get("tls") or {}
        chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
        cert = chain[0] if chain else None
        if isinstance(cert, str):  # the ASGI TLS extension gives PEM
            cert = _der_of_pem(cert)
        request = AuthRequest(
            headers, method=scope.get("method", "GET"), url=self.origin + scope.get("path", ""),
            peer=client[0] if client else None, client_cert=cert,
        )
        try:
            principal = await self.authenticate(request)
        except AuthError as exc:
            return None, self.refusal(exc)
        self._remember(headers, principal, self._by_method.get(principal.method))
        return principal, None

    def refusal_for_scopes(self, principal: Any, needed: Collection[str]) -> Refusal | None:
        """403 ``insufficient_scope`` naming every scope ``needed`` when ``principal`` lacks one (A-27)."""
        if not needed or (isinstance(principal, Principal) and principal.has_scopes(needed)):
            return None
        return self.refusal(AuthError(
            "insufficient scope: this needs " + " ".join(needed), status=403, error="insufficient_scope", scopes=needed,
        ))

    def refusal(self, exc: AuthError) -> Refusal:
        """The response to a refused request: 401/403 with ``WWW-Authenticate`` (A-06, A-25, A-27)."""
        key = (exc.status, exc.error, exc.description, exc.scopes)
        cached = self._challenge_cache.get(key)
        if cached is not None:
            return cached
        if exc.status not in (401, 403):
            refusal = Refusal(exc.status, ((b"retry-after", b"5"),) if exc.status == 503 else (), f"Service Unavailable: {exc.description}")
        else:
            scopes = exc.scopes or self.required_scopes or tuple(self.scopes_supported)
            scheme = "DPoP" if exc.error == "invalid_dpop_proof" else "Bearer"
            params = [f"resource_metadata={_quoted(self.metadata_url)}"]
            if scopes:
                params.append(f"scope={_quoted(' '.join(scopes))}")
            if exc.error:
                params.append(f"error={_quoted(exc.error)}")
                params.append(f"error_description={_quoted(exc.description)}")
            if scheme == "DPoP":
                params.append(f"algs={_quoted(' '.join(self.dpop.algorithms))}")
            title = "Forbidden" if exc.status == 403 else "Unauthorized"
            refusal = Refusal(exc.status, ((b"www-authenticate", f"{scheme} {', '.join(params)}".encode()),), f"{title}: {exc.description}")
        if len(self._challenge_cache) >= 256:
            self._challenge_cache.clear()
        self._challenge_cache[key] = refusal
        return refusal


def _closure(implied: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Every scope -> all the scopes it implies, directly or through others (cycles allowed)."""
    direct = {k: set(v) for k, v in implied.items()}
    out: dict[str, frozenset[str]] = {}
    for scope in direct:
        seen: set[str] = set()
        todo = list(direct[scope])
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo.extend(direct.get(s, ()))
        out[scope] = frozenset(seen)
    return out


def _digest(credentials: bytes) -> bytes:
    """What the fast path keys a credential by: BLAKE2b-256 (Python's own, no OpenSSL call: with
    OpenSSL 3 every ``hashlib.sha256()`` fetches the algorithm under locks, several times the cost
    of the hash of a token)."""
    return hashlib.blake2b(credentials, digest_size=32).digest()


def _der_of_pem(pem: str) -> bytes | None:
    import ssl

    try:
        return ssl.PEM_cert_to_DER_cert(pem)
    except ValueError:
        return None
