"""The ``bridge`` and ``connect`` click commands: help, usage errors, and a real start-up from the CLI."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from click.testing import CliRunner

from anyport.cli._bridge import bridge, commands, connect
from tests.bridge._helpers import rogue, wait_ready


def test_help_names_every_option() -> None:
    runner = CliRunner()
    out = runner.invoke(bridge, ["--help"]).output
    for option in ("--shared", "--min", "--max", "--spares", "--concurrency", "--idle-timeout", "--grace",
                   "--call-timeout", "--env", "--pass-header", "--child-era", "--allowed-host", "--rate-limit",
                   "--max-sessions", "--no-watchdog"):
        assert option in out
    assert "--header" in runner.invoke(connect, ["--help"]).output


def test_usage_errors_are_one_line_and_exit_2() -> None:
    runner = CliRunner()
    cases = [
        (["bridge"], "Missing argument"),
        (["bridge", "--min", "5", "--max", "2", "--", "x"], "--min"),
        (["bridge", "--env", "BAD NAME", "--", "x"], "NAME or NAME=VALUE"),
        (["bridge", "--pass-header", "Authorization", "--", "x"], "never passed"),
        (["bridge", "--path", "mcp", "--", "x"], "--path must start with '/'"),
        (["bridge", "--rate-limit", "lots", "--", "x"], "lots"),
        (["connect", "http://127.0.0.1:9/mcp", "--header", "no colon"], "NAME: VALUE"),
    ]
    for argv, message in cases:
        result = runner.invoke(commands, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert message in result.output, (argv, result.output)


def test_a_command_that_cannot_start_is_exit_1_with_the_reason() -> None:
    """The command exits at once: one line saying why (its exit status, its stderr), exit status 1."""
    argv = [sys.executable, "-m", "anyport.cli._bridge", "bridge", "--port", "0", "--", *rogue("exit-at-start")]
    proc = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    last = proc.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("Error: the stdio server did not start") and "missing configuration" in last


def test_a_port_in_use_is_one_line_before_any_child_starts() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "anyport", "bridge", "--port", str(port), "--", sys.executable, "-c", "pass"],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 1, done.stderr
    lines = [li for li in done.stderr.splitlines() if li.strip()]
    assert lines == [f"Error: cannot listen on 127.0.0.1:{port}: address already in use (another server is running there?)"], lines


def test_bridge_takes_serves_auth_and_metrics_options(tmp_path: Any) -> None:
    """issue 15: the bridge has what `anyport serve --http` has in front of it: an API key is asked
    for (401 without, 200 with) and the bridged calls are counted on --metrics-port."""
    import socket

    import httpx

    from anyport.auth import new_api_key
    from tests.bridge._helpers import call, initialize

    key, entry = new_api_key("ci")
    keys = tmp_path / "keys.txt"
    keys.write_text(entry.line() + "\n")

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    p, m = port(), port()
    argv = [sys.executable, "-m", "anyport", "bridge", "--port", str(p), "--api-keys", str(keys), "--metrics-port", str(m),
            "--", *rogue()]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{p}"
        wait_ready(base, proc)
        with httpx.Client(base_url=base, timeout=10) as c:
            refused = c.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                             headers={"Accept": "application/json, text/event-stream"})
            assert refused.status_code == 401 and "resource_metadata" in refused.headers["www-authenticate"]
            c.headers["x-api-key"] = key
            headers = initialize(c)
            call(c, headers, 2, "ping")
        text = httpx.get(f"http://127.0.0.1:{m}/metrics", timeout=10).text
        assert any(li.startswith("mcp_server_operation_duration_seconds_count{") and 'mcp_method_name="tools/call"' in li
                   for li in text.splitlines()), text[-2000:]
        assert 'anyport_rejected_requests_total{reason="auth"} 1.0' in text
    finally:
        proc.terminate()
        proc.wait(20)
