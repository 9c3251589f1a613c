"""The official MCP conformance suite against our server and our client, both spec versions.

The four runs (server/client x 2025-11-25/2026-07-28) go concurrently once per module; each case then
fails on any unexpected failure, on an entry of expected-failures.yml that passes now, and when the
scenarios that ran are not the ones the suite lists. Needs ``npm ci --prefix tests/conformance``
(make test does it); its absence fails, never skips.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

from tests.conformance import run

pytestmark = pytest.mark.interop

JOBS = [(mode, version) for mode in run.MODES for version in run.SPEC_VERSIONS]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], run.Verdict]:
    run.require_suite()  # raises with the npm ci hint: a missing suite is a broken setup, not a skip
    work: Path = tmp_path_factory.mktemp("conformance")
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(JOBS)) as pool:
        futures = {job: pool.submit(run.run, job[0], job[1], work) for job in JOBS}
        return {job: f.result() for job, f in futures.items()}


@pytest.mark.parametrize(("mode", "version"), JOBS)
def test_conformance_suite(verdicts: dict[tuple[str, str], run.Verdict], mode: str, version: str) -> None:
    verdict = verdicts[(mode, version)]
    report = "\n".join(f"{o.status:8} {o.scenario}" for o in verdict.outcomes)
    assert verdict.ok, f"{mode} {version}:\n" + "\n".join(verdict.problems) + f"\n\nall scenarios:\n{report}"
    ran = sorted(o.scenario for o in verdict.outcomes if o.checks)
    assert ran == sorted(run.all_scenarios(mode, version))
