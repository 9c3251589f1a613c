"""What a correct peer answers: JSON-RPC shape checks and the per-id answer model of a stream.

Independent of the code under test: the rules come from JSON-RPC 2.0 and the MCP spec (DIGEST
J-*, L-05, T-STDIO-*), and the only shared piece is the JSON parser (orjson), so that the oracle
reads a frame exactly as the receiver does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

LEGACY = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
BATCHING = frozenset({"2025-03-26"})  # J-11
#: An error reply names at most this much (hardening: client values echoed in errors stay small).
MAX_ERROR_BYTES = 64 * 1024
INTERNAL_ERROR = -32603


def valid_id(value: object) -> bool:
    """J-03: a request id is a string or an integer (not null, not a bool, not a float)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def id_key(value: Any) -> tuple[str, Any]:
    """1 and "1" are different ids."""
    return ("i" if isinstance(value, int) else "s", value)


def response_problem(msg: Any) -> str | None:
    """Why ``msg`` is not a valid JSON-RPC response (J-01, J-06, J-07, J-08), or None."""
    if not isinstance(msg, dict):
        return f"a response must be an object, got {type(msg).__name__}"
    if msg.get("jsonrpc") != "2.0":
        return "jsonrpc is not '2.0' (J-01)"
    if ("result" in msg) == ("error" in msg):
        return "exactly one of result / error (J-06)"
    extra = set(msg) - {"jsonrpc", "id", "result", "error"}
    if extra:
        return f"unexpected members {sorted(extra)}"
    if "result" in msg:
        if not valid_id(msg.get("id")):
            return "a result needs the request's id (J-06)"
        if not isinstance(msg["result"], dict):
            return "result must be an object (J-10)"
        return None
    if "id" in msg and msg["id"] is not None and not valid_id(msg["id"]):
        return f"error id {msg['id']!r} is neither the request id nor absent/null (J-08)"
    err = msg["error"]
    if not isinstance(err, dict):
        return "error must be an object (J-07)"
    code = err.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        return "error.code must be an integer (J-07)"
    if not isinstance(err.get("message"), str):
        return "error.message must be a string (J-07)"
    if set(err) - {"code", "message", "data"}:
        return f"unexpected error members {sorted(set(err) - {'code', 'message', 'data'})}"
    return None


def outgoing_problem(msg: Any) -> str | None:
    """A message a server writes: a response, a notification, or (legacy) a server->client request."""
    if isinstance(msg, dict) and "method" in msg:
        if msg.get("jsonrpc") != "2.0" or not isinstance(msg["method"], str) or not msg["method"]:
            return "bad notification/request envelope (J-01)"
        if "params" in msg and not isinstance(msg["params"], dict):
            return "params must be an object (J-10)"
        if "id" in msg and not valid_id(msg["id"]):
            return "a server request needs a valid id (J-03)"
        if set(msg) - {"jsonrpc", "id", "method", "params"}:
            return "unexpected members in a server message"
        return None
    return response_problem(msg)


# -- the answer model of one stream (a stdio process, an HTTP+SSE connection) -------------------


ANON = ("anon", None)


@dataclass
class Expectation:
    """Answers owed for what was sent: exact counts per id, a range for id-less errors."""

    required: Counter[tuple[str, Any]] = field(default_factory=Counter)
    #: Ids that may get one error back (a response-shaped message that is itself invalid).
    optional: Counter[tuple[str, Any]] = field(default_factory=Counter)
    anon_min: int = 0
    anon_max: int = 0
    #: The frame each id came from (for reports).
    origin: dict[tuple[str, Any], bytes] = field(default_factory=dict)

    def merge(self, other: Expectation) -> None:
        self.required.update(other.required)
        self.optional.update(other.optional)
        self.anon_min += other.anon_min
        self.anon_max += other.anon_max
        self.origin.update(other.origin)


class StreamModel:
    """What a server stream answers for each frame, given the state only ``initialize`` changes.

    ``version``: the legacy revision negotiated so far (None: not initialized; the connection is
    dual-era, M-12, so 2026-07-28 requests are served either way).
    """

    def __init__(self, version: str | None = None) -> None:
        self.version = version

    @property
    def batching(self) -> bool:
        return self.version in BATCHING

    def oversized(self, head_id: Any, data: bytes) -> Expectation:
        """A frame over the size limit gets one -32600 (T-STDIO-02); with the id readable from its head, that id."""
        exp = Expectation()
        if valid_id(head_id):
            exp.required[id_key(head_id)] += 1
            exp.origin[id_key(head_id)] = data[:200]
        else:
            exp.anon_min += 1
            exp.anon_max += 1
        return exp

    def frame(self, data: bytes) -> Expectation:
        """One complete frame (a stdio line without its end, an HTTP+SSE POST body)."""
        exp = Expectation()
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            exp.anon_min += 1  # -32700 (J-02), no id to read
            exp.anon_max += 1
            return exp
        if isinstance(obj, list):
            if not self.batching or not obj:
                exp.anon_min += 1  # J-13: one -32600 for the whole array; nothing in it runs
                exp.anon_max += 1
                return exp
            for item in obj:
                if isinstance(item, dict) and item.get("method") == "initialize" and "id" not in item:
                    exp.anon_max += 1  # J-12: initialize is never batched, not even as a notification
                    continue
                self._message(item, exp, data, in_batch=True)
            return exp
        self._message(obj, exp, data, in_batch=False)
        return exp

    def _message(self, obj: Any, exp: Expectation, data: bytes, *, in_batch: bool) -> None:
        if not isinstance(obj, dict):
            exp.anon_min += 1  # J-01: not an object
            exp.anon_max += 1
            return
        rid = obj.get("id")
        if "method" in obj and valid_id(rid):
            # A request with a readable id: exactly one answer with that id, whatever else is wrong.
            exp.required[id_key(rid)] += 1
            exp.origin[id_key(rid)] = data[:300]
            if not in_batch:
                self._initialize(obj)
            return
        if "method" in obj and "id" not in obj:
            params = obj.get("params")
            ok = obj.get("jsonrpc") == "2.0" and isinstance(obj["method"], str) and obj["method"] and (params is None or isinstance(params, dict))
            if not ok:
                exp.anon_max += 1  # an invalid notification: an id-less -32600 or nothing
            return  # J-09: never an answer to a notification
        if "method" in obj:
            exp.anon_min += 1  # J-03: a null / bool / float / structured id is refused, id unreadable
            exp.anon_max += 1
            return
        # No method: a response from the client to an id we never used (U-05: ignored), or junk.
        if valid_id(rid):
            exp.optional[id_key(rid)] += 1
            exp.origin[id_key(rid)] = data[:300]
        exp.anon_max += 1

    def _initialize(self, obj: dict[str, Any]) -> None:
        """L-05: a usable initialize on a connection not yet initialized selects a legacy revision."""
        if self.version is not None or obj.get("method") != "initialize" or obj.get("jsonrpc") != "2.0":
            return
        params = obj.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            return
        self.version = requested if requested in LEGACY else LEGACY[-1]


@dataclass
class Tally:
    """Answers seen on a stream, and the problems found in them."""

    counts: Counter[tuple[str, Any]] = field(default_factory=Counter)
    anon: int = 0
    problems: list[str] = field(default_factory=list)
    server_requests: list[Any] = field(default_factory=list)

    def take(self, raw: bytes) -> None:
        """One message (line / SSE data) the server wrote."""
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self.problems.append(f"T-STDIO-03/J-01: the server wrote a non-JSON line ({exc}): {raw[:200]!r}")
            return
        items = msg if isinstance(msg, list) else [msg]
        if isinstance(msg, list) and not msg:
            self.problems.append("J-11: an empty batch reply")
        for item in items:
            problem = response_problem(item) if isinstance(msg, list) else outgoing_problem(item)
            if problem is not None:
                self.problems.append(f"{problem}: {raw[:300]!r}")
                continue
            if "method" in item:
                if "id" in item:
                    self.server_requests.append(item["id"])
                continue  # a notification (progress, log, list_changed)
            if "error" in item:
                if item["error"]["code"] == INTERNAL_ERROR:
                    self.problems.append(f"-32603 internal error caused by client input: {raw[:300]!r}")
                size = len(orjson.dumps(item)) if isinstance(msg, list) else len(raw)  # each reply of a batch on its own
                if size > MAX_ERROR_BYTES:
                    self.problems.append(f"error reply of {size} bytes (> {MAX_ERROR_BYTES}): {orjson.dumps(item)[:200]!r}")
            rid = item.get("id")
            if rid is None:
                self.anon += 1
            else:
                self.counts[id_key(rid)] += 1


def compare(exp: Expectation, tally: Tally, *, anon_before: int = 0) -> list[str]:
    """Every request with a readable id answered exactly once with that id (J-06); nothing else."""
    out: list[str] = []
    for key, n in exp.required.items():
        got = tally.counts.get(key, 0)
        if got != n:
            out.append(f"id {key[1]!r}: {got} answers, expected {n}; frame: {exp.origin.get(key, b'?')[:300]!r}")
    for key, got in tally.counts.items():
        if key in exp.required:
            continue
        if got > exp.optional.get(key, 0):
            out.append(f"id {key[1]!r}: {got} answers to an id no request carried; frame: {exp.origin.get(key, b'(never sent)')[:300]!r}")
    anon = tally.anon - anon_before
    if not exp.anon_min <= anon <= exp.anon_max:
        out.append(f"{anon} errors without id, expected {exp.anon_min}..{exp.anon_max} (J-08)")
    return out


def split_frames(stream: bytes, limit: int) -> list[tuple[bytes, bool]]:
    """Newline framing (T-STDIO-02): (line, oversized) for each non-blank line of a terminated stream.

    ``\\r\\n`` is accepted; a line longer than ``limit`` (before dropping ``\\r``) is oversized.
    """
    assert stream.endswith(b"\n")
    out: list[tuple[bytes, bool]] = []
    for line in stream.split(b"\n")[:-1]:
        if len(line) > limit:
            out.append((line, True))
            continue
        line = line.rstrip(b"\r")
        if line.strip():
            out.append((line, False))
    return out


def signature(problem: str) -> str:
    """What kind of failure this is, without its ids, sizes and data: failures are grouped by it."""
    import re

    message = re.search(r'"message":"([^"]{0,40})', problem)
    head = re.sub(r"b'.*|b\".*", "", problem.split("\n", 1)[0])[:90]
    head = re.sub(r"\[mode [^\]]*\]|\[[a-z-]+\]|'[^']*'|\"[^\"]*\"|\d+", "_", head)
    return head + (" / " + re.sub(r"\d+|v{3,}", "_", message.group(1)) if message else "")
