"""``anyport install``: each host's file in a temporary HOME, other entries kept, atomic writes with a
backup, files that are not plain JSON left alone, Claude Code through a stand-in ``claude`` on PATH,
and the written command really starting the server."""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from anyport import Client
from anyport.cli._install import config_path, install

NOTES = Path(__file__).parents[2] / "examples" / "notes.py"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME (and working directory), with no XDG/APPDATA override and no claude on PATH."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("APPDATA", raising=False)
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "claude").exists()))
    monkeypatch.chdir(work)
    return home


def run(*args: str) -> Result:
    return CliRunner().invoke(install, list(args), catch_exceptions=False)


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def claude_desktop_file(home: Path) -> Path:
    return config_path("claude-desktop", home=home, environ={})


# -- where each host keeps its file -------------------------------------------------------------------------


def test_the_config_file_of_each_host_on_each_system(tmp_path: Path) -> None:
    home = tmp_path
    mac, win, linux = "darwin", "win32", "linux"
    appdata = {"APPDATA": str(home / "Roaming")}
    support = home / "Library" / "Application Support"
    assert config_path("claude-desktop", system=mac, home=home, environ={}) == support / "Claude" / "claude_desktop_config.json"
    assert config_path("claude-desktop", system=win, home=home, environ=appdata) == home / "Roaming" / "Claude" / "claude_desktop_config.json"
    assert config_path("claude-desktop", system=linux, home=home, environ={}) == home / ".config" / "Claude" / "claude_desktop_config.json"
    assert config_path("claude-desktop", system=linux, home=home, environ={"XDG_CONFIG_HOME": str(home / "x")}) == (
        home / "x" / "Claude" / "claude_desktop_config.json"
    )
    for system in (mac, win, linux):
        assert config_path("cursor", system=system, home=home, environ=appdata) == home / ".cursor" / "mcp.json"
        assert config_path("cursor", system=system, home=home, workspace=tmp_path / "p") == tmp_path / "p" / ".cursor" / "mcp.json"
        assert config_path("vscode", system=system, home=home, workspace=tmp_path / "p") == tmp_path / "p" / ".vscode" / "mcp.json"
    assert config_path("vscode", system=mac, home=home, user=True) == support / "Code" / "User" / "mcp.json"
    assert config_path("vscode", system=win, home=home, environ=appdata, user=True) == home / "Roaming" / "Code" / "User" / "mcp.json"
    assert config_path("vscode", system=linux, home=home, environ={}, user=True) == home / ".config" / "Code" / "User" / "mcp.json"


# -- Claude Desktop -----------------------------------------------------------------------------------------


def test_claude_desktop_keeps_other_entries_and_keys_and_backs_the_file_up(home: Path) -> None:
    path = claude_desktop_file(home)
    path.parent.mkdir(parents=True)
    before = {"globalShortcut": "Ctrl+Space", "mcpServers": {"other": {"command": "other-server", "args": ["--x"]}}}
    path.write_text(json.dumps(before))
    path.chmod(0o640)

    r = run("claude-desktop", str(NOTES), "--env", "NOTES_DIR=/tmp/notes", "--env", "TOKEN=a=b")
    assert r.exit_code == 0, r.output
    after = read(path)
    assert after["globalShortcut"] == "Ctrl+Space" and after["mcpServers"]["other"] == before["mcpServers"]["other"]
    assert after["mcpServers"]["notes"] == {
        "command": sys.executable, "args": ["-m", "anyport", "serve", str(NOTES.resolve())],
        "env": {"NOTES_DIR": "/tmp/notes", "TOKEN": "a=b"},
    }
    assert read(path.with_name(path.name + ".bak")) == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the file's mode is kept
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".bak"]  # no temporary file left

    # The same name again: replaced, not duplicated; the backup is the previous version.
    r = run("claude-desktop", str(NOTES), "--name", "notes")
    assert r.exit_code == 0 and "replaced 'notes'" in r.output, r.output
    assert "env" not in read(path)["mcpServers"]["notes"]
    assert read(path.with_name(path.name + ".bak")) == after


def test_a_new_file_is_created_private(home: Path) -> None:
    r = run("claude-desktop", str(NOTES), "--name", "my notes")
    assert r.exit_code == 0, r.output
    path = claude_desktop_file(home)
    assert list(read(path)["mcpServers"]) == ["my notes"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name(path.name + ".bak").exists()


async def test_the_written_command_starts_the_server(home: Path) -> None:
    """What a host would do with the entry: start it and talk MCP to it over stdio."""
    assert run("claude-desktop", str(NOTES)).exit_code == 0
    entry = read(claude_desktop_file(home))["mcpServers"]["notes"]
    async with Client([entry["command"], *entry["args"]], timeout=30) as client:
        assert "search" in {t.name for t in await client.list_tools()}


def test_a_file_that_is_not_plain_json_is_left_alone(home: Path) -> None:
    path = home / "work.json"
    text = '{\n  // my servers\n  "mcpServers": {},\n}\n'
    path.write_text(text)
    r = CliRunner().invoke(install, ["json", str(NOTES), "--config", str(path)])
    assert r.exit_code == 1 and "not plain JSON" in r.output, r.output
    assert path.read_text() == text and not path.with_name("work.json.bak").exists()
    assert '"notes"' in r.output  # the entry, to add by hand
    path.write_text("[1, 2]")
    r = CliRunner().invoke(install, ["json", str(NOTES), "--config", str(path)])
    assert r.exit_code == 1 and "not an object" in r.output and path.read_text() == "[1, 2]"
    path.write_text('{"mcpServers": []}')
    r = CliRunner().invoke(install, ["json", str(NOTES), "--config", str(path)])
    assert r.exit_code == 1 and path.read_text() == '{"mcpServers": []}'


# -- Cursor, VS Code, json -----------------------------------------------------------------------------------


def test_cursor_user_and_project_files_and_a_url(home: Path) -> None:
    assert run("cursor", str(NOTES)).exit_code == 0
    assert read(home / ".cursor" / "mcp.json")["mcpServers"]["notes"]["args"][-1] == str(NOTES.resolve())
    project = Path.cwd()
    r = run("cursor", "https://mcp.example.com/mcp", "--workspace", str(project), "--header", "Authorization: Bearer t0k")
    assert r.exit_code == 0, r.output
    assert read(project / ".cursor" / "mcp.json") == {
        "mcpServers": {"mcp.example.com": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer t0k"}}},
    }
    assert list(read(home / ".cursor" / "mcp.json")["mcpServers"]) == ["notes"]


def test_vscode_workspace_file_with_types(home: Path) -> None:
    path = Path.cwd() / ".vscode" / "mcp.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"inputs": [{"id": "token", "type": "promptString"}], "servers": {"kept": {"type": "stdio", "command": "x"}}}))
    assert run("vscode", str(NOTES), "--env", "A=1").exit_code == 0
    assert run("vscode", "http://127.0.0.1:8000/mcp", "--name", "local", "--header", "Authorization: Bearer ${input:token}").exit_code == 0
    data = read(path)
    assert data["inputs"] == [{"id": "token", "type": "promptString"}]
    assert data["servers"]["kept"] == {"type": "stdio", "command": "x"}
    assert data["servers"]["notes"] == {
        "type": "stdio", "command": sys.executable, "args": ["-m", "anyport", "serve", str(NOTES.resolve())], "env": {"A": "1"},
    }
    assert data["servers"]["local"] == {
        "type": "http", "url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer ${input:token}"},
    }
    assert run("vscode", str(NOTES), "--user").exit_code == 0
    assert "notes" in read(home / ".config" / "Code" / "User" / "mcp.json")["servers"]


def test_json_prints_an_entry_and_print_writes_nothing(home: Path, tmp_path: Path) -> None:
    r = run("json", str(NOTES) + ":app", "--with", "httpx", "--python", "3.12")
    assert r.exit_code == 0
    entry = json.loads(r.stdout)["mcpServers"]["notes"]
    assert Path(entry["command"]).name.startswith("uv")
    assert entry["args"] == ["run", "--with", "anyport[cli]", "--with", "httpx", "--python", "3.12", "anyport", "serve", f"{NOTES.resolve()}:app"]
    r = run("claude-desktop", str(NOTES), "--print")
    assert r.exit_code == 0 and "nothing written" in r.output and "notes" in json.loads(r.stdout)["mcpServers"]
    assert not claude_desktop_file(home).exists()
    target = tmp_path / "any.json"
    assert run("json", "pkg.module:server", "--config", str(target)).exit_code == 0
    assert read(target)["mcpServers"]["module"]["args"] == ["-m", "anyport", "serve", "pkg.module:server"]


def test_claude_desktop_reaches_a_url_through_a_stdio_bridge(home: Path) -> None:
    assert run("claude-desktop", "https://mcp.example.com/mcp", "--header", "X-Key: 1").exit_code == 0
    assert read(claude_desktop_file(home))["mcpServers"]["mcp.example.com"] == {
        "command": "npx", "args": ["-y", "mcp-remote", "https://mcp.example.com/mcp", "--header", "X-Key: 1"],
    }


def test_bad_input_is_refused_before_anything_is_written(home: Path, tmp_path: Path) -> None:
    for args in (
        ["claude-desktop", str(NOTES), "--env", "NOVALUE"],
        ["claude-desktop", str(tmp_path / "missing.py")],
        ["cursor", "https://x.example/mcp", "--with", "httpx"],
        ["cursor", "https://x.example/mcp", "--env", "A=1"],
        ["cursor", str(NOTES), "--header", "X: 1"],
        ["cursor", "https://x.example/mcp", "--header", "no colon"],
        ["claude-desktop", str(NOTES), "--name", " "],
    ):
        r = CliRunner().invoke(install, args)
        assert r.exit_code == 2, (args, r.output)
    assert not claude_desktop_file(home).exists() and not (home / ".cursor").exists()


def test_env_file(home: Path, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text('# comment\nexport A="1 2"\nB=x\n\nC=\'q\'\n')
    assert run("claude-desktop", str(NOTES), "--env-file", str(env), "--env", "B=y").exit_code == 0
    assert read(claude_desktop_file(home))["mcpServers"]["notes"]["env"] == {"A": "1 2", "B": "y", "C": "q"}


# -- Claude Code ----------------------------------------------------------------------------------------------


def test_claude_code_without_claude_prints_the_command(home: Path) -> None:
    r = run("claude-code", str(NOTES), "--env", "A=1")
    assert r.exit_code == 0
    command = shlex.split(r.stdout.strip())
    assert command == ["claude", "mcp", "add", "--scope", "local", "--env", "A=1", "--transport", "stdio", "notes", "--",
                       sys.executable, "-m", "anyport", "serve", str(NOTES.resolve())]
    assert "not on PATH" in r.output


def test_claude_code_runs_claude_mcp_add(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in `claude` on PATH records how it is called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.jsonl"
    fake = bin_dir / "claude"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\nwith open({str(calls)!r}, 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    r = run("claude-code", "https://mcp.example.com/mcp", "--name", "remote", "--scope", "user", "--header", "Authorization: Bearer t")
    assert r.exit_code == 0, r.output
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert recorded == [
        ["mcp", "remove", "--scope", "user", "remote"],
        ["mcp", "add", "--scope", "user", "--transport", "http", "--header", "Authorization: Bearer t", "remote", "https://mcp.example.com/mcp"],
    ]
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(0 if sys.argv[2] == 'remove' else 3)\n")
    r = CliRunner().invoke(install, ["claude-code", str(NOTES)])
    assert r.exit_code == 1 and "failed (3)" in r.output
