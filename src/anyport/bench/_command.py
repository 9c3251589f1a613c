"""``anyport bench``: measure any MCP server, given as a command (stdio) or a URL (Streamable HTTP).

stdio (``anyport bench -- python server.py``): one fresh process per era the server speaks;
sequential latency (p50/p90/p99), pipelined throughput with ``depth`` requests in flight, the
server's CPU per call (the process and its children, from /proc), and start-up time (spawn to
first answered call, fresh processes). The same ``Runner`` as ``bench/stdio.py``.

HTTP (``anyport bench http://127.0.0.1:8000/mcp``): a probe finds what the server speaks
(2026-07-28 without a handshake; 2025-11-25 with ``initialize``, stateful when it hands out a
``Mcp-Session-Id``), then a load-generator process (the one ``bench/http.py`` uses) calls the tool
at each concurrency level; JSON or SSE replies, whichever the server sends. Server CPU is read
when the server's pid is known (``server_pid``, or found from the listening socket when the URL
is on this machine).

The tool is ``--tool NAME`` with ``--arg key=value`` arguments, or by default the first listed
tool whose only argument is a string (else the first whose only required argument is a string),
called with ``"hello, benchmark"``. Every phase is bounded by a count and by time, whatever the
target.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from anyport.bench._http_load import Cell, LoadClient, parse_url, run_job_fields, run_limit
from anyport.bench._plot import plot_http
from anyport.bench._report import markdown_table, num, status_text
from anyport.bench._stdio import (
    ECHO_TEXT,
    Row,
    Runner,
    ServerFailure,
    ServerSpec,
    StdioServer,
    StdioSettings,
    ToolCall,
    WrongAnswer,
    list_tools,
    run_all,
)
from anyport.bench._system import Pinning, listening_pid, machine

__all__ = ["BenchError", "BenchOptions", "BenchResult", "bench_http", "bench_stdio", "choose_call"]


class BenchError(Exception):
    """The benchmark cannot run (server unreachable, dead, or without the tool): a message for the user."""


@dataclass(frozen=True, slots=True)
class BenchOptions:
    tool: str | None = None
    #: ``key=value`` pairs; values are JSON when they parse as JSON, unless the schema says string.
    args: tuple[str, ...] = ()
    #: auto (every era the server speaks), legacy (2025-11-25), modern (2026-07-28).
    era: str = "auto"
    timeout: float = 10.0
    # stdio
    warmup: int = 100
    calls: int = 1000
    pipelined_calls: int = 10_000
    depth: int = 64
    seconds: float = 5.0
    startup_samples: int = 3
    startup_timeout: float = 30.0
    pin: str = "auto"
    # HTTP
    concurrency: tuple[int, ...] = (1, 16, 64)
    requests: int = 20_000
    warmup_seconds: float = 0.3
    server_pid: int | None = None
    insecure: bool = False


@dataclass(slots=True)
class BenchResult:
    table: str
    payload: dict[str, Any]
    ok: bool
    notes: list[str] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- choosing the tool ---------------------------------------------------------------------------


def _schema(tool: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    schema = tool.get("inputSchema")
    if not isinstance(schema, dict):
        return {}, []
    props = schema.get("properties")
    required = schema.get("required")
    return (props if isinstance(props, dict) else {}), [r for r in required or [] if isinstance(r, str)]


def _single_string_argument(tool: Mapping[str, Any], strict: bool) -> str | None:
    """The argument's name when the tool takes one string argument, else None.

    ``strict``: its only property is a string. Otherwise: its only required property is a string
    (other, optional arguments keep their defaults).
    """
    props, required = _schema(tool)

    def is_string(name: str) -> bool:
        prop = props.get(name)
        return isinstance(prop, dict) and prop.get("type") == "string"

    if strict:
        only = next(iter(props)) if len(props) == 1 else None
        return only if only is not None and is_string(only) and set(required) <= {only} else None
    return required[0] if len(required) == 1 and is_string(required[0]) else None


def _coerce(value: str, prop: Any) -> Any:
    """A ``--arg`` value: the plain string when the schema says string, else JSON if it parses."""
    if isinstance(prop, dict) and prop.get("type") == "string":
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def choose_call(tools: Sequence[Mapping[str, Any]], name: str | None, pairs: Sequence[str]) -> ToolCall:
    """The call to repeat: ``name`` with ``pairs`` as arguments, or the first one-string-argument tool."""
    names = [str(t.get("name")) for t in tools]
    if name is not None:
        tool = next((t for t in tools if t.get("name") == name), None)
        if tool is None:
            raise BenchError(f"the server has no tool named {name!r}; it has: {', '.join(names) or '(none)'}")
        arguments: dict[str, Any] = {}
    else:
        found = next(
            ((t, a) for strict in (True, False) for t in tools if (a := _single_string_argument(t, strict)) is not None),
            None,
        )
        if found is None:
            raise BenchError(
                f"no tool takes a single string argument (tools: {', '.join(names) or '(none)'}); "
                "name one with --tool NAME --arg key=value"
            )
        tool, arg = found
        arguments = {arg: ECHO_TEXT}
    props, _ = _schema(tool)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BenchError(f"--arg takes key=value, not {pair!r}")
        arguments[key] = _coerce(value, props.get(key))
    return ToolCall(str(tool["name"]), arguments, None)


def _call_info(call: ToolCall) -> dict[str, Any]:
    return {"name": call.name, "arguments": dict(call.arguments)}


# -- stdio ---------------------------------------------------------------------------------------


def _probe_stdio(command: Sequence[str], era: str, opts: BenchOptions, choose: Callable[[list[dict[str, Any]]], ToolCall]) -> ToolCall:
    """A fresh server process on ``era``: (handshake,) tools/list, then one checked call of the tool
    ``choose`` picks from the list. Raises ServerFailure, OSError, or BenchError from ``choose``."""
    srv = StdioServer(command)
    try:
        srv.start()
        if era == "legacy":
            srv.handshake(opts.startup_timeout)
        call = choose(list_tools(srv, era, 1, opts.startup_timeout))
        call.check(srv.roundtrip(call.line(1000, era), 1000, opts.timeout))
        return call
    finally:
        srv.dispose()


def bench_stdio(command: Sequence[str], opts: BenchOptions, log: Callable[[str], None] = _log) -> BenchResult:
    """Measure the stdio server started by ``command``; raises BenchError when it cannot be measured."""
    command = list(command)
    started = dt.datetime.now()
    t0 = time.monotonic()
    wanted = ["legacy", "modern"] if opts.era == "auto" else [opts.era]
    eras: list[str] = []
    chosen: ToolCall | None = None
    errors: dict[str, str] = {}
    tool_failure: str | None = None

    def choose(tools: list[dict[str, Any]]) -> ToolCall:
        return chosen if chosen is not None else choose_call(tools, opts.tool, opts.args)

    for i, era in enumerate(wanted):
        log(f"probing the {_era_label(era)} era ({'initialize, ' if era == 'legacy' else ''}tools/list, one call) ...")
        try:
            call = _probe_stdio(command, era, opts, choose)
        except OSError as exc:
            hint = f" (a script? anyport bench -- python {' '.join(command)})" if command[0].endswith(".py") else ""
            raise BenchError(f"cannot start {command[0]!r}: {exc}{hint}") from None
        except WrongAnswer as exc:
            if str(exc).startswith("tools/call"):
                tool_failure = tool_failure or str(exc)  # the tool itself failed on this era
            errors[era] = f"{exc.kind}: {exc}"
            continue
        except ServerFailure as exc:
            if exc.kind == "died" and i == 0:
                raise BenchError(f"the server {exc}") from None
            errors[era] = f"{exc.kind}: {exc}"
            continue
        chosen = call
        eras.append(era)
    if chosen is None:
        if tool_failure is not None:
            raise BenchError(tool_failure)
        detail = "; ".join(f"{_era_label(e)}: {m}" for e, m in errors.items())
        raise BenchError(f"the server could not be benchmarked on any era ({detail})")
    call = chosen
    log(f"tool: {call.name} {orjson.dumps(dict(call.arguments)).decode()}; eras: {', '.join(map(_era_label, eras))}")

    cfg = StdioSettings(
        warmup=opts.warmup, warmup_pipelined=max(opts.warmup, opts.depth) * 10, calls=opts.calls,
        calls_seconds=opts.seconds, pipelined_calls=opts.pipelined_calls, pipelined_seconds=opts.seconds,
        depth=opts.depth, startup_samples=opts.startup_samples, rounds=1, timeout=opts.timeout,
        startup_timeout=opts.startup_timeout,
    )
    spec = ServerSpec("server", "server", command, tuple(eras))
    pinning = Pinning(opts.pin)
    runners = [Runner(spec, era, cfg, pinning, call=call, log=log) for era in eras]
    rows = run_all(runners, cfg, pinning, log=log)
    table = stdio_table(rows, cfg.depth)
    ok = all(r.ok for r in rows)
    payload = {
        "benchmark": "anyport bench (stdio)",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "command": command,
        "tool": _call_info(call),
        "eras": eras,
        "eras_left_out": errors,
        "settings": dataclasses.asdict(cfg),
        "cpu_placement": "client and server on one CPU for latency, two for throughput" if pinning.enabled else "none",
        "machine": machine(),
        "rows": [dataclasses.asdict(r) for r in rows],
        "ok": ok,
        "table": table,
    }
    notes = [f"{e}: left out ({m[:200]})" for e, m in errors.items()] if opts.era == "auto" else []
    return BenchResult(table, payload, ok, notes)


def stdio_table(rows: Sequence[Row], depth: int) -> str:
    head = ["era", "p50 µs", "p90 µs", "p99 µs", f"calls/s ({depth} in flight)", "server CPU µs/call", "start-up s", "status"]
    body = [
        [
            _era_label(r.era), num(r.p50_us, ".0f"), num(r.p90_us, ".0f"), num(r.p99_us, ".0f"), num(r.calls_per_s, ",.0f"),
            num(r.cpu_us_per_call, ".0f"), num(r.startup_s, ".3f"), status_text(r.status, r.detail),
        ]
        for r in rows
    ]
    return markdown_table(head, "lrrrrrrl", body)


def _era_label(era: str) -> str:
    return {"legacy": "2025-11-25", "modern": "2026-07-28"}.get(era, era)


# -- HTTP ----------------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_ERA_OF = {"stateful": "legacy", "stateless": "legacy", "modern": "modern"}
_MODE_LABELS = {"stateful": "2025-11-25, stateful (session)", "stateless": "2025-11-25, stateless", "modern": "2026-07-28"}


def bench_http(url: str, opts: BenchOptions, log: Callable[[str], None] = _log) -> BenchResult:
    """Measure the Streamable HTTP endpoint at ``url``; raises BenchError when it cannot be measured."""
    try:
        target = parse_url(url)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    if opts.insecure:
        target["insecure"] = True
    started = dt.datetime.now()
    t0 = time.monotonic()
    notes: list[str] = []
    loopback = _is_loopback(target["host"])
    total = opts.requests * len(opts.concurrency)
    if not loopback:
        log(f"note: {target['host']} is not a loopback address; the load is bounded to {opts.requests:,} requests "
            f"or {opts.seconds:g} s per level ({total:,} requests per era at most)")
    client = LoadClient()
    try:
        probe = client.run({"job": "probe", **target, "timeout": opts.timeout}, 4 * opts.timeout + 10)
        if not probe.get("ok"):
            raise BenchError(f"cannot reach {url}: {probe.get('error', 'no answer')}")
        kinds: list[str] = []
        version: str | None = None
        errors: dict[str, str] = {}
        tools: list[dict[str, Any]] | None = None
        for era in ("legacy", "modern"):
            info = probe.get(era) or {}
            if opts.era not in ("auto", era):
                continue
            if not info.get("ok"):
                errors[era] = str(info.get("error", "no answer"))
                continue
            if era == "legacy":
                kinds.append("stateful" if info.get("stateful") else "stateless")
                version = info.get("protocol_version")
            else:
                kinds.append("modern")
            if tools is None:
                tools = [t for t in info.get("tools", []) if isinstance(t, dict)]
        if tools is None:
            detail = "; ".join(f"{e}: {m}" for e, m in errors.items())
            raise BenchError(f"{url} answered no tools/list ({detail})")
        call = choose_call(tools, opts.tool, opts.args)
        pid = opts.server_pid
        if pid is None and loopback:
            pid = listening_pid(target["port"])
        log(f"tool: {call.name} {orjson.dumps(dict(call.arguments)).decode()}; modes: "
            f"{', '.join(_MODE_LABELS[k] for k in kinds)}; server pid: {pid or 'unknown (no server CPU)'}")
        # One checked call per mode before any load: a wrong tool or argument is an error, not a table.
        for kind in kinds:
            check = run_job_fields(
                kind=kind, target=target, concurrency=1, warmup_count=0, warmup_seconds=0.0, count=1,
                seconds=opts.timeout, timeout=opts.timeout, server_pid=None, call=call, protocol_version=version,
            )
            result = client.run(check, run_limit(check))
            if not result.get("ok"):
                errors[_ERA_OF[kind]] = f"tools/call failed: {result.get('error', 'no answer')}"
        failed = [k for k in kinds if _ERA_OF[k] in errors]
        if failed == kinds:  # the call works in no mode: an error, not a table
            raise BenchError("; ".join(f"{_MODE_LABELS[k]}: {errors[_ERA_OF[k]]}" for k in kinds))
        kinds = [k for k in kinds if k not in failed]  # (auto) a mode where the call fails is left out, with a note
        cells: list[Cell] = []
        for kind in kinds:
            for c in opts.concurrency:
                cell = Cell("server", kind, c)
                cells.append(cell)
                job = run_job_fields(
                    kind=kind, target=target, concurrency=c, warmup_count=max(c * 10, 100),
                    warmup_seconds=opts.warmup_seconds, count=opts.requests, seconds=opts.seconds,
                    timeout=opts.timeout, server_pid=pid, call=call, protocol_version=version,
                )
                result = client.run(job, run_limit(job))
                if result.get("ok"):
                    cell.add(result)
                else:
                    cell.fail(result)
                cell.finish()
                log(f"  {_MODE_LABELS[kind]}, concurrency {c}: "
                    + (f"{cell.rps or 0:,.0f} req/s, p50 {cell.p50_us or 0:,.0f} µs" if cell.ok else f"{cell.status}: {cell.detail[:200]}"))
    finally:
        client.dispose()
    table = http_table(cells)
    ok = all(c.ok for c in cells)
    points = [
        {"server": "server", "mode": _MODE_LABELS[c.mode], "concurrency": c.concurrency, "p50_us": c.p50_us,
         "p99_us": c.p99_us, "rps": c.rps}
        for c in cells if c.ok
    ]
    payload = {
        "benchmark": "anyport bench (http)",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "url": url,
        "tool": _call_info(call),
        "modes": kinds,
        "protocol_version": version,
        "eras_left_out": errors,
        "server_pid": pid,
        "settings": {
            "concurrency": list(opts.concurrency), "requests": opts.requests, "seconds": opts.seconds,
            "warmup_seconds": opts.warmup_seconds, "timeout": opts.timeout,
        },
        "machine": machine(),
        "cells": [dataclasses.asdict(c) for c in cells],
        "points": points,
        "ok": ok,
        "table": table,
    }
    if opts.era == "auto":
        notes += [f"{e}: left out ({m[:200]})" for e, m in errors.items()]
    return BenchResult(table, payload, ok, notes, points)


def http_table(cells: Sequence[Cell]) -> str:
    head = ["mode", "conc.", "req/s", "p50 µs", "p99 µs", "server CPU µs/req", "reply", "status"]
    body = [
        [
            _MODE_LABELS.get(c.mode, c.mode), str(c.concurrency), num(c.rps, ",.0f"), num(c.p50_us, ",.0f"),
            num(c.p99_us, ",.0f"), num(c.cpu_us_per_req, ".0f"), c.reply, status_text(c.status, c.detail),
        ]
        for c in cells
    ]
    return markdown_table(head, "lrrrrrll", body)


def write_plot(result: BenchResult, path: str, title: str) -> str:
    """The latency / req/s PNG of an HTTP result (raises ``PlotUnavailable`` without matplotlib)."""
    return plot_http(result.points, path, title)
