"""A stdio server whose stdin or stdout is a regular file, not a pipe.

``anyport serve app.py < requests.jsonl > answers.jsonl`` is how people replay a session or script a
server. An event loop cannot poll a regular file (uvloop aborts the process on it), so the stdio
transport reads and writes such files directly. Each test checks every answer arrives, in full,
and that the server exits on EOF (T-STDIO-11) with status 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "interop" / "fixture_server.py"
CALLS = 200


def _requests() -> bytes:
    lines: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]
    lines += [
        {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": f"m{i}"}}}
        for i in range(1, CALLS + 1)
    ]
    return b"".join(json.dumps(m).encode() + b"\n" for m in lines)


def _check(out: bytes) -> None:
    answers = [json.loads(x) for x in out.splitlines()]
    assert len(answers) == CALLS + 1
    assert answers[0]["id"] == 0 and "serverInfo" in answers[0]["result"]
    by_id = {a["id"]: a for a in answers[1:]}
    assert sorted(by_id) == list(range(1, CALLS + 1))
    for i, a in by_id.items():
        assert a["result"]["content"][0]["text"] == f"m{i}"


def _serve(stdin: Any, stdout: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "anyport", "serve", str(FIXTURE)],
        stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, timeout=60, cwd=ROOT, check=False,
    )


@pytest.mark.parametrize("out_kind", ["pipe", "file"])
def test_stdin_from_a_regular_file(tmp_path: Path, out_kind: str) -> None:
    """T-STDIO-11: every request in the file is answered, then the server exits 0 on EOF."""
    src = tmp_path / "requests.jsonl"
    src.write_bytes(_requests())
    dst = tmp_path / "answers.jsonl"
    with src.open("rb") as fin, dst.open("wb") as fout:
        proc = _serve(fin, subprocess.PIPE if out_kind == "pipe" else fout)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    _check(proc.stdout if out_kind == "pipe" else dst.read_bytes())


def test_stdout_to_a_regular_file(tmp_path: Path) -> None:
    """T-STDIO-03: answers written straight into a file are complete lines, nothing else."""
    dst = tmp_path / "answers.jsonl"
    with dst.open("wb") as fout:
        proc = subprocess.run(
            [sys.executable, "-m", "anyport", "serve", str(FIXTURE)],
            input=_requests(), stdout=fout, stderr=subprocess.PIPE, timeout=60, cwd=ROOT, check=False,
        )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    _check(dst.read_bytes())
