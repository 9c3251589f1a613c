"""Seeded generators of hostile MCP traffic for the stdio and HTTP fuzzers.

Plain ``random.Random`` (not hypothesis): the process fuzzers need millions of inputs cheaply and a
stream that a seed reproduces. Every frame is bytes without its line end; the harness joins them.

Request ids come from one counter per generator, so each request a frame carries has an id no
other frame uses (unless a mutation copies it): the oracle can count answers per id. Ids that must
never match a live request (``notifications/cancelled``'s ``requestId``, client responses) come
from a separate namespace.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

MODERN = "2026-07-28"
LEGACY = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
M = "io.modelcontextprotocol/"
PV, CAPS, INFO, LEVEL = M + "protocolVersion", M + "clientCapabilities", M + "clientInfo", M + "logLevel"
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")

#: Tools of tests/interop/fixture_server.py that answer at once (no sleep, no long progress).
FAST_TOOLS = ("echo", "add", "weather", "fail", "progress", "log")
#: Tools that ask the client (legacy: a server->client request; 2026-07-28: an MRTR round).
ASKING_TOOLS = ("ask_name", "summarize", "list_roots")


class Raw:
    """JSON text placed as-is in a message (nesting deeper than orjson writes, 1e400, huge ints)."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r}{'...' if len(self.text) > 40 else ''} {len(self.text)} bytes)"


def _fragment(obj: Any) -> Any:
    if isinstance(obj, Raw):
        return orjson.Fragment(obj.text)
    raise TypeError(type(obj).__name__)


def encode(obj: Any) -> bytes:
    """Compact JSON; ``Raw`` parts verbatim."""
    return orjson.dumps(obj, default=_fragment, option=orjson.OPT_NON_STR_KEYS)


def deep_list(depth: int, leaf: bytes = b"") -> Raw:
    return Raw(b"[" * depth + leaf + b"]" * depth)


def deep_object(depth: int) -> Raw:
    return Raw(b'{"a":' * depth + b"{}" + b"}" * depth)


#: Nesting depths around orjson's limits: it writes at most 254 levels and reads at most 1024.
DEPTHS = (254, 255, 300, 1000, 1023, 1024, 1025, 1100)


@dataclass(frozen=True, slots=True)
class Frame:
    """One generated frame: its bytes (no line end) and what made it (for reports)."""

    data: bytes
    kind: str
    #: For an oversized request written id-first: the id a reply must carry.
    head_id: str | int | None = None


class Gen(random.Random):
    """Random JSON-RPC traffic of both eras, valid and hostile, from one seed."""

    def __init__(self, seed: int, *, huge: int = 64 * 1024, limit: int = 256 * 1024, id_prefix: str = "") -> None:
        super().__init__(seed)
        self.huge = huge  # size of a "huge" string
        self.limit = limit  # the receiver's message limit: oversized frames exceed it
        self.id_prefix = id_prefix
        self._next = 0

    # -- ids ---------------------------------------------------------------------------------

    def new_id(self) -> str | int:
        """A fresh valid request id (J-03): an integer or a string, unique in this generator."""
        self._next += 1
        n = self._next
        form = self.randrange(6)
        if form == 0:
            return f"{self.id_prefix}s{n}"
        if form == 1:
            return f"{self.id_prefix}ü-\u202e{n}\x00"  # non-ASCII, bidi override and NUL in a string id
        if form == 2 and not self.id_prefix:
            return -n
        if form == 3 and not self.id_prefix:
            return 2**63 - 1 - n  # near the top of the 64-bit range
        return f"{self.id_prefix}{n}" if self.id_prefix else 10_000_000 + n

    def foreign_id(self) -> Any:
        """An id that no request of ours uses (cancellations and client responses point at it)."""
        return self.choice([f"foreign-{self.getrandbits(40)}", -(10**15) - self.getrandbits(30)])

    def invalid_id(self) -> Any:
        return self.choice([None, True, False, 1.5, -0.0, [], {}, [1], {"id": 1}, Raw(b"1e400"), Raw(b"123456789012345678901234567890")])

    # -- values ------------------------------------------------------------------------------

    def text(self, n: int | None = None) -> str:
        n = self.randrange(12) if n is None else n
        alphabet = self.choice([
            "abcxyz", "ü€𝄞中\u202e\u200b", "\x00\x01\x1f\x7f\"\\/\t\r\n", "0123456789-._:/", " \t",
        ])
        return "".join(self.choice(alphabet) for _ in range(n))

    def scalar(self) -> Any:
        return self.choice([
            None, True, False, 0, 1, -1, 2**63 - 1, -(2**63), 2**64 - 1, 0.5, -0.0, 1e308,
            "", self.text(), "debug", MODERN, "2025-11-25", "x" * 300,
        ])

    def value(self, depth: int = 3) -> Any:
        """A random JSON value, small."""
        r = self.randrange(10)
        if depth <= 0 or r < 5:
            return self.scalar()
        if r < 7:
            return [self.value(depth - 1) for _ in range(self.randrange(4))]
        return {self.text(): self.value(depth - 1) for _ in range(self.randrange(4))}

    def hostile(self) -> Any:
        """A value of any JSON type, often one built to hurt: deep, huge, or out of range."""
        r = self.randrange(14)
        if r < 4:
            return self.value()
        if r < 6:
            return deep_list(self.choice(DEPTHS), self.choice([b"", b'"2026-07-28"', b"1", b"{}"]))
        if r == 6:
            return deep_object(self.choice(DEPTHS))
        if r == 7:
            return "v" * self.huge + self.text()
        if r == 8:
            return list(range(self.randrange(1000, 5000)))
        if r == 9:
            return {f"k{i}": i for i in range(self.randrange(500, 2000))}
        if r == 10:
            return Raw(self.choice([b"1e400", b"-1e400", b"123456789012345678901234567890", b"1E-400", b"-0"]))
        if r == 11:
            return [MODERN] * self.randrange(1, 5)
        if r == 12:
            return {"name": self.value(), "version": self.value()}
        return self.text(self.randrange(1, 64))

    def level(self) -> Any:
        return self.choice(LOG_LEVELS) if self.random() < 0.4 else self.hostile()

    # -- messages ----------------------------------------------------------------------------

    def meta(self, *, hostile: bool) -> dict[str, Any]:
        """A 2026-07-28 ``_meta`` (M-02, M-03); with ``hostile``, any key may be missing or of any type."""
        meta: dict[str, Any] = {
            PV: MODERN, CAPS: self.choice([{}, {"elicitation": {}}, {"sampling": {}, "roots": {}}]),
            INFO: {"name": "fuzz", "version": "1"},
        }
        if self.random() < 0.3:
            meta[LEVEL] = self.choice(LOG_LEVELS)
        if self.random() < 0.2:
            meta["progressToken"] = self.choice([self.text(), self.randrange(100), self.hostile()])
        if hostile:
            for key in (PV, CAPS, INFO, LEVEL):
                r = self.random()
                if r < 0.35:
                    meta[key] = self.hostile()
                elif r < 0.45:
                    meta.pop(key, None)
            if self.random() < 0.2:
                meta[self.text()] = self.hostile()
        return meta

    def tool_call(self, *, asking: bool) -> dict[str, Any]:
        tools = FAST_TOOLS + (ASKING_TOOLS if asking else ())
        name = self.choice(tools) if self.random() < 0.9 else self.choice(["", "nope", self.text(), self.hostile()])
        args = self._arguments(name) if isinstance(name, str) else {}
        if self.random() < 0.15 and name != "progress":  # progress with steps=2**63 would only measure the fixture
            args = self.hostile() if self.random() < 0.5 else {k: self.hostile() for k in (args or {"x": 0})}
        params: dict[str, Any] = {"name": name, "arguments": args}
        return params

    def _arguments(self, tool: str) -> Any:
        if tool == "echo":
            return {"text": self.choice([self.text(), self.text(200)])}
        if tool == "add":
            return {"a": self.randrange(-100, 100), "b": self.randrange(100)}
        if tool == "weather":
            return {"city": self.text()}
        if tool == "progress":
            return {"steps": self.randrange(4)}
        if tool == "log":
            return {"message": self.text(), "level": self.choice(LOG_LEVELS)}
        return {}

    def params_for(self, method: str, *, asking: bool) -> dict[str, Any]:
        if method == "tools/call":
            return self.tool_call(asking=asking)
        if method == "resources/read":
            return {"uri": self.choice(["res://greeting", "res://items/2", "res://nope", self.text()])}
        if method == "prompts/get":
            return {"name": self.choice(["greet", "nope"]), "arguments": self.choice([{"name": self.text()}, {}, {"name": 3}])}
        if method == "completion/complete":
            return {"ref": self.choice([{"type": "ref/prompt", "name": "greet"}, {"type": "ref/resource", "uri": "res://items/{id}"}, self.value()]),
                    "argument": self.choice([{"name": "name", "value": "a"}, {"name": "id", "value": ""}, self.value()])}
        if method == "logging/setLevel":
            return {"level": self.level()}
        if method in ("resources/subscribe", "resources/unsubscribe"):
            return {"uri": self.choice(["res://greeting", self.text()])}
        if method.endswith("/list"):
            return self.choice([{}, {"cursor": self.text()}, {"cursor": self.hostile()}])
        return self.choice([{}, {"x": self.value()}])

    LEGACY_METHODS = (
        "ping", "tools/list", "tools/call", "tools/call", "tools/call", "resources/list", "resources/read",
        "resources/templates/list", "prompts/list", "prompts/get", "completion/complete", "logging/setLevel",
        "resources/subscribe", "resources/unsubscribe", "server/discover", "no/such/method",
    )
    MODERN_METHODS = (
        "server/discover", "tools/list", "tools/call", "tools/call", "tools/call", "resources/list", "resources/read",
        "resources/templates/list", "prompts/list", "prompts/get", "completion/complete", "ping", "logging/setLevel",
        "initialize", "no/such/method",
    )

    def legacy_request(self, *, asking: bool = True) -> dict[str, Any]:
        method = self.choice(self.LEGACY_METHODS)
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self.new_id(), "method": method}
        params = self.params_for(method, asking=asking)
        if self.random() < 0.1:
            params["_meta"] = {"progressToken": self.new_id()}
        if params or self.random() < 0.5:
            msg["params"] = params
        return msg

    def modern_request(self, *, hostile: bool, asking: bool = True) -> dict[str, Any]:
        method = self.choice(self.MODERN_METHODS)
        params = self.params_for(method, asking=asking)
        params["_meta"] = self.meta(hostile=hostile)
        return {"jsonrpc": "2.0", "id": self.new_id(), "method": method, "params": params}

    def initialize(self, *, hostile: bool) -> dict[str, Any]:
        params: Any = {
            "protocolVersion": self.choice(LEGACY) if not hostile or self.random() < 0.2 else self.hostile(),
            "capabilities": self.choice([{}, {"roots": {}}]) if not hostile else self.hostile(),
            "clientInfo": {"name": "fuzz", "version": "1"} if not hostile else self.hostile(),
        }
        if hostile and self.random() < 0.15:
            params = self.hostile()
        return {"jsonrpc": "2.0", "id": self.new_id(), "method": "initialize", "params": params}

    def set_level(self) -> dict[str, Any]:
        """``logging/setLevel`` (U-11) with a level of any JSON type."""
        return {"jsonrpc": "2.0", "id": self.new_id(), "method": "logging/setLevel", "params": {"level": self.level()}}

    def notification(self) -> dict[str, Any]:
        r = self.randrange(5)
        if r == 0:
            return {"jsonrpc": "2.0", "method": "notifications/initialized"}
        if r == 1:
            return {"jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": {"requestId": self.choice([self.foreign_id(), self.hostile()]), "reason": self.value()}}
        if r == 2:
            return {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
        if r == 3:
            return {"jsonrpc": "2.0", "method": self.text() or "x", "params": {"_meta": self.meta(hostile=True)}}
        return {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": self.hostile(), "progress": self.hostile()}}

    def client_response(self) -> dict[str, Any]:
        if self.random() < 0.5:
            return {"jsonrpc": "2.0", "id": self.foreign_id(), "result": self.value()}
        return {"jsonrpc": "2.0", "id": self.foreign_id(), "error": {"code": self.randrange(-33000, 0), "message": self.text()}}

    def broken_message(self) -> dict[str, Any]:
        """A request-like object that breaks one JSON-RPC rule (J-01, J-03, J-06, J-10)."""
        msg = self.legacy_request() if self.random() < 0.5 else self.modern_request(hostile=False)
        r = self.randrange(7)
        if r == 0:
            msg["jsonrpc"] = self.choice(["1.0", "2", 2.0, None, self.hostile()])
        elif r == 1:
            msg["id"] = self.invalid_id()
        elif r == 2:
            msg["method"] = self.choice(["", None, 5, [], {}, self.hostile()])
        elif r == 3:
            msg["params"] = self.choice([[], [1, 2], "x", 5, True, self.hostile()])
        elif r == 4:
            msg["result"] = {}
        elif r == 5:
            del msg["jsonrpc"]
        else:
            msg = {k: msg[k] for k in self.sample(list(msg), self.randrange(len(msg)))}
        return msg

    # -- frames ------------------------------------------------------------------------------

    def mutate(self, data: bytes) -> bytes:
        buf = bytearray(data)
        for _ in range(1 + self.randrange(3)):
            if not buf:
                break
            i = self.randrange(len(buf))
            r = self.randrange(7)
            if r == 0:
                buf[i] = self.randrange(256)
            elif r == 1:
                buf[i:i] = self.randbytes(self.randrange(1, 6))
            elif r == 2:
                del buf[i : i + self.randrange(1, 8)]
            elif r == 3:
                del buf[i:]
            elif r == 4:
                buf[i:i] = buf[i : i + self.randrange(1, 40)]
            elif r == 5:
                buf[i] = self.choice(b'"{}[]:,\\')
            else:
                buf[i:i] = self.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\\ud800", b"\r"])
        return bytes(buf)

    def garbage(self) -> bytes:
        r = self.randrange(6)
        if r == 0:
            return self.randbytes(self.randrange(1, 200)).replace(b"\n", b" ")
        if r == 1:
            return b'{"jsonrpc":"2.0","id":1,"method":"p\xff\xfeng"}'  # invalid UTF-8 (J-02)
        if r == 2:
            return self.choice([b"42", b'"x"', b"null", b"true", b"3.5", b"[]", b"{}", b"[[]]", b"-", b"\xef\xbb\xbf{}"])
        if r == 3:
            return b"[" * self.choice(DEPTHS) if self.random() < 0.5 else b'{"a":' * self.choice(DEPTHS)
        if r == 4:
            return self.choice([b" ", b"\t", b"\r", b"\x0b\x0c"])
        return self.text(self.randrange(1, 50)).encode("utf-8", "surrogatepass").replace(b"\n", b"")

    def oversized(self) -> Frame:
        """A frame over the receiver's limit: an id-first request (the id is readable from its head),
        or bytes with no id at all."""
        size = self.limit + 1 + self.randrange(1, 4096)
        if self.random() < 0.6:
            id_ = self.new_id()
            head = b'{"jsonrpc":"2.0","id":' + encode(id_) + b',"method":"tools/call","params":{"name":"echo","arguments":{"text":"'
            return Frame(head + b"x" * (size - len(head) - 4) + b'"}}}', "oversized-request", id_)
        return Frame(b"y" * size, "oversized-garbage")

    def batch(self) -> Any:
        items: list[Any] = []
        for _ in range(self.randrange(0, 6)):
            r = self.randrange(6)
            if r < 3:
                items.append(self.legacy_request(asking=False))
            elif r == 3:
                items.append(self.notification())
            elif r == 4:
                items.append(self.initialize(hostile=False))
            else:
                items.append(self.choice([self.broken_message(), self.client_response(), self.scalar()]))
        return items

    #: (weight, kind) of each frame kind.
    KINDS = (
        (14, "legacy"), (14, "modern"), (16, "modern-hostile"), (3, "initialize"), (3, "initialize-hostile"),
        (4, "set-level"), (6, "notification"), (2, "response"), (8, "broken"), (12, "mutated"), (6, "garbage"),
        (4, "batch"), (1, "deep"), (2, "huge-valid"),
    )

    def frame(self, *, asking: bool = True, oversized_rate: float = 0.003) -> Frame:
        """One frame for a stdio line or an HTTP body."""
        if self.random() < oversized_rate:
            return self.oversized()
        kind = self.choices([k for _, k in self.KINDS], [w for w, _ in self.KINDS])[0]
        if kind == "legacy":
            obj: Any = self.legacy_request(asking=asking)
        elif kind == "modern":
            obj = self.modern_request(hostile=False, asking=asking)
        elif kind == "modern-hostile":
            obj = self.modern_request(hostile=True, asking=asking)
        elif kind == "initialize":
            obj = self.initialize(hostile=False)
        elif kind == "initialize-hostile":
            obj = self.initialize(hostile=True)
        elif kind == "set-level":
            obj = self.set_level()
        elif kind == "notification":
            obj = self.notification()
        elif kind == "response":
            obj = self.client_response()
        elif kind == "broken":
            obj = self.broken_message()
        elif kind == "mutated":
            base = self.choice([self.legacy_request(asking=False), self.modern_request(hostile=False, asking=False), self.batch()])
            return Frame(self.mutate(encode(base)), kind)
        elif kind == "garbage":
            return Frame(self.garbage(), kind)
        elif kind == "batch":
            obj = self.batch()
        elif kind == "deep":
            # A whole message nested deep: the parse either fails (> 1024 levels) or gives a non-object.
            return Frame(deep_list(self.choice(DEPTHS), b'{"jsonrpc":"2.0","id":1,"method":"ping"}').text, kind)
        else:  # huge-valid: a valid request with a big (but allowed) argument
            obj = self.modern_request(hostile=False, asking=False)
            obj["params"] = {"name": "echo", "arguments": {"text": "h" * min(self.huge, self.limit // 2)}, "_meta": obj["params"]["_meta"]}
        return Frame(encode(obj), kind)
