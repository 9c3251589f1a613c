"""``anyport call URL -- TOOL k=v``: a tool of a server over HTTP from the command line; --login and
--oauth only with a URL."""

from __future__ import annotations

import subprocess

from tests.cli.test_cli_http import ANYPORT, FIXTURE, free_port, serving


def test_call_a_tool_of_a_server_over_http() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving([*ANYPORT, "serve", FIXTURE, "--http", "--port", str(port)], base):
        done = subprocess.run([*ANYPORT, "call", f"{base}/mcp", "--", "add", "a=2", "b=40"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "42" in done.stdout
        listed = subprocess.run([*ANYPORT, "call", "--era", "legacy", f"{base}/mcp"], capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and any(li.startswith("echo\t") for li in listed.stdout.splitlines())


def test_login_needs_a_url() -> None:
    done = subprocess.run([*ANYPORT, "call", "--login", "python", "server.py"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "--login and --oauth are for a server URL" in done.stderr
