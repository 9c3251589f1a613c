"""bench/stdio.py and bench/http.py still run end to end on the package's load generators.

Only the raw floors, with tiny bounded counts (no peers environment, no network): this checks the
harness, it measures nothing. The scripts run in subprocesses, because bench/ on sys.path would
shadow the standard library's ``http`` package in this process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / name), *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
        check=False,
    )


def test_stdio_script_on_the_floor(tmp_path: Path) -> None:
    out = tmp_path / "stdio.json"
    p = run_script(
        "stdio.py", "--quick", "--only", "floor", "--calls", "20", "--pipelined-calls", "200", "--rounds", "1",
        "--startup-samples", "1", "--python", sys.executable, "--json", str(out),
    )
    assert p.returncode == 0, p.stderr
    assert "| raw floor | legacy |" in p.stdout and "| raw floor | modern |" in p.stdout
    data = json.loads(out.read_text())
    assert data["peers_environment"] is None  # not needed without the Python SDK or FastMCP rows
    for row in data["rows"]:
        assert row["status"] == "ok" and row["p50_us"] > 0 and row["calls_per_s"] > 0 and row["startup_s"] > 0


def test_http_script_on_the_floor(tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    p = run_script(
        "http.py", "--quick", "--only", "floor", "--modes", "stateless-json,modern-sse", "--no-memory", "--seconds", "0.1",
        "--python", sys.executable, "--json", str(out),
    )
    assert p.returncode == 0, p.stderr
    data = json.loads(out.read_text())
    cells = {(c["mode"], c["concurrency"]): c for c in data["cells"]}
    assert set(cells) == {(m, c) for m in ("stateless-json", "modern-sse") for c in (1, 16, 64)}
    for cell in cells.values():
        assert cell["status"] == "ok" and cell["requests"] > 0 and cell["p50_us"] > 0
    assert set(cells[("stateless-json", 1)]["replies"]) == {"json"}
    assert set(cells[("modern-sse", 1)]["replies"]) == {"sse"}
    assert {p["mode"] for p in data["points"]} == {"stateless, JSON reply", "2026-07-28, SSE reply"}
