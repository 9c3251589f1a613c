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
import re
import secrets
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from anyport._exceptions import InvalidParamsError
from anyport.protocol import _codec

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KeyRing"]

_PREFIX = "a1."
_MAX_TOKEN = 256 * 1024


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"anyport-keyring" + key).digest()[:8]


#: What a key looks like, for error messages (never the key itself).
_EXPECTED = (
    "a key is 32 bytes: 43 base64url characters (44 with '=' padding) or 64 hex characters "
    "(`anyport keygen` prints one)"
)
_HEX = re.compile(r"[0-9a-fA-F]*")
_B64 = re.compile(r"[A-Za-z0-9_+/-]*={0,2}")
_B64_CHAR = re.compile(r"[A-Za-z0-9_+/=-]")
_SEPARATORS = re.compile(r"[,\s]+")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _parse_key(text: str) -> bytes:
    """One key from its text: 64 hex characters, or base64url (standard base64 and '=' padding
    accepted, as before). A ``ValueError`` says what is wrong in words that never quote the key.
    """
    if len(text) == 64 and _HEX.fullmatch(text):
        return bytes.fromhex(text)
    if len(text) >= 2 and text[0] in "\"'" and text[-1] == text[0]:
        raise ValueError("is in quotes; give the key without them")
    if not _B64.fullmatch(text):
        bad = next((i for i, c in enumerate(text) if not _B64_CHAR.fullmatch(c)), None)
        if bad is None:
            raise ValueError(f"has '=' before its end ('=' is only padding, at most 2 at the end); {_EXPECTED}")
        raise ValueError(f"has a character that is neither base64url nor hex (position {bad + 1} of {len(text)}); {_EXPECTED}")
    if len(text) == 64 and "=" not in text:
        bad = next(i for i, c in enumerate(text) if not _HEX.fullmatch(c))
        raise ValueError(f"is 64 characters long like a hex key, but position {bad + 1} is not a hex digit; {_EXPECTED}")
    body = text.rstrip("=")
    if len(body) != 43:
        raise ValueError(f"is {len(text)} characters long; {_EXPECTED}")
    # 43 characters of the alphabet plus one '=' always decode, to 32 bytes.
    return base64.b64decode(body.replace("-", "+").replace("_", "/") + "=", validate=True)


def _as_key(k: bytes | str, n: int = 1, of: int = 1) -> bytes:
    """Key ``n`` (1-based) of ``of`` as 32 raw bytes; a ``ValueError`` names which one is wrong and why."""
    which = f"the {_ordinal(n)} of {of} keys" if of > 1 else "the key"
    if isinstance(k, bytes):
        if len(k) != 32:
            raise ValueError(f"{which} is {len(k)} bytes; requestState keys are 32 bytes (AES-256-GCM)")
        return k
    if not isinstance(k, str):
        raise TypeError(f"{which} is a {type(k).__name__}; give bytes or a base64url/hex string")
    try:
        return _parse_key(k.strip())
    except ValueError as exc:
        raise ValueError(f"{which} {exc}") from None


class KeyRing:
    """Keys for sealing MRTR state. The first key seals; every key opens.

    ``KeyRing()`` makes a random key for this process. Replicas that must finish each
    other's rounds share keys: ``KeyRing.from_env()`` reads ``ANYPORT_STATE_KEYS``
    (32-byte keys, each as base64url or as 64 hex characters, separated by commas and/or
    whitespace, newest first). ``anyport keygen`` prints a fresh key.
    """

    def __init__(self, keys: Iterable[bytes | str] | None = None) -> None:
        if keys is None:
            raw = [secrets.token_bytes(32)]
        else:
            given = list(keys)
            raw = [_as_key(k, n, len(given)) for n, k in enumerate(given, 1)]
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
        """The ring in ``var``, or a random key for this process when it is unset or empty.

        Keys are separated by commas and/or whitespace, newest (the one that seals) first. A
        malformed value raises ``ValueError`` with one line naming ``var``, which key is wrong
        and why; the message never contains key material.
        """
        value = os.environ.get(var, "").strip()
        if not value:
            return cls()
        keys = [k for k in _SEPARATORS.split(value) if k]
        if not keys:
            raise ValueError(f"{var} lists no key (only separators); unset it, or give keys made by `anyport keygen`")
        try:
            return cls(keys)
        except ValueError as exc:
            raise ValueError(f"{var}: {exc}") from None

    @staticmethod
    def generate_key(encoding: Literal["base64url", "hex"] = "base64url") -> str:
        """A fresh random 32-byte key, as unpadded base64url (the default) or as 64 hex characters."""
        raw = secrets.token_bytes(32)
        if encoding == "hex":
            return raw.hex()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

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
