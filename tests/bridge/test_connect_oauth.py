"""``anyport connect URL --oauth``: a remote server behind OAuth 2.1 brought to a stdio host, and the
mcp-remote failure it must not repeat (hosts start several copies at once, which raced on the
login): concurrent connect processes sharing one token file ask the person once.

The authorization server is the toy one of tests/oauth (a real uvicorn on loopback that approves
everyone); the "browser" is a script named by ``BROWSER`` (Python's webbrowser honours it) that
follows the authorization redirect to connect's loopback listener, as a person's browser would."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.oauth._servers import Protected, ToyAS, toy_servers

CONNECT = [sys.executable, "-m", "anyport.cli._bridge", "connect"]
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "host", "version": "1"}}}


@pytest.fixture
def servers() -> Iterator[tuple[ToyAS, Protected]]:
    with toy_servers() as both:
        yield both


def _browser(tmp: Path) -> dict[str, str]:
    """An environment whose browser follows the authorization to connect's listener and writes down each
    page it got (``tmp/visits``): a listener that could not answer while the browser ran would leave none."""
    script = tmp / "browser.py"
    script.write_text(textwrap.dedent(f"""\
        import sys, httpx
        r = httpx.get(sys.argv[1], follow_redirects=True, timeout=10)
        if r.status_code == 200:
            with open({str(tmp / "visits")!r}, "a") as f:
                f.write("ok\\n")
    """))
    return {**os.environ, "BROWSER": f"{sys.executable} {script} %s"}


def _session(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """initialize, initialized and tools/list on the process's stdin; its answers from stdout."""
    assert proc.stdin is not None and proc.stdout is not None
    for message in (INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}):
        proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()
    answers = []
    while len(answers) < 2:
        line = proc.stdout.readline()
        assert line, "connect ended before answering"
        msg = json.loads(line)  # T-STDIO-03: nothing but JSON-RPC messages on stdout
        if "id" in msg:
            answers.append(msg)
    return answers


def test_concurrent_connect_processes_share_one_login(servers: tuple[ToyAS, Protected], tmp_path: Path) -> None:
    """A-21 (a loopback redirect, RFC 8252), A-35 (the token file 0600): three connect processes started
    together log in once between them; each serves the protected remote's tools on its stdio."""
    auth, resource = servers
    store = tmp_path / "state" / "oauth.json"
    env = _browser(tmp_path)
    procs = [
        subprocess.Popen([*CONNECT, resource.url, "--oauth", "--token-store", str(store)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    try:
        for proc in procs:
            init, tools = _session(proc)
            assert init["result"]["serverInfo"]["name"] == "protected"
            assert [t["name"] for t in tools["result"]["tools"]] == ["whoami"]
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            proc.wait(20)
    assert len(auth.paths("/authorize")) == 1, "each process asked the person"
    assert (tmp_path / "visits").read_text() == "ok\n"  # the browser got the listener's page
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert all(p.returncode == 0 for p in procs)


def test_a_later_connect_uses_the_stored_token_without_a_login(servers: tuple[ToyAS, Protected], tmp_path: Path) -> None:
    auth, resource = servers
    store = tmp_path / "oauth.json"
    env = _browser(tmp_path)
    for _ in range(2):
        proc = subprocess.Popen([*CONNECT, resource.url, "--oauth", "--token-store", str(store)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert _session(proc)[1]["result"]["tools"]
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(20)
    assert len(auth.paths("/authorize")) == 1
    assert (tmp_path / "visits").read_text() == "ok\n"


def test_connect_oauth_errors_are_one_line(servers: tuple[ToyAS, Protected], tmp_path: Path) -> None:
    """Without --oauth a protected remote is refused with a clear line (no traceback, nothing on stdout);
    --scope without --oauth and --oauth with an Authorization header are usage errors."""
    _auth, resource = servers
    done = subprocess.run([*CONNECT, resource.url], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert f"cannot connect to {resource.url}" in done.stderr
    done = subprocess.run([*CONNECT, resource.url, "--scope", "mcp"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "go with --oauth" in done.stderr
    done = subprocess.run([*CONNECT, resource.url, "--oauth", "--header", "Authorization: Bearer x"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "one or the other" in done.stderr
