"""Token stores: the file store is safe for several processes at once (lock + atomic replace, 0600)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import stat
from pathlib import Path

import pytest

from anyport.oauth import FileTokenStore, MemoryTokenStore, default_store_path

WRITERS = 4
KEYS_EACH = 25


def _writer(path: str, n: int) -> None:
    store = FileTokenStore(path)

    async def main() -> None:
        for i in range(KEYS_EACH):
            await store.set(f"tokens w{n} k{i}", {"access_token": f"{n}-{i}", "pad": "x" * 200})

    asyncio.run(main())


def test_concurrent_writers_from_several_processes_lose_nothing(tmp_path: Path) -> None:
    """A-35 (secure storage) and the brief: several processes write at once; every key survives,
    the file is always whole JSON, readable by its owner only."""
    path = tmp_path / "state" / "oauth.json"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), n)) for n in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    data = json.loads(path.read_text())
    assert len(data) == WRITERS * KEYS_EACH
    assert all(data[f"tokens w{n} k{i}"]["access_token"] == f"{n}-{i}" for n in range(WRITERS) for i in range(KEYS_EACH))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]  # no temporary file left behind


async def test_file_store_round_trip_delete_and_damage(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "s.json")
    assert await store.get("k") is None
    await store.set("k", {"a": 1})
    assert await store.get("k") == {"a": 1}
    await store.set("k", None)
    assert await store.get("k") is None
    (tmp_path / "s.json").write_text("{not json")
    assert await store.get("k") is None  # a damaged file reads as empty ...
    await store.set("k", {"b": 2})  # ... and the next write replaces it whole
    assert json.loads((tmp_path / "s.json").read_text()) == {"k": {"b": 2}}


async def test_lock_wait_is_bounded(tmp_path: Path) -> None:
    import fcntl
    import os

    store = FileTokenStore(tmp_path / "s.json", lock_timeout=0.2)
    fd = os.open(tmp_path / "s.json.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another "process" holds the lock
    try:
        with pytest.raises(TimeoutError, match="lock"):
            await store.set("k", {"a": 1})
    finally:
        os.close(fd)


async def test_memory_store_returns_copies() -> None:
    store = MemoryTokenStore()
    await store.set("k", {"a": [1]})
    got = await store.get("k")
    assert got is not None
    got["a"].append(2)
    assert await store.get("k") == {"a": [1]}


def test_default_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANYPORT_OAUTH_STORE", str(tmp_path / "x.json"))
    assert default_store_path() == tmp_path / "x.json"
    monkeypatch.delenv("ANYPORT_OAUTH_STORE")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "anyport" / "oauth.json"
