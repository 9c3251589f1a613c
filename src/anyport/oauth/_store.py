"""Where the OAuth client keeps what it learned: client registrations and tokens.

A ``TokenStore`` is a small key -> JSON-object map. The keys the client uses:

- ``client <issuer>``: the client identity registered with that authorization server (A-19: keyed by
  the issuer, never reused with another);
- ``tokens <issuer> <resource>``: the tokens that issuer gave for that MCP server (a token is only
  ever sent to the resource it was issued for, A-32);
- ``issuer <resource>``: which issuer the resource named last time, so a new process can send its
  stored token on its first request instead of waiting for a 401.

``MemoryTokenStore`` keeps them for the life of the object. ``FileTokenStore`` (the default) keeps
them in one JSON file, readable by its owner only (A-35), safe for several processes at once: each
change takes an exclusive ``flock`` on a lock file beside it, re-reads the file, applies the change,
writes a temporary file and ``os.replace``-s it in (a reader never sees half a file).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["FileTokenStore", "MemoryTokenStore", "TokenStore", "default_store_path"]


@runtime_checkable
class TokenStore(Protocol):
    """Key -> JSON object. ``set(key, None)`` deletes."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def set(self, key: str, value: dict[str, Any] | None) -> None: ...


class MemoryTokenStore:
    """Everything in this object, nothing on disk: for tests and short-lived programs."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        value = self._data.get(key)
        return json.loads(json.dumps(value)) if value is not None else None  # a copy: callers may change it

    async def set(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = json.loads(json.dumps(value))


def default_store_path() -> Path:
    """``$ANYPORT_OAUTH_STORE``, else ``$XDG_STATE_HOME/anyport/oauth.json`` (``~/.local/state/...``)."""
    explicit = os.environ.get("ANYPORT_OAUTH_STORE")
    if explicit:
        return Path(explicit).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "anyport" / "oauth.json"


class FileTokenStore:
    """One JSON file (mode 0600), changed under an exclusive file lock and replaced atomically.

    Args:
        path: the file (default: ``default_store_path()``); its directory is created (mode 0700).
        lock_timeout: seconds to wait for another process's lock before giving up with ``TimeoutError``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, lock_timeout: float = 10.0) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.lock_timeout = lock_timeout

    async def get(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._get, key)

    async def set(self, key: str, value: dict[str, Any] | None) -> None:
        await asyncio.to_thread(self._set, key, value)

    # -- blocking parts, run in a worker thread --------------------------------------------------

    def _get(self, key: str) -> dict[str, Any] | None:
        value = self._read().get(key)
        return value if isinstance(value, dict) else None

    def _set(self, key: str, value: dict[str, Any] | None) -> None:
        with self._locked():
            data = self._read()
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
            self._write(data)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            return {}  # a damaged file is treated as empty: the next write replaces it whole
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".oauth-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o600)
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str, timeout: float = 600.0) -> AsyncIterator[None]:
        """Hold the lock ``name`` shared with every process using this file (an interactive login
        for one server holds it, so the person is asked once however many processes need a token).
        ``TimeoutError`` after ``timeout`` seconds of waiting for another process."""
        import hashlib

        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        why = f"another process was logging in for {timeout:g} s"
        fd = await asyncio.to_thread(self._lock, f"{self.path}.{digest}.lock", timeout, why)
        try:
            yield
        finally:
            _unlock(fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = self._lock(f"{self.path}.lock", self.lock_timeout, f"another process held its lock for {self.lock_timeout} s")
        try:
            yield
        finally:
            _unlock(fd)

    def _lock(self, lock_path: str, timeout: float, why: str) -> int:
        """An open descriptor of ``lock_path`` holding its exclusive ``flock`` (it blocks: run it in a worker thread)."""
        import fcntl
        import time

        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise TimeoutError(f"{self.path}: {why}") from None
                time.sleep(0.01)
            except BaseException:
                os.close(fd)
                raise


def _unlock(fd: int) -> None:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
