"""The stdio measurement phases on one ``StdioServer``: handshake, first call, sequential
latency and pipelined throughput.

Each phase is bounded by a count and by seconds; a stretch of ``timeout`` seconds without an
answer raises ``ServerHung``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from anyport.bench._mcp import EraUnsupported, ServerHung, ToolCall, WrongAnswer
from anyport.bench._stdio_pipes import StdioServer, parse_line

__all__ = ["Pipelined", "first_call", "handshake", "pipelined", "sequential"]


def handshake(srv: StdioServer, era: str, timeout: float) -> None:
    """The legacy era's initialize + initialized; the modern era has nothing to do."""
    if era == "legacy":
        srv.handshake(timeout)


def first_call(srv: StdioServer, era: str, request_id: int, timeout: float, call: ToolCall) -> None:
    """One call; a JSON-RPC error on the modern era means the server does not speak it."""
    msg = srv.roundtrip(call.line(request_id, era), request_id, timeout)
    if era == "modern" and isinstance(msg, dict) and "error" in msg:
        raise EraUnsupported(orjson.dumps(msg["error"]).decode()[:300])
    call.check(msg)


def sequential(
    srv: StdioServer, era: str, first_id: int, count: int, seconds: float, timeout: float, call: ToolCall
) -> list[float]:
    """Up to ``count`` calls one at a time (stopping after ``seconds``); latencies in µs."""
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds
    clock = time.perf_counter_ns
    for request_id in range(first_id, first_id + count):
        data = call.line(request_id, era)
        t0 = clock()
        msg = srv.roundtrip(data, request_id, timeout)
        t1 = clock()
        call.check(msg)
        latencies.append((t1 - t0) / 1000.0)
        if time.monotonic() > stop_at:
            break
    return latencies


@dataclass(slots=True)
class Pipelined:
    calls: int
    seconds: float


def pipelined(
    srv: StdioServer, era: str, first_id: int, count: int, seconds: float, depth: int, timeout: float, call: ToolCall
) -> Pipelined:
    """Keep ``depth`` requests in flight until ``count`` are answered or ``seconds`` have passed.

    After the time budget no new requests are sent and the ones in flight are drained. A stretch
    of ``timeout`` seconds without any answer, or a drain still unfinished ``timeout`` seconds
    after the budget, raises ``ServerHung``.
    """
    out = bytearray()
    outstanding: set[int] = set()
    next_id = first_id
    last_id = first_id + count
    clock = time.perf_counter
    t0 = clock()
    stop_at = t0 + seconds
    hard_stop = stop_at + timeout
    last_progress = t0
    done = 0
    while True:
        if next_id < last_id and clock() < stop_at:
            while len(outstanding) < depth and next_id < last_id:
                out += call.line(next_id, era)
                outstanding.add(next_id)
                next_id += 1
        if not outstanding:
            break
        lines = srv.pump(out, timeout)
        now = clock()
        if now > hard_stop:
            raise srv.failure(ServerHung, f"{len(outstanding)} requests still in flight {timeout:.0f} s after the time budget")
        if not lines:
            if now - last_progress > timeout:
                raise srv.failure(ServerHung, f"no answer for {timeout:.0f} s with {len(outstanding)} requests in flight")
            continue
        last_progress = now
        for line in lines:
            msg = parse_line(line)
            if "method" in msg:
                continue  # a notification (or a request) from the server: not an answer
            try:
                outstanding.remove(msg.get("id"))
            except KeyError:
                raise WrongAnswer(f"answer to an id not in flight: {line[:200]!r}") from None
            call.check(msg)
            done += 1
    return Pipelined(done, clock() - t0)
