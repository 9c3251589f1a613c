"""Small helpers the verifiers share: a bounded cache of verified credentials keyed by their
digest (the raw token is never kept), and fetching JSON documents (JWKS, introspection, AS metadata)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["TTLCache", "digest", "fetch_json"]

V = TypeVar("V")


def digest(secret: str) -> bytes:
    """BLAKE2b-256 of a credential: what caches are keyed by (never the credential itself)."""
    return hashlib.blake2b(secret.encode(), digest_size=32).digest()


class TTLCache(Generic[V]):
    """At most ``max_entries`` values, each until its own deadline (``clock`` seconds). When full,
    the expired entries go, then the oldest ones."""

    __slots__ = ("_entries", "clock", "max_entries")

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[bytes, tuple[float, V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: bytes, value: V, until: float) -> None:
        if until <= self.clock():
            return
        entries = self._entries
        if len(entries) >= self.max_entries and key not in entries:
            now = self.clock()
            for k in [k for k, (deadline, _) in entries.items() if deadline <= now]:
                del entries[k]
            while len(entries) >= self.max_entries:
                del entries[next(iter(entries))]
        entries[key] = (until, value)

    def discard(self, key: bytes) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


async def fetch_json(
    url: str, *, timeout: float = 5.0, data: Mapping[str, str] | None = None, auth: tuple[str, str] | None = None,
    verify: Any = True,
) -> Any:
    """GET (or, with ``data``, POST a form to) ``url`` and return its JSON; raises ``ValueError``
    naming the URL on any failure (network, status, not JSON)."""
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - httpx is in the auth extra
        raise ImportError("anyport.auth needs httpx: pip install 'anyport[auth]'") from exc
    try:
        async with httpx.AsyncClient(timeout=timeout, verify=verify, follow_redirects=False, trust_env=False) as client:
            if data is None:
                response = await client.get(url, headers={"accept": "application/json"})
            else:
                basic: Any = auth if auth is not None else None
                response = await client.post(url, data=dict(data), auth=basic, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ValueError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise ValueError(f"{url}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise ValueError(f"{url}: not JSON") from exc
