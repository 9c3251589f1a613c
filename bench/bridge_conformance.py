"""The official conformance suite's server scenarios: the reference server bridged vs. served directly.

Runs ``conformance server --url URL --suite all --spec-version 2025-11-25`` (the suite in
tests/conformance/node_modules, with its Node 22 and ``bind-localhost.cjs``) twice:

- **bridged**: ``anyport bridge -- node server-everything/dist/index.js stdio`` on a free loopback port;
- **direct**: the same everything-server serving Streamable HTTP itself (``index.js streamableHttp``,
  ``PORT`` set to a free port; its ``app.listen(PORT)`` names no host, so it runs with
  ``bind-localhost.cjs`` preloaded, which keeps it on 127.0.0.1).

A scenario passes when none of its checks is FAILURE or WARNING (tests/conformance/run.py's rule).
Prints the two scores side by side and the scenarios whose outcome differs; raw outcomes go to
``bench/results/bridge-conformance-<timestamp>.json`` (or ``--json``).

Usage: python bench/bridge_conformance.py [--spec-version V] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]  # bench/http.py would shadow the standard library's http package

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

import orjson  # noqa: E402
from tests.conformance.run import (  # noqa: E402
    PRELOAD,
    Outcome,
    SetupError,
    conformance,
    free_port,
    read_results,
    require_suite,
    stop,
)

EVERYTHING = ROOT / "tests" / "bridge" / "peers" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
START_TIMEOUT = 60
SUITE_TIMEOUT = 300
SCENARIO_TIMEOUT_MS = 20_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def node() -> str:
    found = shutil.which("node")
    if found is None or not EVERYTHING.is_file():
        raise SetupError("node and tests/bridge/peers (npm ci) are needed: make test installs them")
    return found


@contextlib.contextmanager
def _running(cmd: list[str], env: dict[str, str], probe: str, log_path: Path) -> Iterator[None]:
    """Start ``cmd`` in a process group of its own; wait (bounded) until ``probe`` answers at all."""
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise SetupError(f"{cmd[0]} exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(probe, timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answers (a GET without a session may be 4xx)
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SetupError(f"{cmd[0]} did not answer within {START_TIMEOUT} s:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield
    finally:
        stop(proc)


@contextlib.contextmanager
def bridged(work: Path) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "anyport.cli._bridge", "bridge", "--port", str(port), "--log-level", "warning",
           "--", node(), str(EVERYTHING), "stdio"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    with _running(cmd, env, f"http://127.0.0.1:{port}/readyz", work / "bridged.log"):
        yield f"http://127.0.0.1:{port}/mcp"


@contextlib.contextmanager
def direct(work: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "NODE_OPTIONS": f"--require {PRELOAD}"}
    with _running([node(), str(EVERYTHING), "streamableHttp"], env, f"http://127.0.0.1:{port}/mcp", work / "direct.log"):
        yield f"http://127.0.0.1:{port}/mcp"


def run_suite(url: str, out_dir: Path, version: str) -> dict[str, Outcome]:
    proc = conformance("server", "--url", url, "--suite", "all", "--spec-version", version, "-o", str(out_dir),
                       "--timeout", str(SCENARIO_TIMEOUT_MS), timeout=SUITE_TIMEOUT)
    console = proc.stdout + proc.stderr
    results = read_results(out_dir) if out_dir.exists() else {}
    return {name: Outcome("server", version, name, checks, console) for name, checks in results.items()}


def reason(o: Outcome | None) -> str:
    if o is None:
        return "did not run"
    if o.status != "fail":
        return o.status
    first = o.failing[0]
    return f"{first.get('id')}: {str(first.get('errorMessage') or first.get('description'))[:160]}"


def compare(version: str = "2025-11-25", work: Path | None = None) -> dict[str, Any]:
    """Both runs; ``{"direct": {scenario: status}, "bridged": {...}, "differ": [...], "seconds": ...}``."""
    require_suite()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bridge-conformance-")))
        outcomes: dict[str, dict[str, Outcome]] = {}
        for name, serve in (("direct", direct), ("bridged", bridged)):
            log(f"conformance server --suite all against the {name} everything-server ...")
            with serve(work) as url:
                outcomes[name] = run_suite(url, work / name, version)
        names = sorted(set(outcomes["direct"]) | set(outcomes["bridged"]))
        table = {side: {n: (outcomes[side][n].status if n in outcomes[side] else "missing") for n in names} for side in outcomes}
        differ = [{"scenario": n, "direct": table["direct"][n], "bridged": table["bridged"][n],
                   "direct_reason": reason(outcomes["direct"].get(n)), "bridged_reason": reason(outcomes["bridged"].get(n))}
                  for n in names if table["direct"][n] != table["bridged"][n]]
        failing = {side: {n: reason(o) for n, o in outcomes[side].items() if o.status == "fail"} for side in outcomes}
    return {"spec_version": version, "scenarios": names, **table, "failing": failing, "differ": differ,
            "seconds": time.monotonic() - started}


def score(statuses: dict[str, str]) -> str:
    return f"{sum(s == 'pass' for s in statuses.values())}/{len(statuses)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec-version", default="2025-11-25")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = compare(args.spec_version)
    d, b = result["direct"], result["bridged"]
    print(f"conformance server --suite all --spec-version {args.spec_version} ({result['seconds']:.0f} s)\n")
    print("| scenario | direct (streamableHttp) | bridged (stdio via anyport bridge) |\n|---|---|---|")
    for n in result["scenarios"]:
        print(f"| {n} | {d[n]} | {b[n]} |")
    print(f"| **score** | **{score(d)}** | **{score(b)}** |")
    print("\nscenarios that differ:" if result["differ"] else "\nno scenario differs")
    for row in result["differ"]:
        print(f"- {row['scenario']}: direct {row['direct']} ({row['direct_reason']}), bridged {row['bridged']} ({row['bridged_reason']})")
    for side in ("direct", "bridged"):
        for n, why in result["failing"][side].items():
            log(f"{side} fails {n}: {why}")
    out = args.json or ROOT / "bench" / "results" / f"bridge-conformance-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    log(f"raw outcomes: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
