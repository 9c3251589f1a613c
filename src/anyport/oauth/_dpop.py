"""DPoP (RFC 9449): one key pair per client object, a fresh signed proof for every HTTP request.

JOSE through joserfc; nothing hand-rolled but the ``ath`` hash (SHA-256, base64url, §4.2). The
server's nonces (§8 at the token endpoint, §9 at the resource) are remembered per origin.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from anyport.oauth._urls import origin_of

__all__ = ["DPoPKey", "htu_of"]

#: The algorithms we can sign proofs with, most preferred first (RFC 9449 §5.1 negotiation).
SUPPORTED_ALGS = ("ES256", "EdDSA", "RS256")


def htu_of(url: str) -> str:
    """The ``htu`` claim: the request URI without query and fragment (RFC 9449 §4.2)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def ath_of(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class DPoPKey:
    """A DPoP key pair and the nonces servers gave us.

    Args:
        alg: ``ES256`` (default), ``EdDSA`` or ``RS256``.
    """

    def __init__(self, alg: str = "ES256") -> None:
        from joserfc.jwk import ECKey, OKPKey, RSAKey

        if alg == "ES256":
            self._key: Any = ECKey.generate_key("P-256")
        elif alg == "EdDSA":
            self._key = OKPKey.generate_key("Ed25519")
        elif alg == "RS256":
            self._key = RSAKey.generate_key(2048)
        else:
            raise ValueError(f"DPoP algorithm {alg!r} is not one of {SUPPORTED_ALGS}")
        self.alg = alg
        self._nonces: dict[tuple[str, str, int], str] = {}

    @property
    def public_jwk(self) -> dict[str, Any]:
        return dict(self._key.as_dict(private=False))

    @property
    def thumbprint(self) -> str:
        """The JWK SHA-256 thumbprint (RFC 7638), what a bound token's ``cnf.jkt`` names."""
        return str(self._key.thumbprint())

    def nonce_for(self, url: str) -> str | None:
        return self._nonces.get(origin_of(url))

    def remember_nonce(self, url: str, nonce: str | None) -> bool:
        """Keep the server's ``DPoP-Nonce``; True when it is new."""
        if not nonce:
            return False
        key = origin_of(url)
        if self._nonces.get(key) == nonce:
            return False
        self._nonces[key] = nonce
        return True

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """A new proof for one request: ``typ``, ``alg``, public ``jwk``; ``jti``, ``htm``, ``htu``,
        ``iat``, ``ath`` with a token, ``nonce`` when the server gave one (RFC 9449 §4.2)."""
        from joserfc import jwt

        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method.upper(),
            "htu": htu_of(url),
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = ath_of(access_token)
        nonce = self.nonce_for(url)
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk}
        return str(jwt.encode(header, claims, self._key, algorithms=[self.alg]))
