"""``anyport bench``, run as users run it, against our own fixture server with tiny bounded counts."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from anyport.bench._command import BenchError, choose_call
from anyport.bench._stdio import ECHO_TEXT

FIXTURE = str(Path(__file__).parents[1] / "interop" / "fixture_server.py")
ANYPORT = [sys.executable, "-m", "anyport"]
#: stdio counts small enough for a second or two per run.
TINY_STDIO = ["--calls", "30", "--pipelined-calls", "200", "--warmup", "5", "--startup-samples", "1", "--seconds", "3"]
TINY_HTTP = ["--concurrency", "1,4", "--requests", "60", "--seconds", "1"]
ON_LINUX = sys.platform.startswith("linux")


def bench(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ANYPORT, "bench", *args], capture_output=True, text=True, timeout=timeout, check=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def http_server(*flags: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The fixture on ``anyport serve --http`` on a free loopback port; always stopped."""
    port = free_port()
    proc = subprocess.Popen(
        [*ANYPORT, "serve", FIXTURE, "--http", "--port", str(port), "--log-level", "warning", *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("the server did not listen within 20 s") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def test_bench_stdio_measures_both_eras(tmp_path: Path) -> None:
    out = tmp_path / "stdio.json"
    p = bench(*TINY_STDIO, "--json", str(out), "--", sys.executable, FIXTURE)
    assert p.returncode == 0, p.stderr
    assert "| 2025-11-25 |" in p.stdout and "| 2026-07-28 |" in p.stdout
    data = load(out)
    assert data["tool"] == {"name": "echo", "arguments": {"text": ECHO_TEXT}}
    assert [r["era"] for r in data["rows"]] == ["legacy", "modern"]
    for row in data["rows"]:
        assert row["status"] == "ok", row
        assert 0 < row["sequential_calls"] <= 30 and row["p50_us"] > 0 and row["p99_us"] >= row["p50_us"]
        assert 0 < row["pipelined_calls"] <= 200 and row["calls_per_s"] > 0
        assert row["startup_s"] > 0 and len(row["startup_samples_s"]) == 1
        if ON_LINUX:  # clock ticks of 10 ms: a tiny run may well measure 0
            assert row["cpu_us_per_call"] is not None and row["cpu_us_per_call"] >= 0


def test_bench_stdio_named_tool_with_arguments(tmp_path: Path) -> None:
    out = tmp_path / "add.json"
    p = bench(*TINY_STDIO, "--era", "legacy", "--tool", "add", "--arg", "a=2", "--arg", "b=3", "--json", str(out),
              "--", sys.executable, FIXTURE)
    assert p.returncode == 0, p.stderr
    data = load(out)
    assert data["tool"] == {"name": "add", "arguments": {"a": 2, "b": 3}}
    assert [(r["era"], r["status"]) for r in data["rows"]] == [("legacy", "ok")]


def test_bench_stdio_unknown_tool_is_a_clear_error() -> None:
    p = bench(*TINY_STDIO, "--tool", "nope", "--", sys.executable, FIXTURE)
    assert p.returncode == 1
    assert "no tool named 'nope'" in p.stderr and "echo" in p.stderr
    assert p.stdout == ""


def test_bench_stdio_tool_error_is_a_clear_error() -> None:
    p = bench(*TINY_STDIO, "--tool", "fail", "--", sys.executable, FIXTURE)
    assert p.returncode == 1 and "isError" in p.stderr and "boom" in p.stderr


def test_bench_stdio_dead_server() -> None:
    p = bench(*TINY_STDIO, "--", sys.executable, "-c", "import sys; sys.stderr.write('bye'); sys.exit(3)")
    assert p.returncode == 1
    assert "exit code 3" in p.stderr and "bye" in p.stderr


def test_bench_stdio_command_not_found() -> None:
    p = bench("--", "/nonexistent/anyport-bench-server")
    assert p.returncode == 1 and "cannot start" in p.stderr


def test_bench_http_stateful_sse_and_modern(tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    with http_server() as (url, proc):
        p = bench(url, *TINY_HTTP, "--json", str(out))
    assert p.returncode == 0, p.stderr
    data = load(out)
    assert data["modes"] == ["stateful", "modern"]
    assert [(c["mode"], c["concurrency"]) for c in data["cells"]] == [
        ("stateful", 1), ("stateful", 4), ("modern", 1), ("modern", 4),
    ]
    for cell in data["cells"]:
        assert cell["status"] == "ok", cell
        assert 0 < cell["requests"] <= 60 and cell["rps"] > 0 and cell["p50_us"] > 0
        assert set(cell["replies"]) == {"sse"}
    if ON_LINUX:  # found by itself from the listening socket
        assert data["server_pid"] == proc.pid
        assert all(c["cpu_us_per_req"] is not None and c["cpu_us_per_req"] >= 0 for c in data["cells"])
    assert "| 2025-11-25, stateful (session) | 1 |" in p.stdout


def test_bench_http_stateless_json_legacy_only(tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    with http_server("--stateless", "--json-response") as (url, _proc):
        p = bench(url, "--era", "legacy", "--concurrency", "2", "--requests", "40", "--seconds", "1", "--json", str(out))
    assert p.returncode == 0, p.stderr
    data = load(out)
    assert data["modes"] == ["stateless"]
    (cell,) = data["cells"]
    assert cell["status"] == "ok" and cell["requests"] > 0 and cell["p50_us"] > 0 and set(cell["replies"]) == {"json"}


def test_bench_http_unknown_tool_failing_tool_and_dead_url() -> None:
    with http_server() as (url, _proc):
        p = bench(url, *TINY_HTTP, "--tool", "nope")
        failing = bench(url, *TINY_HTTP, "--tool", "fail")
    assert p.returncode == 1 and "no tool named 'nope'" in p.stderr
    assert failing.returncode == 1 and "isError" in failing.stderr and "boom" in failing.stderr
    assert failing.stdout == ""
    dead = bench(f"http://127.0.0.1:{free_port()}/mcp", *TINY_HTTP, "--timeout", "2")
    assert dead.returncode == 1 and "cannot reach" in dead.stderr and "refused" in dead.stderr.lower()


def test_bench_options_for_the_other_kind_of_target_are_usage_errors() -> None:
    p = bench("--concurrency", "1", "--", sys.executable, FIXTURE)
    assert p.returncode == 2 and "--concurrency" in p.stderr
    p = bench("http://127.0.0.1:1/mcp", "--calls", "5")
    assert p.returncode == 2 and "--calls" in p.stderr


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed here")
def test_bench_plot_without_matplotlib_says_so(tmp_path: Path) -> None:
    p = bench("http://127.0.0.1:1/mcp", "--plot", str(tmp_path / "x.png"))
    assert p.returncode == 1 and "matplotlib" in p.stderr and "not a dependency" in p.stderr
    assert not (tmp_path / "x.png").exists()


# -- choosing the tool (in-process) ----------------------------------------------------------------

TOOLS: list[dict[str, Any]] = [
    {"name": "add", "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                                    "required": ["a", "b"]}},
    {"name": "log", "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}, "level": {"type": "string"}},
                                    "required": ["message"]}},
    {"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
]


def test_choose_call_defaults_to_the_first_tool_with_one_string_argument() -> None:
    call = choose_call(TOOLS, None, [])
    assert (call.name, dict(call.arguments), call.expect_text) == ("echo", {"text": ECHO_TEXT}, None)
    # Without such a tool, one whose only required argument is a string will do.
    call = choose_call(TOOLS[:2], None, [])
    assert (call.name, dict(call.arguments)) == ("log", {"message": ECHO_TEXT})


def test_choose_call_named_tool_coerces_by_schema() -> None:
    call = choose_call(TOOLS, "add", ["a=2", "b=3"])
    assert dict(call.arguments) == {"a": 2, "b": 3}
    call = choose_call(TOOLS, "echo", ["text=123"])
    assert dict(call.arguments) == {"text": "123"}


def test_choose_call_errors() -> None:
    with pytest.raises(BenchError, match="no tool named 'x'; it has: add, log, echo"):
        choose_call(TOOLS, "x", [])
    with pytest.raises(BenchError, match="no tool takes a single string argument"):
        choose_call(TOOLS[:1], None, [])
    with pytest.raises(BenchError, match="key=value"):
        choose_call(TOOLS, "echo", ["oops"])
