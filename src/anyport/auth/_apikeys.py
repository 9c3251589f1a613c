"""API keys: high-entropy, prefixed, stored only as digests, each with a name, scopes and an
optional expiry; loaded from a file and/or an environment variable and re-read when they change
(rotation without restart).

A key reads ``apk_<id>_<secret>``: the id (8 hex digits) finds the entry, and the SHA-256 of the
whole key is compared with the stored digest in constant time. A stored entry is one line::

    apk_1a2b3c4d sha256:<64 hex> name=ci scopes=tools.read,tools.write expires=2027-01-01T00:00:00Z

Clients send the key as ``Authorization: Bearer apk_...`` or ``X-API-Key: apk_...``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from anyport.auth._principal import AuthError, AuthRequest, Principal

__all__ = ["PREFIX", "APIKey", "APIKeys", "new_api_key"]

_log = logging.getLogger("anyport.auth")

PREFIX = "apk_"
_ID_LEN = 8


@dataclass(frozen=True, slots=True)
class APIKey:
    """A stored key: its public id, the digest of the whole key, a name, scopes, an optional expiry."""

    id: str
    digest: str
    name: str
    scopes: frozenset[str] = frozenset()
    expires_at: float | None = None

    def line(self) -> str:
        """The line to store (the key itself is not in it)."""
        parts = [f"{PREFIX}{self.id}", f"sha256:{self.digest}", f"name={self.name}"]
        if self.scopes:
            parts.append("scopes=" + ",".join(sorted(self.scopes)))
        if self.expires_at is not None:
            parts.append("expires=" + dt.datetime.fromtimestamp(self.expires_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return " ".join(parts)

    @classmethod
    def parse(cls, line: str) -> APIKey:
        """One stored line; ``ValueError`` naming what is wrong."""
        fields = line.split()
        if len(fields) < 2 or not fields[0].startswith(PREFIX) or not fields[1].startswith("sha256:"):
            raise ValueError("expected 'apk_<id> sha256:<hex> name=... [scopes=a,b] [expires=ISO-8601]'")
        key_id = fields[0][len(PREFIX):]
        hexdigest = fields[1][len("sha256:"):].lower()
        if len(key_id) != _ID_LEN or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            raise ValueError("malformed key id or digest")
        attrs: dict[str, str] = {}
        for extra in fields[2:]:
            name, sep, value = extra.partition("=")
            if not sep or name not in ("name", "scopes", "expires"):
                raise ValueError(f"unknown field {extra[:40]!r}")
            attrs[name] = value
        expires = None
        if attrs.get("expires"):
            when = dt.datetime.fromisoformat(attrs["expires"].replace("Z", "+00:00"))
            expires = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()
        scopes = frozenset(s for s in attrs.get("scopes", "").split(",") if s)
        return cls(key_id, hexdigest, attrs.get("name") or key_id, scopes, expires)


def new_api_key(name: str, scopes: Iterable[str] = (), expires_at: float | None = None) -> tuple[str, APIKey]:
    """A fresh key (256 random bits) and its stored entry. Show the key once; store the entry."""
    if not name or any(c.isspace() for c in name):
        raise ValueError("a key's name is one word")
    scopes = frozenset(scopes)
    if any(not s or "," in s or any(c.isspace() for c in s) for s in scopes):
        raise ValueError("a scope is one word without commas")
    key_id = secrets.token_hex(_ID_LEN // 2)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return key, APIKey(key_id, hashlib.sha256(key.encode()).hexdigest(), name, scopes, expires_at)


class APIKeys:
    """The API keys of a server: ``keys`` given in code, the lines of ``path`` and of the
    environment variable ``env`` (lines, or entries separated by ``;``). The file and the variable
    are checked for changes at most every ``reload_interval`` seconds: a key added or removed there
    is honoured without a restart. A file that cannot be read keeps the keys last loaded."""

    method = "api_key"

    def __init__(
        self, keys: Iterable[APIKey] = (), *, path: str | os.PathLike[str] | None = None, env: str | None = None,
        reload_interval: float = 1.0, header: str = "x-api-key", clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._given = tuple(keys)
        self.path = Path(path) if path is not None else None
        self.env = env
        self.reload_interval = reload_interval
        self.header = header.lower().encode()
        self.clock = clock
        self._by_id: dict[str, APIKey] = {}
        self._source: tuple[object, ...] = ()
        self._checked = float("-inf")
        self._load(force=True)

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def fast_ttl(self) -> float:
        """A key is believed until the next check of the file (revocation takes that long)."""
        return self.reload_interval

    def _load(self, *, force: bool = False) -> None:
        self._checked = self.clock()
        stat: object = None
        if self.path is not None:
            try:
                st = self.path.stat()
                stat = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stat = None
        env_text = os.environ.get(self.env, "") if self.env else ""
        source = (stat, env_text)
        if not force and source == self._source:
            return
        entries = list(self._given)
        try:
            if self.path is not None:
                try:
                    entries += _parse_lines(self.path.read_text().splitlines(), str(self.path))
                except OSError as exc:
                    raise ValueError(f"cannot read the API keys file {self.path}: {exc}") from exc
            if env_text:
                entries += _parse_lines(env_text.replace(";", "\n").splitlines(), f"${self.env}")
        except ValueError as exc:
            if force:
                raise
            _log.warning("API keys not reloaded, the previous ones stay: %s", exc)
            return
        self._by_id = {k.id: k for k in entries}
        self._source = source

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        raw = request.headers.get(self.header)
        key = raw.decode("latin-1").strip() if raw is not None else None
        if key is None:
            auth = request.authorization()
            if auth is None or auth[0] != "bearer" or not auth[1].startswith(PREFIX):
                return None
            key = auth[1]
        return self.verify(key)

    def verify(self, key: str) -> Principal:
        if self.clock() - self._checked >= self.reload_interval:
            self._load()
        if not key.startswith(PREFIX) or len(key) < len(PREFIX) + _ID_LEN + 2:
            raise AuthError("the API key is malformed")
        entry = self._by_id.get(key[len(PREFIX):len(PREFIX) + _ID_LEN])
        presented = hashlib.sha256(key.encode()).hexdigest()
        # Compared in constant time; an unknown id is compared with a dummy so both take as long.
        if entry is None or not hmac.compare_digest(presented, entry.digest):
            hmac.compare_digest(presented, "0" * 64)
            raise AuthError("the API key is unknown or revoked")
        if entry.expires_at is not None and entry.expires_at <= time.time():
            raise AuthError("the API key has expired")
        return Principal(
            subject=entry.name, method=self.method, client_id=f"{PREFIX}{entry.id}", scopes=entry.scopes,
            expires_at=entry.expires_at, issuer="api-key",
        )


def _parse_lines(lines: Iterable[str], where: str) -> list[APIKey]:
    out: list[APIKey] = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            out.append(APIKey.parse(text))
        except ValueError as exc:
            raise ValueError(f"{where}:{number}: {exc}") from None
    return out
