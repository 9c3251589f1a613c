"""bench/observe_cost.py still runs (a smoke run: it measures nothing here, the figures come from
`make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_observe_cost_runs_every_configuration() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "observe_cost.py"), "--requests", "50", "--rounds", "1", "--json"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert set(results) >= {"plain", "metrics", "metrics + JSON access log", "tracing, OTel API only (no SDK)"}
    assert all(v > 0 for v in results.values())
