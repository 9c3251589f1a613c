"""Session records: the part of a legacy session any replica can load (DESIGN.md §4)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from anyport.state._clone import clone

__all__ = ["MemorySessionStore", "SessionRecord", "SessionStore"]


@dataclass(slots=True)
class SessionRecord:
    """Plain data: what a replica needs to serve a request of session ``id``."""

    id: str
    version: str | None
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    client_info: dict[str, Any] | None = None
    log_level: str | None = "debug"
    initialized: bool = False
    subscriptions: list[str] = field(default_factory=list)
    principal: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A deep copy as JSON-able data."""
        data: dict[str, Any] = clone(self._plain())
        return data

    def to_json(self) -> bytes:
        """The record as JSON bytes (how a shared store keeps it)."""
        # orjson hands back a buffer with kilobytes of spare room; a copy keeps only the record.
        return bytes(memoryview(orjson.dumps(self._plain())))

    @classmethod
    def from_json(cls, raw: bytes) -> SessionRecord:
        return cls._of(orjson.loads(raw))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        return cls._of(clone(data))

    def _plain(self) -> dict[str, Any]:
        return {
            "id": self.id, "version": self.version, "client_capabilities": self.client_capabilities,
            "client_info": self.client_info, "log_level": self.log_level, "initialized": self.initialized,
            "subscriptions": list(self.subscriptions), "principal": self.principal,
        }

    @classmethod
    def _of(cls, data: dict[str, Any]) -> SessionRecord:
        return cls(
            id=str(data["id"]), version=data.get("version"),
            client_capabilities=dict(data.get("client_capabilities") or {}),
            client_info=data.get("client_info"), log_level=data.get("log_level"),
            initialized=bool(data.get("initialized", False)),
            subscriptions=list(data.get("subscriptions") or []), principal=data.get("principal"),
        )


class SessionStore(Protocol):
    """Where session records live. ``get`` refreshes the sliding TTL; an expired record is gone."""

    async def create(self, record: SessionRecord) -> bool:
        """Store a new record; False when the store is full (the caller answers 503)."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """The record (a copy), or None when unknown, deleted or expired (then: 404, T-HTTP-39)."""
        ...

    async def put(self, record: SessionRecord) -> bool:
        """Replace an existing record (log level, subscriptions, ...); False when it is gone."""
        ...

    async def delete(self, session_id: str) -> bool:
        """Forget the record; False when it did not exist."""
        ...

    async def count(self) -> int:
        """How many records are stored (expired ones may still count until swept)."""
        ...

    async def aclose(self) -> None:
        """Release resources (connections); the in-memory store forgets everything."""
        ...


class MemorySessionStore:
    """Records in this process's memory. ``ttl=None``: records never expire on their own."""

    def __init__(self, *, ttl: float | None = 1800.0, max_records: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_records = max_records
        self._clock = clock
        #: id -> (the record as JSON bytes: one object, as compact as a shared store keeps it, last seen)
        self._records: dict[str, tuple[bytes, float]] = {}

    def _expired(self, seen: float) -> bool:
        return self.ttl is not None and self._clock() - seen > self.ttl

    def _sweep(self) -> None:
        for sid in [sid for sid, (_, seen) in self._records.items() if self._expired(seen)]:
            del self._records[sid]

    async def create(self, record: SessionRecord) -> bool:
        if record.id in self._records and not self._expired(self._records[record.id][1]):
            raise ValueError(f"session {record.id!r} exists already")
        if self.max_records is not None and len(self._records) >= self.max_records:
            self._sweep()
            if len(self._records) >= self.max_records:
                return False
        self._records[record.id] = (record.to_json(), self._clock())
        return True

    async def get(self, session_id: str) -> SessionRecord | None:
        entry = self._records.get(session_id)
        if entry is None:
            return None
        data, seen = entry
        if self._expired(seen):
            del self._records[session_id]
            return None
        self._records[session_id] = (data, self._clock())
        return SessionRecord.from_json(data)

    async def put(self, record: SessionRecord) -> bool:
        if record.id not in self._records:
            return False
        self._records[record.id] = (record.to_json(), self._clock())
        return True

    async def delete(self, session_id: str) -> bool:
        return self._records.pop(session_id, None) is not None

    async def count(self) -> int:
        return len(self._records)

    async def aclose(self) -> None:
        self._records.clear()
