"""Real redis-server processes for the tests: started on free loopback ports in a temporary folder,
stopped afterwards. Never the Redis a machine may already run on port 6379.

``scripts/ensure-redis`` (run by ``make test``) installs redis-server and redis-cli when missing.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["RedisServer", "free_port", "redis_cluster", "redis_keys", "redis_server"]

MISSING = "redis-server and redis-cli are needed (make test installs them with scripts/ensure-redis)"


def free_port() -> int:
    """A free TCP port on loopback whose +10000 twin (the cluster bus port) is free too."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found")


class RedisServer:
    """One redis-server process on ``127.0.0.1:port``."""

    def __init__(self, folder: Path, port: int, *extra: str) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, MISSING
        self.port = port
        self.folder = folder
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, MISSING
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--daemonize", "no", "--protected-mode", "yes", *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # a server that never answered is not left running
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}")
            answer = self.cli("PING", check=False)
            if answer == "PONG" or answer.startswith("NOAUTH"):  # up (a server with a password says so)
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout} s")

    def cli(self, *args: str, check: bool = True) -> str:
        binary = shutil.which("redis-cli")
        assert binary is not None, MISSING
        out = subprocess.run(
            [binary, "-h", "127.0.0.1", "-p", str(self.port), *args], capture_output=True, text=True, timeout=30, check=False,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(args)}: {out.stderr or out.stdout}")
        return out.stdout.strip()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="anyport-redis-") as folder:
        server = RedisServer(Path(folder), free_port())
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def redis_cluster(masters: int = 3) -> Iterator[list[RedisServer]]:
    """A real Redis Cluster of ``masters`` nodes (no replicas), every slot assigned."""
    with tempfile.TemporaryDirectory(prefix="anyport-redis-cluster-") as folder:
        nodes: list[RedisServer] = []
        try:
            for i in range(masters):
                node_dir = Path(folder) / str(i)
                node_dir.mkdir()
                nodes.append(RedisServer(
                    node_dir, free_port(), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "5000",
                ))
            addresses = [f"127.0.0.1:{n.port}" for n in nodes]
            nodes[0].cli("--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if all("cluster_state:ok" in n.cli("CLUSTER", "INFO", check=False) for n in nodes):
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("the Redis cluster did not reach cluster_state:ok")
            yield nodes
        finally:
            for node in nodes:
                node.stop()


async def redis_keys(state: Any) -> list[bytes]:
    """Every key of ``state``'s prefix (an ``anyport.state.RedisState``), over every node of a cluster."""
    return [k async for k in state.client.scan_iter(match=f"{state.prefix}:*", count=1000)]
