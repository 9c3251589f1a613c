"""node-oidc-provider (tests/auth/as) as a process on a free loopback port, installed with npm
when its node_modules are missing; and a browser stand-in that follows an authorization URL to its
redirect (the AS signs the test user in and grants what was asked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
AS_DIR = Path(__file__).resolve().parent / "as"
NODE_BIN = ROOT / "tests" / "conformance" / "node_modules" / ".bin"
TS_PEERS = ROOT / "tests" / "interop" / "peers" / "ts"


def node() -> str | None:
    found = shutil.which("node", path=f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return found


def ensure_installed() -> str | None:
    """Why the AS cannot run (None: it can)."""
    exe = node()
    if exe is None:
        return "node is not installed (scripts/ensure-node)"
    if not (AS_DIR / "node_modules" / "oidc-provider").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not installed"
        env = {**os.environ, "PATH": f"{Path(exe).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AS_DIR, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            return f"npm ci failed: {done.stderr[-500:]}"
    return None


@contextmanager
def authorization_server(scopes: str = "tools.read tools.write") -> Iterator[dict[str, str]]:
    exe = node()
    assert exe is not None
    proc = subprocess.Popen([exe, "server.mjs", "--port", "0", "--scopes", scopes], cwd=AS_DIR,
                            stdout=subprocess.PIPE, stderr=None if os.environ.get("AS_DEBUG") else subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the authorization server did not start: {proc.stderr.read() if proc.stderr else ''}")
        yield json.loads(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def follow_to_redirect(url: str, redirect_prefix: str, max_hops: int = 10) -> dict[str, str]:
    """GET ``url`` and its redirects (with cookies) until one points at ``redirect_prefix``; the
    query parameters of that last redirect (code, state, iss)."""
    hops: list[str] = []
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        for _ in range(max_hops):
            hops.append(url)
            r = browser.get(url)
            location = r.headers.get("location")
            if r.status_code not in (302, 303) or not location:
                raise RuntimeError(f"the authorization server answered {r.status_code}: {r.text[:300]}")
            url = urljoin(url, location)
            if url.startswith(redirect_prefix):
                return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    raise RuntimeError("too many redirects: " + " -> ".join(h[:120] for h in hops))
