"""DPoP proofs (RFC 9449): a token bound to a key (``cnf.jkt``) counts only with a fresh proof,
signed by that key, for this request.

Checked with joserfc: the ``DPoP`` header holds one compact JWS with ``typ: dpop+jwt``, an
asymmetric ``alg`` of the allow-list and a public ``jwk``; its signature; ``htm`` (the method) and
``htu`` (the URL without query and fragment); ``iat`` within ``window`` seconds; a ``jti`` not seen
within the window (replay); ``ath``, the hash of the access token; and the key's thumbprint equals
the token's ``cnf.jkt``.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jwk, jws
from joserfc.errors import JoseError

from anyport._exceptions import ParseError
from anyport.auth._cache import TTLCache
from anyport.auth._jwt import ASYMMETRIC_ALGORITHMS
from anyport.auth._principal import AuthError
from anyport.protocol import loads

__all__ = ["DPoPVerifier", "bound_key"]


def bound_key(claims: Any) -> str | None:
    """The ``cnf.jkt`` a token is bound to, or None."""
    cnf = claims.get("cnf") if hasattr(claims, "get") else None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


def _normal_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.lower()
    for scheme, port in (("https", ":443"), ("http", ":80")):
        if parts.scheme.lower() == scheme and netloc.endswith(port):
            netloc = netloc[: -len(port)]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", "", ""))


class DPoPVerifier:
    """Checks DPoP proofs and remembers their ``jti`` for ``window`` seconds (at most ``max_jtis``)."""

    def __init__(
        self, *, algorithms: Collection[str] = ASYMMETRIC_ALGORITHMS, window: float = 60.0, max_jtis: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if any(a not in ASYMMETRIC_ALGORITHMS for a in algorithms):
            raise ValueError("DPoP proofs use asymmetric algorithms only")
        self.algorithms = tuple(algorithms)
        self.window = window
        self.clock = clock
        self.seen: TTLCache[bool] = TTLCache(max_jtis, clock=clock)

    def verify(self, proof: str | None, *, method: str, url: str, token: str, jkt: str) -> None:
        """Raises ``AuthError`` (401, ``invalid_dpop_proof`` / ``invalid_token``) unless ``proof`` is valid."""
        if not proof or "," in proof:
            raise AuthError("a DPoP-bound token needs exactly one DPoP proof", error="invalid_dpop_proof")
        try:
            header = jws.extract_compact(proof.encode()).headers()
        except (JoseError, ValueError, TypeError):
            raise AuthError("the DPoP proof is not a well-formed JWT", error="invalid_dpop_proof") from None
        alg = header.get("alg")
        public = header.get("jwk")
        if header.get("typ") != "dpop+jwt" or alg not in self.algorithms or not isinstance(public, dict) or "d" in public:
            raise AuthError("the DPoP proof's header is not acceptable (typ, alg, jwk)", error="invalid_dpop_proof")
        try:
            key = jwk.import_key(public)
            decoded = jws.deserialize_compact(proof, key, algorithms=[alg])
            claims = loads(decoded.payload)
        except (JoseError, ValueError, TypeError, ParseError):
            raise AuthError("the DPoP proof's signature is invalid", error="invalid_dpop_proof") from None
        if not isinstance(claims, dict):
            raise AuthError("the DPoP proof has no claims", error="invalid_dpop_proof")
        if key.thumbprint() != jkt:
            raise AuthError("the DPoP proof is signed by another key than the token is bound to", error="invalid_token")
        if claims.get("htm") != method or not isinstance(claims.get("htu"), str) or _normal_url(claims["htu"]) != _normal_url(url):
            raise AuthError("the DPoP proof is for another request (htm, htu)", error="invalid_dpop_proof")
        iat = claims.get("iat")
        now = self.clock()
        if not isinstance(iat, (int, float)) or abs(now - iat) > self.window:
            raise AuthError("the DPoP proof is too old or from the future (iat)", error="invalid_dpop_proof")
        ath = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
        if claims.get("ath") != ath:
            raise AuthError("the DPoP proof is for another access token (ath)", error="invalid_dpop_proof")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise AuthError("the DPoP proof lacks a jti", error="invalid_dpop_proof")
        key_of_jti = hashlib.sha256(f"{jkt}\x1f{jti}".encode()).digest()
        if self.seen.get(key_of_jti):
            raise AuthError("the DPoP proof was already used (replay)", error="invalid_dpop_proof")
        self.seen.put(key_of_jti, True, now + 2 * self.window)
