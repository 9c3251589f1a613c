"""Hypothesis strategies for the pure protocol core: JSON values, hostile values, JSON-RPC messages."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.fuzz._gen import CAPS, INFO, LEGACY, LEVEL, LOG_LEVELS, MODERN, PV


def nested_list(depth: int, leaf: Any = None) -> Any:
    value: Any = [] if leaf is None else [leaf]
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_object(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"a": value}
    return value


#: Values built to hurt: deeper than orjson writes (254) or than repr survives (~1000), or huge.
BIG: dict[str, Any] = {
    **{f"list nested {n}": nested_list(n) for n in (254, 255, 300, 1000, 1100)},
    **{f"object nested {n}": nested_object(n) for n in (300, 1100)},
    "list nested 300 around a version": nested_list(300, MODERN),
    "string of 100k": "h" * 100_000,
    "string of 70k bidi overrides": "\u202e" * 70_000,
    "list of 20k ints": list(range(20_000)),
    "object of 5k members": {f"k{i}": i for i in range(5_000)},
    "list of 10k versions": [MODERN] * 10_000,
}


class Big:
    """Stands for a value of ``BIG`` in generated data until ``materialize``: hypothesis prints
    examples with a recursive pretty-printer, which the values themselves would break."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Big({self.name!r})"


def materialize(obj: Any) -> Any:
    """``obj`` with every ``Big`` replaced by its value (the generated structure itself is shallow)."""
    if isinstance(obj, Big):
        return BIG[obj.name]
    if isinstance(obj, list):
        return [materialize(v) for v in obj]
    if isinstance(obj, dict):
        return {k: materialize(v) for k, v in obj.items()}
    return obj


json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
#: Any JSON value (what a decoder can give), small.
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: Any JSON value, often deep or huge.
hostile_values = st.one_of(json_values, st.sampled_from([Big(name) for name in BIG]), st.sampled_from([MODERN, "2025-11-25", *LOG_LEVELS]))

valid_ids = st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=12)
invalid_ids = st.none() | st.booleans() | st.floats(allow_nan=False) | st.lists(json_scalars, max_size=2) | st.dictionaries(st.text(max_size=3), json_scalars, max_size=2)

_METHODS = [
    "initialize", "ping", "logging/setLevel", "server/discover", "tools/list", "tools/call", "resources/read",
    "resources/subscribe", "prompts/get", "subscriptions/listen", "completion/complete", "no/such", "",
    "notifications/initialized", "notifications/cancelled",
]


@st.composite
def hostile_meta(draw: st.DrawFn) -> dict[str, Any]:
    """A 2026-07-28 ``_meta`` whose reserved keys (M-02, M-03, M-19) hold any value or are missing."""
    meta: dict[str, Any] = {}
    for key, good in ((PV, st.just(MODERN)), (CAPS, st.just({})), (INFO, st.just({"name": "f", "version": "1"})),
                      (LEVEL, st.sampled_from(LOG_LEVELS))):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            meta[key] = draw(good)
        elif choice in (1, 2):
            meta[key] = draw(hostile_values)
    if PV not in meta and draw(st.booleans()):
        meta[PV] = draw(hostile_values)  # the key that makes a request modern must be there often
    if draw(st.booleans()):
        meta["progressToken"] = draw(hostile_values)
    return meta


@st.composite
def params(draw: st.DrawFn, method: Any) -> Any:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(hostile_values)  # not an object (J-10)
    p: dict[str, Any] = {}
    if method == "initialize":
        p["protocolVersion"] = draw(st.sampled_from(LEGACY) | hostile_values)
        p["capabilities"] = draw(st.just({}) | hostile_values)
        p["clientInfo"] = draw(st.just({"name": "f", "version": "1"}) | hostile_values)
    elif method == "logging/setLevel":
        p["level"] = draw(st.sampled_from(LOG_LEVELS) | hostile_values)
    elif method == "notifications/cancelled":
        p["requestId"] = draw(valid_ids | hostile_values)
    else:
        p.update(draw(st.dictionaries(st.sampled_from(["name", "uri", "arguments", "cursor", "level"]), hostile_values, max_size=3)))
    if kind >= 3:
        p["_meta"] = draw(hostile_meta() | hostile_values)
    return p


@st.composite
def messages(draw: st.DrawFn) -> Any:
    """A JSON-RPC message as decoded JSON: mostly well-formed envelopes around hostile contents."""
    if draw(st.integers(0, 19)) == 0:
        return draw(hostile_values)  # not an object at all
    method = draw(st.sampled_from(_METHODS) | json_scalars)
    msg: dict[str, Any] = {"jsonrpc": draw(st.just("2.0") | json_scalars) if draw(st.integers(0, 9)) == 0 else "2.0"}
    id_kind = draw(st.integers(0, 9))
    if id_kind < 7:
        msg["id"] = draw(valid_ids)
    elif id_kind < 9:
        msg["id"] = draw(invalid_ids)
    shape = draw(st.integers(0, 9))
    if shape < 8:
        msg["method"] = method
        if draw(st.integers(0, 9)) > 0:
            msg["params"] = draw(params(method))
    elif shape == 8:
        msg["result"] = draw(json_values)
    else:
        msg["error"] = draw(json_values)
    return msg


def to_json(value: Any) -> bytes:
    """Compact JSON of any depth (orjson writes only 254 levels, ``json`` recurses): iterative."""
    import orjson

    out: list[bytes] = []
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, bytes):  # a token pushed below
            out.append(v)
        elif isinstance(v, list):
            out.append(b"[")
            stack.append(b"]")
            for i, item in enumerate(reversed(v)):
                stack.append(item)
                if i < len(v) - 1:
                    stack.append(b",")
        elif isinstance(v, dict):
            out.append(b"{")
            stack.append(b"}")
            items = list(v.items())
            for i, (key, item) in enumerate(reversed(items)):
                stack.append(item)
                stack.append(orjson.dumps(str(key)) + b":")
                if i < len(items) - 1:
                    stack.append(b",")
        else:
            out.append(orjson.dumps(v))
    return b"".join(out)
