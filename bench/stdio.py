"""stdio benchmark: anyport vs the official Python SDK vs FastMCP vs the TypeScript SDK vs a raw floor.

Every server answers the same ``echo`` tool (the interop fixture, tests/interop/FIXTURE.md;
FastMCP's is bench/fastmcp_server.py). The client is the same for all of them: raw JSON lines
written and read with orjson over the child's stdio pipes (``anyport.bench._stdio``, the load
generator ``anyport bench -- COMMAND`` uses too), no SDK. For each server and protocol era:

1. sequential latency: one ``tools/call echo`` at a time; p50 / p90 / p99 in microseconds;
2. pipelined throughput: ``--depth`` (64) requests kept in flight; calls per second;
3. server CPU per call: user+sys time of the server process (/proc/PID/stat) across phase 2;
4. start-up: spawn to first echo answer (handshake included on the legacy era), fresh
   processes, median of ``--startup-samples``.

The legacy era does ``initialize`` (2025-11-25) + ``notifications/initialized``; the modern era
(2026-07-28) sends no handshake and puts the protocol version, client capabilities and client
info in every request's ``params._meta``.

Phases 1 and 2 run round-robin: all rows keep a server process open and each phase is split
into ``--rounds`` slices taken in turn, so load from anything else on the machine is spread over
every row rather than skewing one of them. Every loop is bounded by a count and by time; a
server that hangs, dies or answers wrongly is reported as such in its row. The official Python
peers run in bench/.peers-venv (created on first use, see bench/_common.py). Results go to
stdout as Markdown tables and, raw, to ``bench/results/stdio-<timestamp>.json``.

Usage: python bench/stdio.py [--quick] [--only anyport,pysdk,fastmcp,ts,floor] [--calls N] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
from _common import (
    RESULTS_DIR,
    ROOT,
    Peers,
    add_peers_options,
    csv,
    default_python,
    environment,
    log,
    ts_unavailable,
)

from anyport.bench._report import markdown_table, num, ratio, status_text
from anyport.bench._stdio import ERAS, Row, Runner, ServerSpec, StdioSettings, run_all
from anyport.bench._system import Pinning

SERVER_KEYS = ("anyport", "pysdk", "fastmcp", "ts", "floor")
LABELS = {
    "anyport": "anyport", "pysdk": "official Python SDK", "fastmcp": "FastMCP", "ts": "TypeScript SDK",
    "floor": "raw floor",
}

FULL = StdioSettings()
QUICK = StdioSettings(
    warmup=50, warmup_pipelined=500, calls=300, calls_seconds=2.0, pipelined_calls=10_000, pipelined_seconds=1.5,
    startup_samples=1, rounds=2, timeout=5.0, startup_timeout=15.0,
)


# -- the servers ---------------------------------------------------------------------------------


def server_specs(python: str, peers: Peers | None) -> dict[str, ServerSpec]:
    """The five servers: the repo's fixture files, ``python`` for ours and the floor, the peers
    environment for the official Python SDK and FastMCP (``peers`` None: not needed in this run)."""
    node = shutil.which("node")
    sdk_python = peers.sdk_python if peers is not None else python
    fastmcp_python = peers.python if peers is not None and peers.python else python
    fastmcp_missing = peers.fastmcp_missing if peers is not None else None
    cwd = str(ROOT)
    return {
        "anyport": ServerSpec(
            "anyport", LABELS["anyport"], [python, "-m", "anyport", "serve", "tests/interop/fixture_server.py"], ERAS, cwd=cwd,
        ),
        "pysdk": ServerSpec("pysdk", LABELS["pysdk"], [sdk_python, "tests/interop/peers/python/sdk_server.py"], ERAS, cwd=cwd),
        "fastmcp": ServerSpec(
            "fastmcp", LABELS["fastmcp"], [fastmcp_python, "bench/fastmcp_server.py"], ERAS, fastmcp_missing, cwd=cwd,
        ),
        "ts": ServerSpec(
            "ts", LABELS["ts"], [node or "node", "tests/interop/peers/ts/server.mjs"], ERAS, ts_unavailable(), cwd=cwd,
        ),
        "floor": ServerSpec("floor", LABELS["floor"], [python, "bench/floor_stdio.py"], ERAS, cwd=cwd),
    }


# -- reporting -----------------------------------------------------------------------------------


def table(rows: Sequence[Row], depth: int) -> str:
    """The results as a Markdown table; ratios compare rows of the same era."""
    by = {(r.key, r.era): r for r in rows}

    def ref(key: str, era: str, attr: str) -> float | None:
        r = by.get((key, era))
        return getattr(r, attr) if r is not None else None

    head = [
        "server", "era", "p50 µs", "p90 µs", "p99 µs", f"calls/s ({depth} in flight)", "server CPU µs/call",
        "start-up s", "p50 vs floor", "calls/s vs Python SDK", "status",
    ]
    body = [
        [
            r.label, r.era, num(r.p50_us, ".0f"), num(r.p90_us, ".0f"), num(r.p99_us, ".0f"),
            num(r.calls_per_s, ",.0f"), num(r.cpu_us_per_call, ".0f"), num(r.startup_s, ".3f"),
            ratio(r.p50_us, ref("floor", r.era, "p50_us")), ratio(r.calls_per_s, ref("pysdk", r.era, "calls_per_s")),
            status_text(r.status, r.detail),
        ]
        for r in rows
    ]
    return markdown_table(head, "llrrrrrrrrl", body)


def versus(rows: Sequence[Row]) -> str:
    """anyport against each other server, per era: its p50 over theirs (lower is better) and its
    calls/s over theirs (higher is better)."""
    by = {(r.key, r.era): r for r in rows}
    others = [k for k in SERVER_KEYS if k != "anyport" and any(r.key == k for r in rows)]
    if not others or not any(r.key == "anyport" for r in rows):
        return ""
    head = ["era", "measure"] + [f"vs {LABELS[k]}" for k in others]
    body = []
    for era in ERAS:
        ours = by.get(("anyport", era))
        if ours is None:
            continue
        for label, attr in (("p50 (lower is better)", "p50_us"), ("calls/s (higher is better)", "calls_per_s")):
            cells = [era, f"anyport {label}"]
            for k in others:
                other = by.get((k, era))
                cells.append(ratio(getattr(ours, attr), getattr(other, attr) if other is not None else None))
            body.append(cells)
    return markdown_table(head, "ll" + "r" * len(others), body)


def target_checks(rows: Sequence[Row]) -> list[str]:
    """anyport against its targets: p50 within 2x of the floor, throughput >= 10x the Python SDK."""
    by = {(r.key, r.era): r for r in rows}
    out = []
    for era in ERAS:
        ours = by.get(("anyport", era))
        if ours is None or not ours.ok:
            continue
        floor, sdk = by.get(("floor", era)), by.get(("pysdk", era))
        if floor is not None and floor.p50_us and ours.p50_us:
            x = ours.p50_us / floor.p50_us
            out.append(f"anyport {era}: p50 {x:.2f}x the floor (target <= 2x): {'met' if x <= 2 else 'MISSED'}")
        if sdk is not None and sdk.calls_per_s and ours.calls_per_s:
            x = ours.calls_per_s / sdk.calls_per_s
            out.append(
                f"anyport {era}: throughput {x:.2f}x the Python SDK (target >= 10x): {'met' if x >= 10 else 'MISSED'}"
            )
    return out


# -- CLI -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run, well under a minute")
    p.add_argument("--only", type=csv(SERVER_KEYS), default=list(SERVER_KEYS), help=f"servers: {','.join(SERVER_KEYS)}")
    p.add_argument("--eras", type=csv(ERAS), default=list(ERAS), help="eras: legacy,modern")
    p.add_argument("--calls", type=int, help="sequential calls per row (default 2000; quick 300)")
    p.add_argument("--pipelined-calls", type=int, help="pipelined calls per row (default 50000; quick 10000)")
    p.add_argument("--seconds", type=float, help="time budget of the pipelined phase (default 10; quick 1.5)")
    p.add_argument("--depth", type=int, help="requests in flight in the pipelined phase (default 64)")
    p.add_argument("--startup-samples", type=int, help="fresh processes for start-up (default 3; quick 1)")
    p.add_argument("--rounds", type=int, help="round-robin slices of each phase (default 5; quick 2)")
    p.add_argument("--timeout", type=float, help="seconds without an answer before a server counts as hung")
    p.add_argument(
        "--pin", choices=("auto", "none"), default="auto",
        help="auto: client+server on one CPU for latency, on two for throughput; none: the scheduler decides",
    )
    p.add_argument("--python", default=default_python(), help="interpreter for anyport and the floor (default: repo .venv)")
    add_peers_options(p)
    p.add_argument("--json", type=Path, help="where to write the raw results (default bench/results/stdio-<time>.json)")
    args = p.parse_args(argv)
    for name in ("calls", "pipelined_calls", "depth", "startup_samples", "rounds"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def settings_from(args: argparse.Namespace) -> StdioSettings:
    base = QUICK if args.quick else FULL
    overrides = {
        "calls": args.calls, "pipelined_calls": args.pipelined_calls, "pipelined_seconds": args.seconds,
        "depth": args.depth, "startup_samples": args.startup_samples, "rounds": args.rounds,
        "timeout": args.timeout,
    }
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = settings_from(args)
    started = dt.datetime.now()
    log(f"stdio benchmark ({'quick' if args.quick else 'full'}): {cfg}")
    load_before = [round(x, 2) for x in os.getloadavg()]
    peers = Peers(args) if {"pysdk", "fastmcp"} & set(args.only) else None
    specs = server_specs(args.python, peers)
    # Table order is fixed (anyport, Python SDK, FastMCP, TypeScript SDK, floor), whatever --only says.
    pinning = Pinning(args.pin)
    placement = (
        f"sequential: client and server on CPU {pinning.a}; pipelined: client on CPU {pinning.a}, server on CPU {pinning.b}"
        if pinning.enabled else "none (the scheduler places client and server)"
    )
    log(f"CPU placement: {placement}")
    runners = [
        Runner(specs[key], era, cfg, pinning, log=log)
        for key in SERVER_KEYS if key in args.only
        for era in args.eras if era in specs[key].eras
    ]
    rows = run_all(runners, cfg, pinning, log=log)

    report = table(rows, cfg.depth)
    vs = versus(rows)
    checks = target_checks(rows)
    print(report)
    if vs:
        print("\nanyport relative to each server, same era:\n")
        print(vs)
    if checks:
        print()
        print("\n".join(checks))

    path = args.json or RESULTS_DIR / f"stdio-{started:%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "stdio",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now() - started).total_seconds(), 1),
        "argv": sys.argv,
        "mode": "quick" if args.quick else "full",
        "settings": dataclasses.asdict(cfg),
        "cpu_placement": placement,
        # 1/5/15-minute load averages: other work on the machine skews every number.
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "environment": environment(args.python, peers, ("anyport", "mcp", "orjson", "pydantic", "uvloop")),
        "peers_environment": None if peers is None else {"python": peers.python, "note": peers.note},
        "commands": {k: s.command for k, s in specs.items()},
        "rows": [dataclasses.asdict(r) for r in rows],
        "targets": checks,
        "table": report,
        "versus": vs,
    }
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    log(f"raw results: {path}")
    return 0 if all(r.ok or r.status in ("unavailable", "not supported") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
