#!/usr/bin/env python3
"""The long fuzzing run behind ``make fuzz`` (about 30-40 minutes on 2 cores).

1. The property tests of tests/fuzz (codec, framing, classify, ServerConnection, header rules, SSE
   parser) with ``--examples`` examples each, randomised (``ANYPORT_FUZZ_RANDOM=1``).
2. The stdio fuzzer and the HTTP fuzzer (tests/fuzz/_stdio.py, tests/fuzz/_http.py) in parallel,
   ``--inputs`` generated inputs between them (default 1,000,000; ``--http-share`` of them HTTP).
3. The atheris harness (fuzz/atheris_core.py) for ``--atheris-seconds``, when atheris is installed.

Prints a summary (inputs, time, failures per phase), writes it and every failure with its reproducer
to fuzz/results/<time>/, and exits 1 when anything failed.

    .venv/bin/python fuzz/run.py                          # the full run
    .venv/bin/python fuzz/run.py --inputs 20000 --examples 200 --atheris-seconds 30   # a quick one
    .venv/bin/python fuzz/run.py --replay fuzz/results/<time>/stdio-repro-1.bin --mode 2025-11-25
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = sys.executable
PROPERTY_TESTS = ["tests/fuzz/test_core_fuzz.py", "tests/fuzz/test_connection_fuzz.py", "tests/fuzz/test_headers_sse_fuzz.py"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- workers (run in child processes) -------------------------------------------------------------


def _progress(kind: str, every: float = 60.0) -> Any:
    start = last = time.monotonic()

    def report(r: Any) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= every:
            last = now
            log(f"[{kind}] {r.inputs:,} inputs, {len(r.failures)} failing batch(es), {r.inputs / (now - start):,.0f}/s")

    return report


def worker(kind: str, inputs: int, seed: int, out: Path) -> None:
    start = time.monotonic()
    result: dict[str, Any] = {"kind": kind}
    if kind == "stdio":
        from tests.fuzz._stdio import describe, fuzz_stdio, isolate

        stdio = fuzz_stdio(inputs, seed=seed, batch_size=200, per_process=50_000, stop_after=20, progress=_progress("stdio"))
        repros = []
        for n, (mode, frames) in enumerate(stdio.failing_frames[:5], 1):
            culprit = isolate(mode, frames, seed=seed)
            path = out.parent / f"stdio-batch-{n}.jsonl"
            path.write_bytes(b"".join(f.data + b"\n" for f in frames))
            entry: dict[str, Any] = {"mode": mode, "batch_file": str(path)}
            if culprit is not None:
                repro = out.parent / f"stdio-repro-{n}.bin"
                repro.write_bytes(culprit[0].data)
                entry.update(frame=describe(culprit[0]), problems=culprit[1][:5], file=str(repro),
                             replay=f"{PY} fuzz/run.py --replay {repro} --mode {mode or 'none'}")
            repros.append(entry)
        result.update(inputs=stdio.inputs, batches=stdio.batches, processes=stdio.processes, failures=stdio.failures, reproducers=repros,
                      kinds=dict(stdio.kinds.most_common()))
    else:
        from tests.fuzz._http import fuzz_http

        http = fuzz_http(inputs, seed=seed, progress=_progress("http"))
        result.update(inputs=http.inputs, batches=http.batches, failures=http.failures, unsendable=http.unsendable,
                      kinds=dict(http.kinds.most_common()),
                      statuses={str(k): v for k, v in sorted(http.statuses.items())})
    result["seconds"] = time.monotonic() - start
    out.write_text(json.dumps(result, indent=1))


# -- phases -----------------------------------------------------------------------------------------


def property_tests(examples: int, results: Path) -> dict[str, Any]:
    log(f"property tests: {examples} examples per property (randomised)")
    start = time.monotonic()
    env = {**os.environ, "ANYPORT_FUZZ_EXAMPLES": str(examples), "ANYPORT_FUZZ_RANDOM": "1"}
    proc = subprocess.run([PY, "-m", "pytest", *PROPERTY_TESTS, "-q", "-p", "no:cacheprovider"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    (results / "property-tests.txt").write_text(proc.stdout + proc.stderr)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    passed = sum(int(n) for n in re.findall(r"(\d+) passed", tail))
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
    return {"phase": "property tests", "inputs": passed * examples, "seconds": time.monotonic() - start,
            "failures": failed if proc.returncode else [], "note": f"{tail}; roughly {examples} examples x {passed} passing tests"}


def process_fuzzers(inputs: int, http_share: float, seed: int, results: Path) -> list[dict[str, Any]]:
    n_http = int(inputs * http_share)
    n_stdio = inputs - n_http
    log(f"stdio fuzzer: {n_stdio:,} inputs; HTTP fuzzer: {n_http:,} inputs (in parallel, seed {seed})")
    procs = []
    for kind, n in (("stdio", n_stdio), ("http", n_http)):
        if n <= 0:
            continue
        out = results / f"{kind}.json"
        procs.append((kind, out, subprocess.Popen([PY, __file__, "--worker", kind, "--n", str(n), "--seed", str(seed), "--out", str(out)], cwd=ROOT)))
    phases = []
    for kind, out, proc in procs:
        code = proc.wait()
        if not out.exists():
            phases.append({"phase": kind, "inputs": 0, "seconds": 0, "failures": [f"the {kind} worker died (exit {code})"]})
            continue
        r = json.loads(out.read_text())
        (results / f"{kind}-failures.txt").write_text("\n\n".join(r["failures"]))
        note = ""
        if kind == "http":
            note = f"statuses {r['statuses']}; {r['unsendable']} unsendable by the client"
        elif r.get("reproducers"):
            note = "reproducers: " + "; ".join(e.get("replay", e["batch_file"]) for e in r["reproducers"])
        if r["kinds"]:
            note = "kinds of failure (count): " + "; ".join(f"{k} ({n})" for k, n in r["kinds"].items()) + ". " + note
        phases.append({"phase": f"{kind} fuzzer", "inputs": r["inputs"], "seconds": r["seconds"], "failures": r["failures"], "note": note,
                       "reproducers": r.get("reproducers", []), "kinds": r["kinds"]})
    return phases


def atheris_phase(seconds: int, results: Path) -> dict[str, Any]:
    if importlib.util.find_spec("atheris") is None:
        return {"phase": "atheris", "inputs": 0, "seconds": 0, "failures": [], "note": "atheris is not installed (it did not build): skipped"}
    log(f"atheris: {seconds} s of coverage-guided fuzzing of ServerConnection.receive_data")
    corpus = results / "atheris-corpus"
    subprocess.run([PY, "fuzz/atheris_core.py", "--seed-corpus", str(corpus)], cwd=ROOT, check=True)
    start = time.monotonic()
    proc = subprocess.run(
        [PY, str(ROOT / "fuzz" / "atheris_core.py"), f"-max_total_time={seconds}", "-rss_limit_mb=4096", "-print_final_stats=1",
         f"-artifact_prefix={results}/atheris-", str(corpus)],
        cwd=results, capture_output=True, text=True,
    )
    (results / "atheris.txt").write_text(proc.stdout + proc.stderr)
    runs = re.findall(r"Done (\d+) runs", proc.stderr)
    execs = int(runs[-1]) if runs else int((re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr) or ["0"])[-1])
    failures = []
    if proc.returncode != 0:
        crash = re.findall(r"Test unit written to (\S+)", proc.stderr)
        exc = re.findall(r"=== Uncaught Python exception: ===\n(.*?)\n", proc.stderr)
        failures.append(f"atheris found a failing input ({exc[0] if exc else 'exit ' + str(proc.returncode)}): {crash[0] if crash else '?'}"
                        f" (replay: {PY} fuzz/atheris_core.py {crash[0] if crash else 'FILE'})")
    return {"phase": "atheris", "inputs": execs, "seconds": time.monotonic() - start, "failures": failures, "note": f"corpus {corpus}"}


def replay(path: Path, mode: str | None) -> None:
    import orjson
    from tests.fuzz._stdio import probe_once

    data = path.read_bytes()
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        obj = None
    items = obj if isinstance(obj, list) else [obj]
    ids = [i.get("id") for i in items if isinstance(i, dict) and isinstance(i.get("id"), str | int)]
    print(f"sending {len(data)} bytes as one line to a fresh server (mode {mode or 'uninitialized'}); it wrote:")
    for msg in probe_once([data + b"\n"], mode=mode, wait_for=ids):
        print("  ", json.dumps(msg)[:2000])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=1_000_000, help="stdio + HTTP inputs in total (default 1,000,000)")
    ap.add_argument("--http-share", type=float, default=0.15, help="share of the inputs sent over HTTP (slower per input)")
    ap.add_argument("--examples", type=int, default=2000, help="hypothesis examples per property")
    ap.add_argument("--atheris-seconds", type=int, default=300)
    ap.add_argument("--seed", type=int, default=None, help="seed of the generators (default: from the clock)")
    ap.add_argument("--skip", action="append", default=[], choices=["properties", "processes", "atheris"])
    ap.add_argument("--worker", choices=["stdio", "http"], help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--replay", type=Path, help="send one reproducer line to a fresh stdio server and show the answers")
    ap.add_argument("--mode", default="none", help="with --replay: the legacy revision to initialize first, or none")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.n, args.seed, args.out)
        return
    if args.replay:
        replay(args.replay, None if args.mode == "none" else args.mode)
        return
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    results = ROOT / "fuzz" / "results" / time.strftime("%Y%m%d-%H%M%S")
    results.mkdir(parents=True, exist_ok=True)
    log(f"fuzz run, seed {seed}; results in {results.relative_to(ROOT)}")
    start = time.monotonic()
    phases: list[dict[str, Any]] = []
    if "properties" not in args.skip:
        phases.append(property_tests(args.examples, results))
    if "processes" not in args.skip:
        phases += process_fuzzers(args.inputs, args.http_share, seed, results)
    if "atheris" not in args.skip:
        phases.append(atheris_phase(args.atheris_seconds, results))
    total = time.monotonic() - start
    failed = sum(len(p["failures"]) for p in phases)
    generated = sum(p["inputs"] for p in phases if p["phase"] in ("stdio fuzzer", "http fuzzer"))
    print("\n== fuzz summary " + "=" * 70)
    print(f"{'phase':<16}{'inputs':>14}{'time':>10}{'rate/s':>10}{'failures':>10}  note")
    for p in phases:
        rate = p["inputs"] / p["seconds"] if p["seconds"] else 0
        print(f"{p['phase']:<16}{p['inputs']:>14,}{p['seconds']:>9.0f}s{rate:>10,.0f}{len(p['failures']):>10}  {p.get('note', '')[:600]}")
    print(f"stdio + HTTP generated inputs: {generated:,}; seed {seed}; total time {total / 60:.1f} min; results in {results}")
    for p in phases:
        for f in p["failures"][:10]:
            print(f"\nFAIL [{p['phase']}] {f[:3000]}")
    (results / "summary.json").write_text(json.dumps({"seed": seed, "seconds": total, "generated": generated, "phases": phases}, indent=1))
    print("\nresult:", "FAILED" if failed else "passed", f"({failed} failure(s))")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
