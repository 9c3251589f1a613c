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
import threading
import time
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


def test_stdout_to_dev_null() -> None:
    """T-STDIO-11: ``> /dev/null`` (a character device epoll refuses) must not crash the server:
    uvloop used to abort the process (status 134) as soon as stdout was watched."""
    with open("/dev/null", "wb") as devnull:
        proc = subprocess.run(
            [sys.executable, "-m", "anyport", "serve", str(FIXTURE)],
            input=_requests(), stdout=devnull, stderr=subprocess.PIPE, timeout=60, cwd=ROOT, check=False,
        )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


def test_stdin_from_dev_null() -> None:
    """T-STDIO-11: stdin at EOF from the start (``< /dev/null``): the server exits 0 at once."""
    with open("/dev/null", "rb") as devnull:
        proc = _serve(devnull, subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == b""


BIG_SERVER = '''
from anyport import Server

app = Server("big")


@app.tool()
def big(n: int, pad: str = "") -> str:
    return "x" * n
'''


def test_a_client_that_stops_reading_stops_the_server_reading(tmp_path: Path) -> None:
    """Backpressure on stdio (T-STDIO-02): 400 requests whose answers total 40 MB, and the client
    reads nothing for a second. The server must stop reading stdin once about 1 MiB of output is
    waiting (so the client's writes block) instead of buffering everything; when the client
    reads, every answer arrives, complete and in order."""
    server_file = tmp_path / "big_server.py"
    server_file.write_text(BIG_SERVER)
    calls, size, pad = 400, 100_000, "p" * 1000
    lines = [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ] + [
        {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "big", "arguments": {"n": size, "pad": pad}}}
        for i in range(1, calls + 1)
    ]
    payload = b"".join(json.dumps(m).encode() + b"\n" for m in lines)  # ~420 kB: more than a pipe holds
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyport", "serve", str(server_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin

        def write_all() -> None:
            stdin.write(payload)
            stdin.close()

        writer = threading.Thread(target=write_all, daemon=True)
        writer.start()
        time.sleep(1.5)  # server started, read what it could, wrote until the output pipe was full
        assert writer.is_alive(), "the server read all input although nobody read its output"
        answers = [json.loads(proc.stdout.readline()) for _ in range(calls + 1)]
        writer.join(timeout=10)
        assert not writer.is_alive()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [a["id"] for a in answers] == list(range(calls + 1))
    assert all(len(a["result"]["content"][0]["text"]) == size for a in answers[1:])
