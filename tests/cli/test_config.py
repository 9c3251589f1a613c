"""Issue 16 item 2: one settings file (anyport.toml, or [tool.anyport] in pyproject.toml) for serve
and bridge: flag > ANYPORT_* > file > default, ``anyport config show``, one-line errors naming the key."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from anyport.cli._main import cli

ANYPORT = [sys.executable, "-m", "anyport"]
ROW = re.compile(r"^(\S+)\s+(.*?)\s{2,}(\S.*)$")


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ANYPORT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def show(*args: str, env: dict[str, str] | None = None) -> dict[str, tuple[object, str]]:
    """``anyport config show ARGS``, as {key: (value, source)}."""
    result = CliRunner().invoke(cli, ["config", "show", *args], env=env)
    assert result.exit_code == 0, result.output
    rows: dict[str, tuple[object, str]] = {}
    for line in result.stdout.splitlines():
        if line.startswith("#"):
            continue
        match = ROW.match(line)
        assert match, line
        key, value, source = match.groups()
        rows[key] = (None if value == "-" else json.loads(value), source)
    return rows


def error(*args: str, env: dict[str, str] | None = None) -> str:
    """The one line of a failing command (exit 2)."""
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    (tmp_path / "anyport.toml").write_text('[serve]\nport = 9001\nhost = "0.0.0.0"\nredis-prefix = "svc"\n')
    rows = show("serve")
    assert rows["port"] == (9001, "file anyport.toml:serve.port")
    assert rows["path"] == ("/mcp", "default")
    env = {"ANYPORT_PORT": "9002", "ANYPORT_HOST": "127.0.0.2"}
    rows = show("serve", "--port", "9003", env=env)
    assert rows["port"] == (9003, "flag")
    assert rows["host"] == ("127.0.0.2", "env ANYPORT_HOST")
    assert rows["redis-prefix"] == ("svc", "file anyport.toml:serve.redis-prefix")


def test_pyproject_tool_anyport_unless_there_is_an_anyport_toml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.anyport.serve]\nmax-sessions = 7\n')
    assert show("serve")["max-sessions"] == (7, "file pyproject.toml:tool.anyport.serve.max-sessions")
    (tmp_path / "anyport.toml").write_text("[serve]\nmax-sessions = 8\n")
    assert show("serve")["max-sessions"] == (8, "file anyport.toml:serve.max-sessions")


def test_a_pyproject_without_tool_anyport_is_no_settings_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    result = CliRunner().invoke(cli, ["config", "show"])
    assert result.exit_code == 0 and result.stdout.startswith("# no settings file")


def test_top_level_keys_hold_for_every_command_and_a_section_overrides(tmp_path: Path) -> None:
    (tmp_path / "anyport.toml").write_text(
        'port = 9100\nallowed-host = ["mcp.example"]\n[serve]\nport = 9200\n[bridge]\nshared = true\ncommand = "node server.js --flag"\n'
    )
    serve, bridge = show("serve"), show("bridge")
    assert serve["port"] == (9200, "file anyport.toml:serve.port") and bridge["port"] == (9100, "file anyport.toml:port")
    assert serve["allowed-host"][0] == bridge["allowed-host"][0] == ["mcp.example"]
    assert bridge["command"] == (["node", "server.js", "--flag"], "file anyport.toml:bridge.command")
    assert bridge["shared"] == (True, "file anyport.toml:bridge.shared")


def test_groups_and_both_spellings(tmp_path: Path) -> None:
    (tmp_path / "anyport.toml").write_text(
        "[serve.limits]\nmax_sessions = 3\nbody-timeout = 2.5\n[serve.observe]\naccess-log = true\n"
        '[serve.auth]\njwt-issuer = "https://as.example"\n[serve.http]\nlegacy-sse = false\ntrusted_proxies = ["10.0.0.1"]\n'
    )
    rows = show("serve")
    assert rows["max-sessions"] == (3, "file anyport.toml:serve.limits.max_sessions")
    assert rows["body-timeout"][0] == 2.5 and rows["access-log"][0] is True and rows["legacy-sse"][0] is False
    assert rows["jwt-issuer"][0] == "https://as.example" and rows["trusted-proxy"][0] == ["10.0.0.1"]


def test_config_flag_and_env_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "deploy"
    conf.mkdir()
    (conf / "cert.pem").write_text("x")
    (conf / "settings.toml").write_text('[serve]\ncertfile = "cert.pem"\ntarget = "app.py:srv"\n')
    rows = show("serve", "--config", "deploy/settings.toml")
    assert rows["certfile"] == ("deploy/cert.pem", "file deploy/settings.toml:serve.certfile")
    assert rows["target"][0] == "deploy/app.py:srv"
    rows = show("serve", env={"ANYPORT_CONFIG": str(conf / "settings.toml")})
    assert rows["certfile"][0] == str(conf / "cert.pem")


def test_secrets_are_redacted(tmp_path: Path) -> None:
    (tmp_path / "anyport.toml").write_text(
        '[serve]\nredis = "rediss://app:s3cret@cache.example:6380/0"\nintrospection-client-secret = "topsecret"\n'
    )
    result = CliRunner().invoke(cli, ["config", "show", "serve"])
    assert "s3cret" not in result.output and "topsecret" not in result.output
    rows = show("serve")
    assert rows["redis"][0] == "rediss://app:***@cache.example:6380/0"
    assert rows["introspection-client-secret"][0] == "***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[serve]\nprot = 1\n", "anyport.toml: serve.prot: unknown key (did you mean port?)"),
        ("workerz = 2\n", "anyport.toml: workerz: unknown key (did you mean workers?)"),
        ("[serve.limit]\nmax-sessions = 1\n", "anyport.toml: serve.limit: unknown key (did you mean limits?)"),
        ("[serv]\nport = 1\n", "anyport.toml: serv: unknown key (did you mean serve?)"),
        ('[serve]\nport = "eighty"\n', "anyport.toml: serve.port: 'eighty' is not a valid integer range."),
        ("[serve.limits]\nmax-sessions = 0\n", "anyport.toml: serve.limits.max-sessions: 0 is not in the range x>=1."),
        ('[serve]\nlog-level = "loud"\n', "anyport.toml: serve.log-level: 'loud' is not one of"),
        ('[serve]\ncertfile = "missing.pem"\n', "anyport.toml: serve.certfile: File "),
        ('[serve]\nport = [1, 2]\n', "anyport.toml: serve.port: expected one value, not a list"),
        ("[bridge]\nmax = 0\n", "anyport.toml: bridge.max: 0 is not in the range x>=1."),
        ("serve = 1\n", "anyport.toml: serve: expected a table ([serve])"),
        ("port = \n", "anyport.toml: not valid TOML: "),
    ],
)
def test_a_bad_file_is_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "anyport.toml").write_text(text)
    assert error("serve", "app.py").startswith(f"Error: {expected}")
    assert error("config", "show").startswith(f"Error: {expected}")


def test_a_bad_key_in_pyproject_names_the_whole_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.anyport.serve]\nmax-sesions = 1\n")
    assert error("serve", "app.py") == "Error: pyproject.toml: tool.anyport.serve.max-sesions: unknown key (did you mean max-sessions?)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_server_started_from_the_file_alone(tmp_path: Path) -> None:
    """Every setting from anyport.toml, the target included: ``anyport serve`` with no argument."""
    (tmp_path / "app.py").write_text(
        "from anyport import Server\napp = Server('filed')\n@app.tool()\ndef ping() -> str:\n    return 'pong'\n"
    )
    port = _free_port()
    (tmp_path / "anyport.toml").write_text(f'[serve]\ntarget = "app.py"\ntransport = "http"\nport = {port}\nstateless = true\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    proc = subprocess.Popen([*ANYPORT, "serve"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            call = subprocess.run(
                [*ANYPORT, "call", f"http://127.0.0.1:{port}/mcp", "--", "ping"], capture_output=True, text=True, timeout=30,
                check=False, env=env,
            )
            if call.returncode == 0:
                break
            assert time.monotonic() < deadline, call.stderr
            time.sleep(0.2)
        assert call.stdout.strip() == "pong"
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.stderr is not None and f"'filed' at http://127.0.0.1:{port}/mcp" in proc.stderr.read()


def test_bridge_reads_the_file_too() -> None:
    """``bridge`` gets ``--config`` from the group (its own module unchanged)."""
    bridge = cli.commands["bridge"]
    assert any(p.name == "config_file" for p in bridge.params)
    from anyport.cli._bridge import bridge as original

    assert not any(p.name == "config_file" for p in original.params)


def test_http_in_the_file_yields_to_transport_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "anyport.toml").write_text("[serve]\nhttp = true\n")
    # the file's http = true is in effect: HTTP-only checks run
    assert error("serve", "--path", "mcp", "app.py") == "Error: --path must start with '/'"
    # --transport stdio on the command line is nearer than the file: stdio, where --path is refused
    assert error("serve", "--transport", "stdio", "--path", "/x", "app.py") == "Error: --path: only with --http"
    assert error("serve", "--transport", "stdio", "--http", "app.py") == "Error: --http contradicts --transport stdio"


def test_a_bad_redis_url_in_the_file_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "anyport.toml").write_text('[serve.state]\nredis = "cache:6379"\n')
    assert error("serve", "--http", "app.py").startswith("Error: anyport.toml: serve.state.redis: not a Redis URL")


def test_an_explicit_pyproject_needs_tool_anyport(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert error("serve", "--config", "other/pyproject.toml", "app.py") == "Error: other/pyproject.toml: no [tool.anyport] table"
    (tmp_path / "other" / "pyproject.toml").write_text("[tool.anyport.bridge]\nspares = 2\n")
    assert show("bridge", "--config", "other/pyproject.toml")["spares"] == (2, "file other/pyproject.toml:tool.anyport.bridge.spares")


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("redis", "redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis", "rediss://u:pw@[::1]/1?cluster=1", "rediss://u:***@[::1]/1?cluster=1"),
        ("redis", "redis://cache:6379", "redis://cache:6379"),
        ("jwks_url", "https://u:pw@as.example/jwks", "https://u:***@as.example/jwks"),
        ("introspection_client_secret", "s", "***"),
        ("allowed_hosts", ("a", "b"), ["a", "b"]),
        ("port", 8000, 8000),
        ("rate_limit", None, None),
    ],
)
def test_redact(name: str, value: object, shown: object) -> None:
    from anyport.cli._config import redact

    assert redact(name, value) == shown
