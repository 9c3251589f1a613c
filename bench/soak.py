"""Soak: rounds of clients on the three HTTP transports that start progress-heavy calls and drop mid-stream.

The long version of ``tests/transports/test_soak.py`` (same code, imported from there), for ``make fuzz``:

    .venv/bin/python bench/soak.py                       # 3 rounds of 500 clients, all at once
    .venv/bin/python bench/soak.py --rounds 5 --concurrency 100 --json soak.json

One ``anyport serve tests/transports/hardening_app.py --http --session-idle-timeout T`` subprocess;
a warm-up of 30 clients; then each round: ``--clients`` clients, a third per transport (2026-07-28
stateless, 2025-11-25 session, 2024-11-05 HTTP+SSE), each calls ``spin(steps=10**9)`` with a
progressToken, reads ``--progress-each`` progress notifications and drops its connection (no
DELETE, no cancel); ``--concurrency`` limits how many are connected at a time (default: all of a
round at once). A probe subprocess GETs ``/healthz`` on a new connection every 50 ms throughout.
After the last client of a round hung up, ``T + 3`` s with no other traffic, then the fixture's
``stats`` tool and ``/proc/<pid>/status``.

A round fails on: a 5xx; a client without progress; /healthz p95 (p99 with --healthz-p99-ms) or max over
the limits (burst or idle wait); a spin handler still running after the idle wait; more asyncio tasks than before the
round (+2); RSS after the idle wait above max(baseline + ``--rss-slack-pct``, baseline +
``--rss-slack-mb``); a traceback in the server's log. Exit status: 0 when no round failed, 1 otherwise.

Progress goes to stderr; stdout has the Markdown summary table and the problems. Every round is
bounded in time (client setup, hold and idle waits are all bounded); so is the number of rounds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Not bench/ itself (its http.py would shadow the standard library's http package), but the repo
# root: tests.transports.test_soak and its helpers.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() not in (ROOT, ROOT / "bench"))]

from tests.transports.test_soak import (  # noqa: E402  (after the path set-up)
    HEALTHZ_MAX_S,
    HEALTHZ_P95_S,
    MB_KB,
    RSS_SLACK_FRACTION,
    RSS_SLACK_KB,
    TASKS_SLACK,
    SoakConfig,
    check,
    report_json,
    soak,
    table,
)

MAX_ROUNDS = 100
MAX_CLIENTS = 5000


def positive_int(limit: int) -> Callable[[str], int]:
    """An argparse type: an int in 1..limit."""

    def parse(text: str) -> int:
        value = int(text)
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be 1..{limit}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=positive_int(MAX_CLIENTS), default=500, help="clients per round (default 500)")
    p.add_argument("--rounds", type=positive_int(MAX_ROUNDS), default=3, help="rounds (default 3)")
    p.add_argument("--concurrency", type=positive_int(MAX_CLIENTS), default=None,
                   help="clients connected at a time (default: every client of a round at once)")
    p.add_argument("--idle-timeout", type=float, default=2.0, help="the server's --session-idle-timeout in s (default 2)")
    p.add_argument("--progress-each", type=positive_int(1000), default=3, help="progress notifications each client reads (default 3)")
    p.add_argument("--ramp", type=float, default=0.5, help="without --concurrency: the clients connect within this many seconds (default 0.5)")
    p.add_argument("--hold", type=float, default=0.3, help="with --concurrency: each client holds its stream 0..HOLD s (default 0.3)")
    p.add_argument("--setup-timeout", type=float, default=30.0, help="one client's connect-to-progress bound in s (default 30)")
    p.add_argument("--round-timeout", type=float, default=300.0, help="bound of one round's clients in s (default 300)")
    p.add_argument("--warmup-clients", type=int, default=30, help="clients of the warm-up before the baseline (default 30)")
    p.add_argument("--healthz-p95-ms", type=float, default=HEALTHZ_P95_S * 1000, help="fail above this /healthz p95 (default %(default)s)")
    p.add_argument("--healthz-p99-ms", type=float, default=None, help="fail above this /healthz p99 (default: not checked)")
    p.add_argument("--healthz-max-ms", type=float, default=HEALTHZ_MAX_S * 1000, help="fail above this /healthz max (default %(default)s)")
    p.add_argument("--rss-slack-mb", type=float, default=RSS_SLACK_KB / MB_KB, help="RSS allowed over the baseline in MB (default %(default)s)")
    p.add_argument("--rss-slack-pct", type=float, default=RSS_SLACK_FRACTION * 100, help="... or in %% of it, whichever is more (default %(default)s)")
    p.add_argument("--tasks-slack", type=int, default=TASKS_SLACK, help="asyncio tasks allowed over the pre-round count (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write every round's figures as JSON")
    args = p.parse_args(argv)
    if not 0.5 <= args.idle_timeout <= 600:
        p.error("--idle-timeout must be 0.5..600 s")
    if (not 0 <= args.hold <= 60 or not 1 <= args.setup_timeout <= 600 or not 0 <= args.warmup_clients <= MAX_CLIENTS
            or not 10 <= args.round_timeout <= 3600):
        p.error("--hold 0..60, --setup-timeout 1..600, --warmup-clients 0..5000, --round-timeout 10..3600")

    config = SoakConfig(
        clients=args.clients, rounds=args.rounds, concurrency=args.concurrency, idle_timeout=args.idle_timeout,
        progress_each=args.progress_each, hold=args.hold, setup_timeout=args.setup_timeout,
        warmup_clients=args.warmup_clients, round_timeout=args.round_timeout, seed=args.seed, ramp=args.ramp,
    )
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    log(f"soak: {args.rounds} x {args.clients} clients, {args.concurrency or 'all'} at a time, idle timeout {args.idle_timeout} s")
    reports = soak(config, log=log)
    print(table(reports))
    failed = False
    for r in reports:
        p99 = math.inf if args.healthz_p99_ms is None else args.healthz_p99_ms / 1000
        problems = check(r, p95=args.healthz_p95_ms / 1000, p99=p99, worst=args.healthz_max_ms / 1000, rss_fraction=args.rss_slack_pct / 100,
                         rss_slack_kb=int(args.rss_slack_mb * MB_KB), tasks_slack=args.tasks_slack)
        for problem in problems:
            print(f"- round {r.round}: {problem}")
        failed = failed or bool(problems)
    if args.json:
        Path(args.json).write_text(json.dumps(report_json(reports), indent=2, default=str))
    print(f"\n{'FAILED' if failed else 'passed'}: {len(reports)} rounds in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
