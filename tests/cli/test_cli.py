"""The anyport command, run as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FIXTURE = str(Path(__file__).parents[1] / "interop" / "fixture_server.py")
ANYPORT = [sys.executable, "-m", "anyport"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ANYPORT, *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_call_prints_structured_result() -> None:
    p = run("call", *ANYPORT, "serve", FIXTURE, "--", "add", "a=2", "b=3")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"result": 5}


def test_call_keeps_strings_as_strings_from_the_schema() -> None:
    p = run("call", sys.executable, FIXTURE, "--", "echo", "text=123")
    assert p.returncode == 0 and p.stdout == "123\n"


def test_call_tool_error_exits_1() -> None:
    p = run("call", "--era", "legacy", sys.executable, FIXTURE, "--", "fail")
    assert p.returncode == 1 and p.stdout.strip() == "boom"


def test_call_without_tool_lists_tools() -> None:
    p = run("call", sys.executable, FIXTURE)
    assert p.returncode == 0
    assert [line.split("\t")[0] for line in p.stdout.splitlines()][:3] == ["echo", "add", "weather"]


def test_call_json_output_and_bad_pair() -> None:
    p = run("call", "--json", sys.executable, FIXTURE, "--", "echo", "text=hi")
    assert json.loads(p.stdout)["content"] == [{"type": "text", "text": "hi"}]
    bad = run("call", sys.executable, FIXTURE, "--", "echo", "oops")
    assert bad.returncode == 2 and "key=value" in bad.stderr


def test_call_reports_a_dead_server() -> None:
    p = run("call", sys.executable, "-c", "import sys; sys.exit(4)", "--", "echo")
    assert p.returncode == 1 and "exit code 4" in p.stderr


def test_serve_module_attr_and_errors(tmp_path: Path) -> None:
    (tmp_path / "mymod.py").write_text("from anyport import Server\nsrv = Server('m')\n@srv.tool()\ndef ping2() -> str:\n    return 'pong'\n")
    p = subprocess.run(
        [*ANYPORT, "call", *ANYPORT, "serve", "mymod:srv", "--", "ping2"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )
    assert p.returncode == 0 and p.stdout.strip() == "pong", p.stderr
    missing = subprocess.run([*ANYPORT, "serve", "nope.py"], capture_output=True, text=True, timeout=30, check=False)
    assert missing.returncode != 0 and "no such file" in missing.stderr
    wrong = subprocess.run([*ANYPORT, "serve", f"{FIXTURE}:echo"], capture_output=True, text=True, timeout=30, check=False)
    assert wrong.returncode != 0 and "not an anyport Server" in wrong.stderr


def test_keygen_prints_a_key_the_ring_parses() -> None:
    """Issue 12: `anyport keygen` prints one fresh key on stdout (base64url; --hex: hex) that
    ANYPORT_STATE_KEYS accepts, and says on stderr how to share and rotate it."""
    from anyport.protocol import KeyRing
    from anyport.protocol._seal import _parse_key

    b64, again, hx = run("keygen"), run("keygen"), run("keygen", "--hex")
    for p in (b64, again, hx):
        assert p.returncode == 0, p.stderr
        assert len(p.stdout.splitlines()) == 1
        assert "ANYPORT_STATE_KEYS=" in p.stderr and "<new>,<old>" in p.stderr
    key, key_hex = b64.stdout.strip(), hx.stdout.strip()
    assert len(key) == 43 and len(_parse_key(key)) == 32
    assert len(key_hex) == 64 and _parse_key(key_hex) == bytes.fromhex(key_hex)
    assert key != again.stdout.strip()
    assert key not in b64.stderr  # the key goes to stdout only
    ring = KeyRing([key_hex, key])
    assert KeyRing([key_hex]).open(ring.seal({"x": 1}, binding=b"b"), binding=b"b") == {"x": 1}  # first seals
    assert ring.open(KeyRing([key]).seal({"x": 1}, binding=b"b"), binding=b"b") == {"x": 1}


def test_serve_with_malformed_state_keys_is_one_line(tmp_path: Path) -> None:
    """Issue 12/16: a malformed ANYPORT_STATE_KEYS is one line on stderr and a non-zero exit, no traceback."""
    (tmp_path / "mymod.py").write_text("from anyport import Server\nsrv = Server('m')\n")
    secret = "c2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LWlzLXRvby1sb25n"
    env = {**os.environ, "ANYPORT_STATE_KEYS": f"{'a' * 64},{secret}"}
    p = subprocess.run(
        [*ANYPORT, "serve", "mymod:srv"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, check=False,
    )
    assert p.returncode != 0
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "ANYPORT_STATE_KEYS" in p.stderr and "2nd of 2 keys" in p.stderr
    assert secret not in p.stderr and secret[:12] not in p.stderr
