#!/usr/bin/env python3
"""Run the official MCP conformance suite (@modelcontextprotocol/conformance) against anyport.

Server mode: ``anyport serve examples/conformance_server.py --http`` on a free loopback port, then
``conformance server --suite all --spec-version V`` against it. Client mode: every client scenario
of ``--spec-version V`` (the ``auth/*`` ones included, through ``anyport.oauth``), one
``conformance client --scenario S`` each, with ``tests/conformance/client.py`` as the client. Both
for 2025-11-25 and 2026-07-28; the 2025-11-25 client run adds the 2025-03-26 OAuth back-compat
scenarios (at their own version) and the 2026-07-28 one the ``auth/*`` extension scenarios
(client credentials, enterprise-managed authorization, DPoP, workload identity).

The verdict is ours, read from the suite's ``checks.json`` files: a scenario fails when any check is
FAILURE or WARNING (the suite's own baseline rule). ``expected-failures.yml`` lists the scenarios
expected to fail, each with a reason; the run fails on an unexpected failure, on a listed scenario
that now passes, and when the scenarios that ran are not exactly the ones the suite lists.

    npm ci --prefix tests/conformance          # once: the suite and Node 22
    .venv/bin/python tests/conformance/run.py  # everything (about a minute)
    .venv/bin/python tests/conformance/run.py --mode server --spec-version 2026-07-28 --scenario caching -v

Every suite process runs with NODE_OPTIONS="--require bind-localhost.cjs" (mock servers on
127.0.0.1 only); every wait is bounded; every process started here is stopped here.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NODE_MODULES = HERE / "node_modules"
NODE = NODE_MODULES / ".bin" / "node"
SUITE = NODE_MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
PRELOAD = HERE / "bind-localhost.cjs"
SERVER_FIXTURE = ROOT / "examples" / "conformance_server.py"
CLIENT_PROGRAM = HERE / "client.py"
EXPECTED_FAILURES = HERE / "expected-failures.yml"

SPEC_VERSIONS = ("2025-11-25", "2026-07-28")
#: Scenarios that exist in the suite but check nothing in the pinned release; recorded, never counted as
#: passes. Remove an entry when the suite gives it checks (the runner then says so).
EMPTY_SCENARIOS = {
    "tasks-status-notifications": "0.2.0-alpha.12 defines this scenario without any check (INFO only)",
}
#: Extension scenarios (tasks-*, ...) have no spec version of their own; they run with this one.
EXTENSIONS_VERSION = "2026-07-28"
MODES = ("server", "client")
EXCLUDED_CLIENT_PREFIXES: tuple[str, ...] = ()  # every client scenario of a spec version runs
#: Client scenarios of a spec version we do not run as a whole, added to one we do: {our version: (their version, prefix)}.
#: ``None`` as their version: extension scenarios, run by name alone (no spec version applies to them).
CLIENT_ADDITIONS: dict[str, tuple[str | None, str]] = {
    "2025-11-25": ("2025-03-26", "auth/"),  # the 2025-03-26 OAuth back-compat scenarios
    "2026-07-28": (None, "auth/"),  # client credentials, enterprise-managed authorization, DPoP, WIF
}

LIST_TIMEOUT = 60
SERVER_SUITE_TIMEOUT = 240  # the whole server suite of one spec version
SCENARIO_TIMEOUT_MS = 20_000  # the suite's own per-scenario limit
CLIENT_SCENARIO_TIMEOUT = 90  # one client scenario, suite included
SERVER_START_TIMEOUT = 30
CLIENT_WORKERS = 4

_RESULT_DIR = re.compile(r"^(?:server-)?(?P<name>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")
_LISTED = re.compile(r"^\s+- (?P<name>\S+) \[")


class SetupError(RuntimeError):
    """The suite could not be run at all (not installed, server did not start, ...)."""


@dataclass
class Outcome:
    mode: str
    version: str
    scenario: str
    checks: list[dict[str, Any]] | None  # None: the scenario produced no result
    log: str = ""

    @property
    def failing(self) -> list[dict[str, Any]]:
        return [c for c in self.checks or [] if c.get("status") in ("FAILURE", "WARNING")]

    @property
    def status(self) -> str:
        if self.checks is None:
            return "missing"
        return "fail" if self.failing else "pass"


@dataclass
class Verdict:
    outcomes: list[Outcome]
    problems: list[str] = field(default_factory=list)
    expected_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- the suite ----------------------------------------------------------------------------------------------


def suite_env() -> dict[str, str]:
    env = dict(os.environ)
    env["NODE_OPTIONS"] = f"--require {PRELOAD}"  # always, and nothing else: mock servers stay on loopback
    env["PATH"] = f"{NODE.parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MCP_CONFORMANCE_SCENARIO", None)
    env.pop("MCP_CONFORMANCE_CONTEXT", None)
    return env


def require_suite() -> None:
    missing = [p for p in (NODE, SUITE, PRELOAD) if not p.exists()]
    if missing:
        raise SetupError(f"missing {', '.join(map(str, missing))}: run `npm ci --prefix {HERE.relative_to(ROOT)}`")


def conformance(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the suite's CLI; its exit status is not the verdict (checks.json is)."""
    try:
        return subprocess.run(
            [str(NODE), str(SUITE), *args], capture_output=True, text=True, timeout=timeout, env=suite_env(), cwd=HERE, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"conformance {' '.join(args)}: no answer within {timeout} s") from exc


def listed_scenarios(mode: str, version: str) -> list[str]:
    """What ``--suite all --spec-version V`` runs, as the suite itself lists it."""
    proc = conformance("list", f"--{mode}", "--spec-version", version, timeout=LIST_TIMEOUT)
    if proc.returncode != 0:
        raise SetupError(f"conformance list failed: {proc.stderr[-2000:]}")
    names = [m["name"] for line in proc.stdout.splitlines() if (m := _LISTED.match(line))]
    if not names:
        raise SetupError(f"conformance list --{mode} --spec-version {version} listed nothing:\n{proc.stdout[-2000:]}")
    if mode == "client":
        names = [n for n in names if not n.startswith(EXCLUDED_CLIENT_PREFIXES)]
    return names


def extension_scenarios(mode: str = "server") -> list[str]:
    """Scenarios tagged [extension]: no spec version selects them, so they run by name (on 2026-07-28)."""
    proc = conformance("list", f"--{mode}", timeout=LIST_TIMEOUT)
    if proc.returncode != 0:
        raise SetupError(f"conformance list failed: {proc.stderr[-2000:]}")
    return [m["name"] for line in proc.stdout.splitlines() if "[extension]" in line and (m := _LISTED.match(line))]


def client_additions(version: str) -> dict[str, str | None]:
    """``{scenario: the spec version to run it at (None: none)}`` added to the client run of ``version``."""
    if version not in CLIENT_ADDITIONS:
        return {}
    theirs, prefix = CLIENT_ADDITIONS[version]
    names = extension_scenarios("client") if theirs is None else listed_scenarios("client", theirs)
    return {n: theirs for n in names if n.startswith(prefix)}


def all_scenarios(mode: str, version: str) -> list[str]:
    """Every scenario a run of ``mode`` at ``version`` must cover: the listed ones, plus the additions."""
    listed = listed_scenarios(mode, version)
    if mode == "server" and version == EXTENSIONS_VERSION:
        listed += [s for s in extension_scenarios() if s not in listed]
    if mode == "client":
        listed += [s for s in client_additions(version) if s not in listed]
    return listed


def read_results(out_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """``{scenario: checks}`` from the ``<scenario>-<timestamp>/checks.json`` files under ``out_dir``."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(out_dir.rglob("checks.json")):
        rel = path.parent.relative_to(out_dir)
        m = _RESULT_DIR.match(rel.name)
        if m is None:
            continue
        name = "/".join([*rel.parent.parts[-1:], m["name"]]) if rel.parent.parts and rel.parent.parts[-1] == "auth" else m["name"]
        found[name] = json.loads(path.read_text())
    return found


# -- our server ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def our_server(log_path: Path) -> Iterator[str]:
    """``anyport serve examples/conformance_server.py --http`` on a free loopback port; yields its /mcp URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "anyport", "serve", str(SERVER_FIXTURE), "--http", "--host", "127.0.0.1", "--port", str(port),
           "--sse-retry-ms", "500"]  # T-HTTP-13: every SSE stream of a 2025-11-25 session says how long to wait
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise SetupError(f"the server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SetupError(f"the server did not come up within {SERVER_START_TIMEOUT} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group we started, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# -- the two modes --------------------------------------------------------------------------------------------


def run_server_mode(version: str, work: Path, only: list[str] | None = None) -> list[Outcome]:
    listed = listed_scenarios("server", version)
    extensions = [s for s in extension_scenarios() if s not in listed] if version == EXTENSIONS_VERSION else []
    wanted = [s for s in [*listed, *extensions] if only is None or s in only]
    out_dir = work / f"server-{version}"
    with our_server(work / f"server-{version}.log") as url:
        if only is None:
            args = ["--suite", "all"]
            proc = conformance(
                "server", "--url", url, *args, "--spec-version", version, "-o", str(out_dir),
                "--timeout", str(SCENARIO_TIMEOUT_MS), timeout=SERVER_SUITE_TIMEOUT,
            )
            console = proc.stdout + proc.stderr
            by_name = [s for s in wanted if s in extensions]
        else:
            console = ""
            by_name = wanted
        if by_name:
            for scenario in by_name:
                # An extension scenario is "not applicable" at any spec version: run it by name alone.
                pin = [] if scenario in extensions else ["--spec-version", version]
                proc = conformance(
                    "server", "--url", url, "--scenario", scenario, *pin, "-o", str(out_dir),
                    "--timeout", str(SCENARIO_TIMEOUT_MS), timeout=SERVER_SUITE_TIMEOUT,
                )
                console += proc.stdout + proc.stderr
    results = read_results(out_dir) if out_dir.exists() else {}
    outcomes = [Outcome("server", version, s, results.pop(s, None), console) for s in wanted]
    outcomes += [Outcome("server", version, s, checks, console) for s, checks in results.items()]  # ran but not listed
    return outcomes


def run_client_scenario(version: str, scenario: str, work: Path, pin: str | None = "") -> Outcome:
    """One client scenario; ``pin``: the spec version to run it at ("" = ``version``, None = none)."""
    if " " in sys.executable or " " in str(CLIENT_PROGRAM):
        raise SetupError("the suite splits --command on spaces: the paths of python and client.py must have none")
    out_dir = work / f"client-{version}" / scenario.replace("/", "_")
    shutil.rmtree(out_dir, ignore_errors=True)
    at = ["--spec-version", pin or version] if pin is not None else []
    proc = conformance(
        "client", "--command", f"{sys.executable} {CLIENT_PROGRAM}", "--scenario", scenario, *at,
        "-o", str(out_dir), "--timeout", str(SCENARIO_TIMEOUT_MS), timeout=CLIENT_SCENARIO_TIMEOUT,
    )
    results = read_results(out_dir) if out_dir.exists() else {}
    return Outcome("client", version, scenario, results.get(scenario), proc.stdout + proc.stderr)


def run_client_mode(version: str, work: Path, only: list[str] | None = None, retry: dict[str, str] | None = None) -> list[Outcome]:
    """Each scenario alone (bounded parallelism). ``retry``: {scenario: expected status}; a scenario whose
    first result differs is run once more, alone, and that result counts (timing checks such as sse-retry
    are sensitive to a loaded machine, as upstream's own runner knows)."""
    added = client_additions(version)
    pins: dict[str, str | None] = {s: "" for s in listed_scenarios("client", version)}
    pins.update({s: v for s, v in added.items() if s not in pins})
    wanted = [s for s in pins if only is None or s in only]
    with concurrent.futures.ThreadPoolExecutor(max_workers=CLIENT_WORKERS) as pool:
        outcomes = list(pool.map(lambda s: run_client_scenario(version, s, work, pins[s]), wanted))
    if retry is not None:
        for i, o in enumerate(outcomes):
            if o.status != retry.get(o.scenario, "pass"):
                outcomes[i] = run_client_scenario(version, o.scenario, work, pins[o.scenario])
                outcomes[i].log = f"(first run: {o.status}; run again alone)\n{outcomes[i].log}"
    return outcomes


# -- the verdict ----------------------------------------------------------------------------------------------


def load_expected(path: Path = EXPECTED_FAILURES) -> dict[tuple[str, str], dict[str, str]]:
    """``{(mode, version): {scenario: reason}}`` from expected-failures.yml."""
    data = yaml.safe_load(path.read_text()) or {}
    out: dict[tuple[str, str], dict[str, str]] = {}
    for mode, versions in data.items():
        if mode not in MODES or not isinstance(versions, dict):
            raise ValueError(f"{path.name}: top-level keys are {MODES}, each a mapping of spec version -> scenarios")
        for version, scenarios in versions.items():
            if str(version) not in SPEC_VERSIONS or not isinstance(scenarios, dict):
                raise ValueError(f"{path.name}: {mode}: {version!r} is not one of {SPEC_VERSIONS} with a scenario mapping")
            for scenario, reason in scenarios.items():
                if not isinstance(reason, str) or not reason.strip():
                    raise ValueError(f"{path.name}: {mode} {version} {scenario}: every entry needs a reason")
            out[(mode, str(version))] = dict(scenarios)
    return out


def judge(mode: str, version: str, outcomes: list[Outcome], expected: dict[str, str], listed: list[str]) -> Verdict:
    verdict = Verdict(outcomes)
    for o in outcomes:
        where = f"{mode} {version} {o.scenario}"
        if o.scenario not in listed:
            verdict.problems.append(f"{where}: ran but the suite does not list it")
        elif o.status == "missing":
            verdict.problems.append(f"{where}: produced no checks.json (did not run)")
        elif not o.checks:
            verdict.problems.append(f"{where}: ran no checks (skipped?)")
        elif o.status == "pass" and not any(c.get("status") == "SUCCESS" for c in o.checks):
            if o.scenario in EMPTY_SCENARIOS:
                verdict.expected_failures.append(f"{where} (no checks: {EMPTY_SCENARIOS[o.scenario]})")
            else:
                verdict.problems.append(f"{where}: no check succeeded (only INFO/SKIPPED): not running is not passing")
        elif o.scenario in EMPTY_SCENARIOS:
            verdict.problems.append(f"{where}: has checks now; remove it from EMPTY_SCENARIOS")
        elif o.status == "fail" and o.scenario not in expected:
            verdict.problems.append(f"{where}: UNEXPECTED FAILURE\n{describe(o)}")
        elif o.status == "pass" and o.scenario in expected:
            verdict.problems.append(f"{where}: passes now; remove it from expected-failures.yml ({expected[o.scenario]})")
        elif o.status == "fail":
            verdict.expected_failures.append(where)
    for scenario in expected.keys() - set(listed):
        verdict.problems.append(f"{mode} {version} {scenario}: in expected-failures.yml but the suite does not list it")
    ran = sorted(o.scenario for o in outcomes if o.checks)
    if ran != sorted(listed):
        verdict.problems.append(f"{len(ran)} scenarios ran with checks, the suite lists {len(listed)}: not running is not passing")
    return verdict


def describe(o: Outcome, limit: int = 1500) -> str:
    lines = []
    for c in o.failing:
        detail = json.dumps(c.get("details"), default=str) if c.get("details") is not None else ""
        lines.append(f"    [{c.get('status')}] {c.get('id')}: {c.get('errorMessage') or c.get('description')}")
        if detail:
            lines.append(f"        details: {detail[:limit]}")
    return "\n".join(lines)


def run(mode: str, version: str, work: Path, only: list[str] | None = None) -> Verdict:
    """Run one mode at one spec version and judge it against expected-failures.yml."""
    require_suite()
    expected = load_expected().get((mode, version), {})
    listed = all_scenarios(mode, version)
    if only is not None:
        listed = [s for s in listed if s in only]
        expected = {k: v for k, v in expected.items() if k in only}
    if mode == "server":
        outcomes = run_server_mode(version, work, only)
    else:
        retry = {s: ("fail" if s in expected else "pass") for s in listed}
        outcomes = run_client_mode(version, work, only, retry)
    return judge(mode, version, outcomes, expected, listed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=[*MODES, "all"], default="all")
    parser.add_argument("--spec-version", action="append", choices=SPEC_VERSIONS, help="repeatable; default: both")
    parser.add_argument("--scenario", action="append", help="repeatable; default: every scenario")
    parser.add_argument("--keep", type=Path, help="keep the suite's results (checks.json, logs) in this directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every failing check, expected or not")
    args = parser.parse_args(argv)
    modes = MODES if args.mode == "all" else (args.mode,)
    versions = tuple(args.spec_version or SPEC_VERSIONS)
    work = args.keep or Path(tempfile.mkdtemp(prefix="anyport-conformance-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        jobs = [(m, v) for m in modes for v in versions]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            verdicts = list(pool.map(lambda job: run(job[0], job[1], work, args.scenario), jobs))
    except SetupError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    ok = True
    for (mode, version), verdict in zip(jobs, verdicts, strict=True):
        print(f"\n== {mode} {version}: {len(verdict.outcomes)} scenarios")
        for o in verdict.outcomes:
            print(f"  {o.status:8} {o.scenario}")
            if args.verbose and o.failing:
                print(describe(o))
        for problem in verdict.problems:
            print(f"  PROBLEM: {problem}")
        ok = ok and verdict.ok
    print(f"\nconformance: {'OK' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
