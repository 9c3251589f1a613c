"""MRTR ``requestState`` sealing (M-16): authenticated encryption with a key ring.

The client echoes ``requestState`` verbatim, so anything inside it is attacker-controlled
until proven otherwise. We seal it with AES-256-GCM: the client can neither read nor alter
it, it expires, and it is bound (as associated data) to the request it belongs to, so a state
minted for one tool call cannot be replayed on another. The key ring holds the current key
(used to seal) and older keys (still accepted to open), so keys rotate without breaking rounds
in flight, and replicas that share the ring can finish each other's rounds.

Wire form: ``"a1." + base64url(key_id[8] || nonce[12] || ciphertext+tag)``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from anyport._exceptions import InvalidParamsError
from anyport.protocol import _codec

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KeyRing"]

_PREFIX = "a1."
_MAX_TOKEN = 256 * 1024


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"anyport-keyring" + key).digest()[:8]


def _as_key(k: bytes | str) -> bytes:
    raw = k if isinstance(k, bytes) else base64.urlsafe_b64decode(k + "=" * (-len(k) % 4))
    if len(raw) != 32:
        raise ValueError("requestState keys are 32 bytes (base64url for strings)")
    return raw


class KeyRing:
    """Keys for sealing MRTR state. The first key seals; every key opens.

    ``KeyRing()`` makes a random key for this process. Replicas that must finish each
    other's rounds share keys: ``KeyRing.from_env()`` reads ``ANYPORT_STATE_KEYS``
    (comma-separated base64url 32-byte keys, newest first).
    """

    def __init__(self, keys: Iterable[bytes | str] | None = None) -> None:
        raw = [_as_key(k) for k in keys] if keys is not None else [os.urandom(32)]
        if not raw:
            raise ValueError("a key ring needs at least one key")
        self._raw = {_key_id(k): k for k in raw}
        self._current = _key_id(raw[0])
        # Ciphers are made on first use: cryptography loads only in servers that seal state.
        self._aeads: dict[bytes, AESGCM] = {}

    def _aead(self, key_id: bytes) -> AESGCM | None:
        aead = self._aeads.get(key_id)
        if aead is None:
            raw = self._raw.get(key_id)
            if raw is None:
                return None
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            aead = self._aeads[key_id] = AESGCM(raw)
        return aead

    @classmethod
    def from_env(cls, var: str = "ANYPORT_STATE_KEYS") -> KeyRing:
        value = os.environ.get(var, "").strip()
        return cls([p.strip() for p in value.split(",") if p.strip()] if value else None)

    @staticmethod
    def generate_key() -> str:
        return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")

    def seal(self, payload: dict[str, Any], *, binding: bytes, ttl: float = 600.0, now: float | None = None) -> str:
        body = dict(payload)
        body["exp"] = (time.time() if now is None else now) + ttl
        nonce = os.urandom(12)
        aead = self._aead(self._current)
        assert aead is not None  # the current key is always in the ring
        ct = aead.encrypt(nonce, _codec.dumps(body), binding)
        return _PREFIX + base64.urlsafe_b64encode(self._current + nonce + ct).decode().rstrip("=")

    def open(self, token: object, *, binding: bytes, now: float | None = None) -> dict[str, Any]:
        """The payload, or ``InvalidParamsError`` for anything forged, foreign, altered or expired."""
        if not isinstance(token, str) or not token.startswith(_PREFIX) or len(token) > _MAX_TOKEN:
            raise InvalidParamsError("invalid requestState")
        try:
            s = token[len(_PREFIX):]
            blob = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        except ValueError as exc:
            raise InvalidParamsError("invalid requestState") from exc
        aead = self._aead(blob[:8])
        if aead is None or len(blob) < 8 + 12 + 16:
            raise InvalidParamsError("invalid requestState (unknown key)")
        from cryptography.exceptions import InvalidTag

        try:
            plain = aead.decrypt(blob[8:20], blob[20:], binding)
        except InvalidTag as exc:
            raise InvalidParamsError("invalid requestState (failed verification)") from exc
        body = _codec.loads(plain)
        if not isinstance(body, dict):
            raise InvalidParamsError("invalid requestState")
        exp = body.pop("exp", 0)
        if not isinstance(exp, (int, float)) or exp < (time.time() if now is None else now):
            raise InvalidParamsError("requestState expired; start the request again")
        return body
