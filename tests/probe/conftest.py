"""Helpers of the probe tests: run ``anyport probe`` in-process and read its JSON, exit code and error line."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner

from anyport.cli._probe import probe


@dataclass
class Outcome:
    exit_code: int
    report: dict[str, Any]
    error_line: dict[str, Any] | None
    seconds: float

    @property
    def phases(self) -> list[str]:
        return [p["name"] for p in self.report["phases"]]

    def phase(self, name: str) -> dict[str, Any]:
        return next(p for p in self.report["phases"] if p["name"] == name)


def run_probe(*args: str) -> Outcome:
    """``anyport probe --json ARGS``: stdout is one JSON object; stderr holds one JSON error line
    exactly when the exit code is not 0, and it equals the report's ``error``."""
    start = time.monotonic()
    result = CliRunner().invoke(probe, ["--json", *args], catch_exceptions=False)
    seconds = time.monotonic() - start
    lines = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == (0 if result.exit_code == 0 else 1), result.stderr
    error = json.loads(lines[0])["error"] if lines else None
    report = json.loads(result.stdout)
    assert report["exit_code"] == result.exit_code
    assert report["ok"] is (result.exit_code == 0)
    assert report["error"] == error
    return Outcome(result.exit_code, report, error, seconds)
