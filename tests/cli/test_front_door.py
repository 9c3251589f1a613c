"""Issue 16 item 6: every start-up error of ``anyport serve``/``bridge``/``call`` is one line on
stderr and a non-zero exit, run as users run it (``python -m anyport``); the user's traceback only
when their own code raised, and never one of anyport's frames."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import anyport

ANYPORT = [sys.executable, "-m", "anyport"]
ANYPORT_SRC = str(Path(anyport.__file__).parent)
OK = "from anyport import Server\napp = Server('ok')\n"


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    return subprocess.run(
        [*ANYPORT, *args], capture_output=True, text=True, timeout=30, check=False, cwd=cwd, env={**clean, **(env or {})},
    )


def one_line(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode != 0, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


@pytest.fixture
def here(tmp_path: Path) -> Path:
    (tmp_path / "ok.py").write_text(OK)
    (tmp_path / "nothing.py").write_text("x = 1\n")
    (tmp_path / "two.py").write_text("from anyport import Server\na = Server('a')\nb = Server('b')\n")
    return tmp_path


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


CASES: list[tuple[str, list[str], dict[str, str], int, str]] = [
    ("missing file", ["serve", "nope.py"], {}, 1, "no such file: nope.py"),
    ("missing module", ["serve", "no_such_module_xyz"], {}, 1, "no such file or module: no_such_module_xyz"),
    ("no Server", ["serve", "nothing.py"], {}, 1, "no anyport Server in nothing.py"),
    ("two Servers", ["serve", "two.py"], {}, 1, "found 2 Server objects in two.py; name one as two.py:NAME"),
    ("attr not a Server", ["serve", "ok.py:Server"], {}, 1, "'ok.py:Server' is not an anyport Server: it is a type"),
    ("attr missing", ["serve", "ok.py:nope"], {}, 1, "'ok.py:nope' is not an anyport Server: ok.py has no 'nope'"),
    ("bad ANYPORT_PORT", ["serve", "ok.py"], {"ANYPORT_PORT": "eighty"}, 2, "ANYPORT_PORT: 'eighty' is not a valid integer range"),
    ("bad ANYPORT_MAX_SESSIONS", ["serve", "ok.py"], {"ANYPORT_MAX_SESSIONS": "0"}, 2, "ANYPORT_MAX_SESSIONS: 0 is not in the range x>=1"),
    ("bad ANYPORT_STATELESS", ["serve", "ok.py"], {"ANYPORT_STATELESS": "maybe"}, 2, "ANYPORT_STATELESS: 'maybe' is not a valid boolean"),
    ("bad flag value", ["serve", "--port", "70000", "ok.py"], {}, 2, "Invalid value for '--port': 70000 is not in the range 0<=x<=65535"),
    ("unknown flag", ["serve", "--prot", "1", "ok.py"], {}, 2, "No such option '--prot'"),
    ("no target", ["serve"], {}, 2, "Missing argument 'TARGET'"),
    ("HTTP flag on stdio", ["serve", "--port", "9000", "ok.py"], {}, 2, "--port: only with --http"),
    ("bad --redis URL", ["serve", "--http", "--redis", "http://cache:6379", "ok.py"], {}, 2, "--redis: not a Redis URL"),
    ("bad ANYPORT_REDIS_URL", ["serve", "--http", "ok.py"], {"ANYPORT_REDIS_URL": "cache:6379"}, 2, "ANYPORT_REDIS_URL: not a Redis URL"),
    ("Redis down", ["serve", "--http", "--redis", "redis://user:hunter2@127.0.0.1:1/0", "ok.py"], {}, 1, "Redis at 127.0.0.1:1/0 is unreachable"),
    ("workers without state", ["serve", "--http", "--workers", "2", "ok.py"], {}, 2, "--workers 2 needs shared state"),
    ("bad rate", ["serve", "--http", "--rate-limit", "lots", "ok.py"], {}, 2, "rate limit:"),
    ("bad certificate", ["serve", "--http", "--port", "0", "--certfile", "ok.py", "ok.py"], {}, 1, "--certfile ok.py: not a PEM certificate"),
    ("half a JWT setup", ["serve", "--http", "--jwt-issuer", "https://as.example", "ok.py"], {}, 2, "--jwt-issuer and --jwks-url go together"),
    ("missing --config", ["serve", "--config", "nope.toml", "ok.py"], {}, 2, "--config nope.toml: no such file"),
    ("missing ANYPORT_CONFIG", ["serve", "ok.py"], {"ANYPORT_CONFIG": "nope.toml"}, 2, "ANYPORT_CONFIG nope.toml: no such file"),
    ("no such subcommand", ["serve-http", "ok.py"], {}, 2, "No such command 'serve-http'"),
    ("call: no such command", ["call", "no-such-command-xyz", "--", "ping"], {}, 1, "cannot start 'no-such-command-xyz'"),
    ("call: bad option value", ["call", "--era", "bogus", "x"], {}, 2, "Invalid value for '--era'"),
    ("bridge: no command", ["bridge"], {}, 2, "Missing argument 'COMMAND...'"),
    ("bridge: bad ANYPORT_PORT", ["bridge", "--", "true"], {"ANYPORT_PORT": "x"}, 2, "ANYPORT_PORT: 'x' is not a valid integer range"),
]


@pytest.mark.parametrize(("args", "env", "code", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_start_up_error_is_one_line(here: Path, args: list[str], env: dict[str, str], code: int, expected: str) -> None:
    p = run(args, here, env)
    line = one_line(p)
    assert p.returncode == code, p.stderr
    assert line.startswith(("Error: ", "error: ")) and expected in line, line
    assert "hunter2" not in p.stderr


def test_a_port_in_use_is_one_line_before_the_module_is_imported(here: Path, taken_port: int) -> None:
    (here / "loud.py").write_text("import sys\nsys.stderr.write('imported\\n')\n" + OK)
    p = run(["serve", "--http", "--port", str(taken_port), "loud.py"], here)
    assert one_line(p) == f"Error: cannot listen on 127.0.0.1:{taken_port}: address already in use (another server is running there?)"
    assert p.returncode == 1


def test_a_host_that_does_not_resolve_is_one_line(here: Path) -> None:
    p = run(["serve", "--http", "--host", "no-such-host.invalid", "--port", "8123", "ok.py"], here)
    assert one_line(p).startswith("Error: cannot listen on no-such-host.invalid:8123: ")


def _user_traceback(p: subprocess.CompletedProcess[str]) -> tuple[list[str], str]:
    assert p.returncode == 1
    lines = p.stderr.rstrip().splitlines()
    assert lines[0].startswith(("Traceback (most recent call last):", "  File ")), p.stderr
    assert f'File "{ANYPORT_SRC}' not in p.stderr and "<frozen importlib" not in p.stderr, p.stderr
    return lines[:-1], lines[-1]


def test_a_module_that_raises_shows_its_own_traceback_then_one_line(here: Path) -> None:
    (here / "boom.py").write_text("import helper\n" + OK)
    (here / "helper.py").write_text("def fail() -> None:\n    raise RuntimeError('no DATABASE_URL')\n\nfail()\n")
    shown, last = _user_traceback(run(["serve", "boom.py"], here))
    assert any('boom.py", line 1' in s for s in shown) and any('helper.py", line 2, in fail' in s for s in shown)
    assert shown[-1] == "RuntimeError: no DATABASE_URL"
    assert last == "Error: boom.py raised RuntimeError: no DATABASE_URL while it was imported (traceback above)"


def test_a_module_importing_a_missing_package_is_the_users_error(here: Path) -> None:
    (here / "needs.py").write_text("import no_such_dependency_xyz\n" + OK)
    shown, last = _user_traceback(run(["serve", "needs"], here))  # as a module name this time
    assert shown[-1] == "ModuleNotFoundError: No module named 'no_such_dependency_xyz'"
    assert last.startswith("Error: needs raised ModuleNotFoundError")


def test_a_syntax_error_points_at_the_line(here: Path) -> None:
    (here / "syn.py").write_text("def f(:\n    pass\n")
    shown, last = _user_traceback(run(["serve", "--http", "syn.py"], here))
    assert any('syn.py", line 1' in s for s in shown) and shown[-1].startswith("SyntaxError")
    assert last.startswith("Error: syn.py raised SyntaxError")


def test_anyport_alone_prints_the_help_not_an_error(here: Path) -> None:
    p = run([], here)
    shown = p.stderr or p.stdout  # stdout with click 8.1
    assert shown.startswith("Usage: anyport [OPTIONS] COMMAND") and "Commands:" in shown and "Error" not in shown
    assert p.returncode in (0, 2)  # click 8.1 exits 0, click >= 8.2 exits 2
