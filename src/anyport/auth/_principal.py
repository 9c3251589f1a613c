"""Who made a request: ``Principal``, and why a request was refused: ``AuthError``.

Every authenticator of the chain (``anyport.auth.AuthChain``) yields the same ``Principal``, however
the client proved itself (a JWT, an introspected token, an API key, a client certificate), so a
handler reads one object: ``ctx.principal``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["AuthError", "AuthRequest", "Authenticator", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    - ``subject``: who (the token's ``sub``, the API key's name, the certificate's identity);
    - ``method``: how it was proven: ``"jwt"``, ``"introspection"``, ``"api_key"``, ``"mtls"``
      (a certificate the TLS handshake verified) or ``"mtls_proxy"`` (one a trusted proxy vouched for);
    - ``client_id``: the OAuth client (``client_id`` / ``azp``), when known;
    - ``scopes``: what it may do; ``expires_at``: when the credential ends (epoch seconds), if it does;
    - ``issuer``: the token's issuer (or the proxy / CA that vouched); ``claims``: the raw claims.
    """

    subject: str
    method: str
    client_id: str | None = None
    scopes: frozenset[str] = frozenset()
    expires_at: float | None = None
    issuer: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        """The identity a legacy session is bound to: the same caller with a refreshed token keeps
        its session; another subject, client or issuer does not (A-37, T-HTTP-34)."""
        return f"{self.issuer or self.method}\x1f{self.subject}\x1f{self.client_id or ''}"

    def has_scopes(self, needed: Collection[str]) -> bool:
        """True when every scope of ``needed`` was granted."""
        return all(s in self.scopes for s in needed)

    def missing(self, needed: Collection[str]) -> list[str]:
        """The scopes of ``needed`` that were not granted, in their order."""
        return [s for s in needed if s not in self.scopes]


class AuthError(Exception):
    """A request refused for want of a valid credential (401) or of a scope (403), or a malformed
    authorization request (400), A-34. ``error`` is the RFC 6750 code (``invalid_token``,
    ``insufficient_scope``, ``invalid_request``; None when no credential was presented) and
    ``scopes`` the scopes the challenge names."""

    def __init__(
        self, description: str, *, status: int = 401, error: str | None = "invalid_token", scopes: Collection[str] = (),
    ) -> None:
        super().__init__(description)
        self.description = description
        self.status = status
        self.error = error
        self.scopes = tuple(scopes)


class AuthRequest:
    """What an authenticator sees of an HTTP request: lower-case header names, the method, the
    URL the client used (``htu`` of DPoP), the peer address, and the DER client certificate that
    the TLS handshake verified (None without one)."""

    __slots__ = ("client_cert", "headers", "method", "peer", "url")

    def __init__(
        self, headers: Mapping[bytes, bytes], *, method: str = "POST", url: str = "", peer: str | None = None,
        client_cert: bytes | None = None,
    ) -> None:
        self.headers = headers
        self.method = method
        self.url = url
        self.peer = peer
        self.client_cert = client_cert

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    def authorization(self) -> tuple[str, str] | None:
        """(scheme in lower case, credentials) of the ``Authorization`` header, or None."""
        raw = self.header(b"authorization")
        if raw is None:
            return None
        scheme, _, rest = raw.strip().partition(" ")
        return scheme.lower(), rest.strip()


class Authenticator(Protocol):
    """One way to authenticate. ``authenticate`` returns the principal, None when the request
    carries no credential of this kind (the chain asks the next one), or raises ``AuthError`` when
    it carries one that is not valid."""

    async def authenticate(self, request: AuthRequest) -> Principal | None: ...
