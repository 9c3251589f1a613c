"""The stdio fuzzer against a real ``anyport serve`` process (tests/interop/fixture_server.py).

Generated lines of both eras (legacy after an initialize on each revision, 2026-07-28 with
``_meta``), hostile ``_meta`` / ``initialize`` / ``logging/setLevel``, mutated lines, garbage
bytes, invalid UTF-8, deep nesting, lines over ``--max-message-bytes``, batches, several messages
per write and messages split across writes. Asserted: the process stays up, every request with a
readable id gets exactly one answer with that id, every line written is valid JSON-RPC, and after
each batch a ``ping`` / ``tools/list`` still answers; on stdin EOF the process exits with 0.
Requirements: J-01..J-03, J-06..J-13, L-19, M-04, M-08, M-19, U-11, T-STDIO-02, T-STDIO-03, T-STDIO-07, T-STDIO-11.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fuzz._gen import Frame, Gen, encode
from tests.fuzz._scale import seed, stdio_inputs
from tests.fuzz._stdio import MODES, StdioSession, describe, fuzz_stdio, isolate, probe_once


def test_stdio_fuzz_generated_lines_T_STDIO_02_J06() -> None:
    inputs = stdio_inputs()
    report = fuzz_stdio(inputs, seed=seed(), batch_size=50, per_process=max(50, inputs // len(MODES)),
                        stop_after=3, answer_timeout=10)
    assert report.inputs >= inputs or report.failures
    if report.failures:
        detail = ""
        if report.failing_frames:
            mode, frames = report.failing_frames[0]
            culprit = isolate(mode, frames, seed=seed())
            if culprit is not None:
                detail = f"\nfirst failing frame alone (mode {mode or 'uninitialized'}): {describe(culprit[0])}\n  " + "\n  ".join(culprit[1][:4])
        pytest.fail(f"{len(report.failures)} failing batch(es) of {report.batches} ({report.inputs} inputs):\n"
                    + "\n".join(f[:2000] for f in report.failures) + detail)


@pytest.mark.parametrize(("mode", "id_"), [(None, 42), ("2025-06-18", "big-1"), ("2025-11-25", -7), ("2025-03-26", 2**63 - 1)])
def test_oversized_line_is_answered_with_its_readable_id_T_STDIO_02_J08(mode: str | None, id_: int | str) -> None:
    """A line over --max-message-bytes whose id is readable at its start gets one -32600 with that id
    (a client waits for that id; null would leave it waiting), and the server goes on."""
    limit = 4096
    head = b'{"jsonrpc":"2.0","id":' + encode(id_) + b',"method":"tools/call","params":{"name":"echo","arguments":{"text":"'
    line = head + b"x" * (3 * limit) + b'"}}}\n'
    out = probe_once([line[:1000], line[1000:5000], line[5000:]], mode=mode, limit=limit)
    assert len(out) == 1, out
    (reply,) = out
    assert reply.get("id") == id_ and type(reply.get("id")) is type(id_), f"oversized line answered with {reply}"
    assert reply["error"]["code"] == -32600


def test_each_mode_survives_every_frame_kind_once_T_STDIO_02() -> None:
    """One frame of each generated kind, alone, in each mode: every kind is answered correctly by itself."""
    gen = Gen(seed() + 1, limit=64 * 1024)
    kinds: dict[str, Frame] = {}
    while len(kinds) < len(Gen.KINDS) + 1:
        frame = gen.frame(oversized_rate=0.05)
        kinds.setdefault(frame.kind, frame)
    failures = []
    for mode in MODES:
        session = StdioSession(Gen(seed(), limit=64 * 1024), mode, limit=64 * 1024, answer_timeout=10)
        try:
            for frame in kinds.values():
                problems = session.batch([frame])
                if problems:
                    failures.append(f"mode {mode or 'uninitialized'}, {describe(frame)}:\n  " + "\n  ".join(problems[:3]))
        finally:
            failures += session.close()
    assert not failures, "\n".join(failures)


HUGE = "v" * 200_000


@pytest.mark.parametrize("mode", [None, "2025-11-25"])
def test_huge_client_strings_are_not_echoed_whole_J07(mode: str | None) -> None:
    """A 200 KB method name, tool name, prompt name, URI or cursor gets an error with the request's id
    that stays small (< 64 KiB): a client value is never repeated whole in an error (hardening)."""
    meta: dict[str, Any] = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}} if mode is None else {}
    requests: dict[str, tuple[str, dict[str, Any]]] = {
        "method": (HUGE, {}),
        "tool": ("tools/call", {"name": HUGE, "arguments": {}}),
        "tool-args": ("tools/call", {"name": "add", "arguments": {"a": HUGE, "b": 1}}),
        "prompt": ("prompts/get", {"name": HUGE}),
        "uri": ("resources/read", {"uri": HUGE}),
        "cursor": ("tools/list", {"cursor": HUGE}),
        "completion": ("completion/complete", {"ref": {"type": "ref/prompt", "name": HUGE}, "argument": {"name": "n", "value": ""}}),
    }
    lines = [encode({"jsonrpc": "2.0", "id": what, "method": method, "params": {**params, **meta}}) + b"\n"
             for what, (method, params) in requests.items()]
    out = probe_once(lines, mode=mode, wait_for=requests)
    by_id = {m.get("id"): m for m in out if isinstance(m, dict) and "id" in m}
    problems = []
    for what in requests:
        reply = by_id.get(what)
        if reply is None:
            problems.append(f"{what}: no answer")
            continue
        size = len(encode(reply))
        if size >= 64 * 1024:
            problems.append(f"{what}: a {size}-byte reply: {encode(reply)[:160]!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("tool", "depth"), [("list_roots", 300), ("ask_name", 1000), ("echo", 1000)])
def test_deeply_nested_arguments_are_not_an_internal_error_M16(tool: str, depth: int) -> None:
    """2026-07-28 tools/call with arguments nested as deep as orjson reads: an MRTR round (the requestState
    binds a digest of the arguments, M-16), a result or a -32602, never -32603."""
    meta = b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"roots":{},"elicitation":{}}}'
    args = b'{"text":"t","x":' + b"[" * depth + b"]" * depth + b"}"
    line = b'{"jsonrpc":"2.0","id":"deep","method":"tools/call","params":{"name":"' + tool.encode() + b'","arguments":' + args + b"," + meta + b"}}\n"
    (reply,) = probe_once([line], wait_for=["deep"])
    assert reply.get("id") == "deep", reply
    assert reply.get("error", {}).get("code") != -32603, f"internal error for a client's arguments: {reply}"
