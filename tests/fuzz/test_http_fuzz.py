"""The HTTP fuzzer against a real uvicorn on a free loopback port (``create_app`` of the interop fixture).

See ``tests/fuzz/_http.py`` for what is generated and checked: never a 5xx, JSON-RPC bodies naming
only the request's ids (every request of a 200 answered once), 202 only without requests,
liveness after every batch, the HTTP+SSE transport, and the app's live sessions and SSE
connections back to their baseline after the DELETEs. Requirements: J-01..J-08, J-13, M-04, M-08,
M-19, T-HTTP-01, T-HTTP-02, T-HTTP-06, T-HTTP-08..10, T-HTTP-42, T-SSE-02, T-SSE-05..07, T-H26-16.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.fuzz._gen import CAPS, INFO, LEVEL, MODERN, PV
from tests.fuzz._http import ACCEPT_BOTH, fuzz_http, make_app
from tests.fuzz._oracle import MAX_ERROR_BYTES, response_problem
from tests.fuzz._scale import http_inputs, seed
from tests.transports._http_helpers import running


def _assert_clean(report: Any, inputs: int) -> None:
    assert not report.failures, f"{len(report.failures)} failure(s) in {report.inputs} inputs:\n" + "\n".join(f[:1500] for f in report.failures[:10])
    assert report.inputs >= inputs
    # The run reached the app's main outcomes, not only its first refusal.
    assert {200, 202, 400, 404}.issubset(report.statuses), report.statuses


def test_http_fuzz_sessions_and_sse_T_HTTP_08_T_HTTP_09() -> None:
    inputs = http_inputs()
    _assert_clean(fuzz_http(inputs, seed=seed()), inputs)


@pytest.mark.parametrize("mode", ["stateless", "json_response"])
def test_http_fuzz_other_app_modes(mode: str) -> None:
    inputs = max(50, http_inputs() // 4)
    _assert_clean(fuzz_http(inputs, seed=seed() + 1, **{mode: True}), inputs)


# -- the shapes behind the known defects, over HTTP --------------------------------------------------------

MODERN_META = {PV: MODERN, CAPS: {}, INFO: {"name": "f", "version": "1"}}


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


CASES = [
    # (what, body with "X" where the hostile JSON goes, header MCP-Protocol-Version, the error code wanted)
    ("logLevel list", {LEVEL: "X"}, b"[]", MODERN, -32602),
    ("logLevel object", {LEVEL: "X"}, b'{"a":1}', MODERN, -32602),
    ("protocolVersion nested 300 (header mismatch)", {PV: "X"}, _deep(300), MODERN, -32020),
    ("protocolVersion nested 1000 (header mismatch)", {PV: "X"}, _deep(1000), MODERN, -32020),
    ("protocolVersion nested 300, no header", {PV: "X"}, _deep(300), None, -32020),
    ("protocolVersion of 1 MB", {PV: "X"}, b'"' + b"v" * 1_000_000 + b'"', MODERN, -32020),
    ("clientInfo nested 1000", {INFO: "X"}, _deep(1000), MODERN, -32602),
    ("clientCapabilities nested 1000", {CAPS: "X"}, _deep(1000), MODERN, -32602),
]


@pytest.mark.parametrize(("what", "meta", "value", "header", "code"), CASES, ids=[c[0] for c in CASES])
def test_hostile_modern_meta_over_http_is_a_small_json_rpc_error_M04_M19(what: str, meta: dict[str, Any], value: bytes,
                                                                       header: str | None, code: int) -> None:
    body = orjson.dumps({"jsonrpc": "2.0", "id": "h1", "method": "tools/list", "params": {"_meta": {**MODERN_META, **meta}}})
    body = body.replace(b'"X"', value)
    headers = {"accept": ACCEPT_BOTH, "content-type": "application/json", "mcp-method": "tools/list"}
    if header is not None:
        headers["mcp-protocol-version"] = header
    app = make_app(max_body_bytes=4 * 1024 * 1024)
    with running(app) as base, httpx.Client(base_url=base, timeout=20) as c:
        r = c.post("/mcp", headers=headers, content=body)
        assert r.status_code == 400, (r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("application/json")
        assert len(r.content) < MAX_ERROR_BYTES, f"{len(r.content)} bytes"
        reply = r.json()
        assert response_problem(reply) is None and reply["id"] == "h1", reply
        assert reply["error"]["code"] == code, reply
        assert c.get("/healthz").status_code == 200


@pytest.mark.parametrize("version", ["2025-03-26", "2025-11-25"])
@pytest.mark.parametrize("level", [b"[]", b'{"x":1}', b"5", _deep(300)], ids=["list", "object", "number", "nested300"])
def test_set_level_of_another_type_over_http_is_32602_U11(version: str, level: bytes) -> None:
    app = make_app()
    with running(app) as base, httpx.Client(base_url=base, timeout=20) as c:
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": version, "capabilities": {}}}
        r = c.post("/mcp", headers={"accept": ACCEPT_BOTH, "content-type": "application/json"}, json=init)
        sid = r.headers["mcp-session-id"]
        h = {"accept": ACCEPT_BOTH, "content-type": "application/json", "mcp-session-id": sid, "mcp-protocol-version": version}
        body = b'{"jsonrpc":"2.0","id":"L","method":"logging/setLevel","params":{"level":X}}'.replace(b"X", level)
        r = c.post("/mcp", headers=h, content=body)
        assert r.status_code < 500, r.text[:300]
        text = r.text
        if r.headers["content-type"].startswith("text/event-stream"):
            text = [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:") and ln[5:].strip()][-1]
        reply = orjson.loads(text)
        assert response_problem(reply) is None and reply["id"] == "L" and reply["error"]["code"] == -32602, reply
        assert c.delete("/mcp", headers={"mcp-session-id": sid}).status_code == 204
    assert len(app.sessions) == 0
