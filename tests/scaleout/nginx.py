"""A real nginx in front of the scale-out replicas: the load balancer of a production topology.

``nginx_balancer(ports)`` writes a config into a temporary folder (pid file, error log, access log and
every temp path there), starts ``nginx -c CONF -p FOLDER -e ERROR_LOG`` in the foreground on a free
loopback port, waits until it proxies ``/readyz`` and stops it (and only it) at the end.

The upstream is the default round robin with no stickiness at all (no ``ip_hash``, ``hash`` or
cookie): every request goes to the next replica, whatever session it belongs to and whatever client
connection it came on. Upstream keep-alive connections are pooled per replica *after* the balancer has
chosen one, so they never pin a client to a replica; the tests check it with the answering pids and
with the access log, which records the replica (``$upstream_addr``) and the JSON-RPC body of each
request.

``scripts/ensure-nginx`` (run by ``make test``) installs nginx when missing.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.redis_servers import free_port

__all__ = ["Nginx", "nginx_balancer", "nginx_binary"]

MISSING = "nginx is needed for the scale-out load-balancer tests (make test installs it with scripts/ensure-nginx)"

#: uvicorn (what `anyport serve --http` runs) closes an idle keep-alive connection after 5 s; nginx must
#: drop a pooled upstream connection before that, or it may send a request on a socket being closed.
UPSTREAM_KEEPALIVE_TIMEOUT = "4s"

CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {folder}/nginx.pid;
error_log {folder}/error.log info;

events {{
    worker_connections 256;
}}

http {{
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;

    # One JSON line a request: which replica served it, and the JSON-RPC message it carried.
    log_format balancer escape=json
        '{{"method":"$request_method","uri":"$uri","status":"$status","upstream":"$upstream_addr",'
        '"session":"$http_mcp_session_id","body":"$request_body"}}';
    access_log {folder}/access.log balancer;

    upstream replicas {{
        # The default round robin: no ip_hash, no hash, no sticky cookie.
{servers}
{keepalive}
    }}

    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        # nginx closes a client's keep-alive connection after 1000 requests by default; an MCP client
        # sends many small requests on one connection.
        keepalive_requests 100000;

        location / {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The replicas allow local names on any port: they see 127.0.0.1:<this port>.
            proxy_set_header Host $host:$server_port;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # Streamable HTTP answers with SSE streams: pass every event on at once, never cache.
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            # A POST is never retried on another replica (nginx's default for non-idempotent requests).
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    """The nginx executable (Debian puts it in /usr/sbin, which a non-root PATH may lack)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/usr/local/nginx/sbin")
    assert found is not None, MISSING
    return found


class Nginx:
    """A running nginx: its port, folder and access log."""

    def __init__(self, folder: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.folder = folder
        self.port = port
        self.proc = proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[dict[str, Any]]:
        """Every request nginx has logged, in order; ``body`` is the parsed JSON-RPC message (or None)."""
        path = self.folder / "access.log"
        entries: list[dict[str, Any]] = []
        if not path.exists():
            return entries
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            entry: dict[str, Any] = json.loads(line)
            body = entry.get("body") or ""
            try:
                entry["body"] = json.loads(body) if body else None
            except json.JSONDecodeError:
                entry["body"] = None
            entries.append(entry)
        return entries


def _config(folder: Path, port: int, upstreams: list[int], keepalive: int) -> str:
    # As root the worker would switch to nginx's compiled-in user, which cannot write the temp folder.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in upstreams)
    pool = f"        keepalive {keepalive};\n        keepalive_timeout {UPSTREAM_KEEPALIVE_TIMEOUT};" if keepalive else ""
    return CONFIG.format(user=user, folder=folder, port=port, servers=servers, keepalive=pool)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM: a fast shutdown, the master stops its worker and closes the open SSE streams. If it
    hangs, SIGKILL to the process group nginx was started in (its master and worker, nothing else),
    sent while the master is not yet reaped so the group id cannot belong to anyone else."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], folder: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            log = (folder / "error.log").read_text(errors="replace") if (folder / "error.log").exists() else ""
            raise RuntimeError(f"nginx exited with {proc.returncode}: {err}{log[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nginx on port {port} did not proxy /readyz within {timeout} s")


@contextlib.contextmanager
def nginx_balancer(upstreams: list[int], *, keepalive: int = 16, timeout: float = 15.0) -> Iterator[Nginx]:
    """nginx on a free loopback port, balancing round robin over ``127.0.0.1:<upstreams>``.

    ``keepalive`` is the size of nginx's pool of idle upstream connections (0: a new connection per
    request). Either way each request is balanced on its own.
    """
    binary = nginx_binary()
    with tempfile.TemporaryDirectory(prefix="anyport-nginx-") as name:
        folder = Path(name)
        port = free_port()
        conf = folder / "nginx.conf"
        conf.write_text(_config(folder, port, upstreams, keepalive))
        proc = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stopped as one, apart from pytest
        )
        try:
            _wait_ready(port, proc, folder, timeout)
            yield Nginx(folder, port, proc)
        finally:
            _stop(proc)
