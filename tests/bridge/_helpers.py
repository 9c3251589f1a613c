"""Shared pieces of the bridge tests: the peers, a bridge on a real uvicorn, raw HTTP helpers."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from anyport.bridge import Bridge, BridgeOptions, bridge_app
from tests.transports._http_helpers import running

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
ROGUE = HERE / "peers" / "rogue.py"
EVERYTHING = HERE / "peers" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
PY_PEERS = ROOT / "tests" / "interop" / "peers" / "python"
TS_PEERS = ROOT / "tests" / "interop" / "peers" / "ts"
POST_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
MODERN = "2026-07-28"


def node() -> str:
    found = shutil.which("node")
    assert found is not None, "node is not installed (make test installs it)"
    return found


def everything() -> list[str]:
    assert EVERYTHING.is_file(), "run make test (npm ci of tests/bridge/peers)"
    return [node(), str(EVERYTHING), "stdio"]


def rogue(mode: str = "normal") -> list[str]:
    return [sys.executable, str(ROGUE), mode]


@contextmanager
def serving(command: list[str], **options: Any) -> Iterator[tuple[str, Bridge]]:
    """A bridge of ``command`` on a free loopback port; yields (base URL, bridge); stops everything."""
    http = options.pop("http", {})
    bridge = Bridge(BridgeOptions(command=tuple(command), **options))
    with running(bridge_app(bridge, **http), start_timeout=30) as base:
        yield base, bridge
    assert not bridge.pool.children, "a child outlived the bridge"


@contextmanager
def sse_connection(c: httpx.Client, capabilities: dict[str, Any] | None = None) -> Iterator[tuple[Iterator[str], str]]:
    """An HTTP+SSE connection at ``/sse``, initialized at 2024-11-05: yields (its stream's lines, its
    message endpoint); the initialize answer is read from the lines."""
    with c.stream("GET", "/sse", headers={"accept": "text/event-stream"}) as stream:
        lines = stream.iter_lines()
        endpoint = next(line for line in lines if line.startswith("data:"))[5:].strip()
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": capabilities or {}, "clientInfo": {"name": "t", "version": "1"}}}
        assert c.post(endpoint, json=init).status_code == 202
        next(line for line in lines if line.startswith("data:") and '"id":1' in line)
        c.post(endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        yield lines, endpoint


def sse_answer(lines: Iterator[str], id_: int) -> dict[str, Any]:
    """The answer with ``id_`` on an HTTP+SSE stream (the events before it are skipped)."""
    for line in lines:
        if line.startswith("data:") and f'"id":{id_}' in line:
            return dict(json.loads(line[5:]))
    raise AssertionError(f"the stream ended before the answer to {id_}")


def wait_ready(base: str, proc: Any, timeout: float = 30.0) -> None:
    """Until ``base``'s /readyz answers 200; fails (with the process's stderr) if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.1)


def sse_messages(text: str) -> list[dict[str, Any]]:
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
        if data and "".join(data):
            out.append(json.loads("\n".join(data)))
    return out


def answers(response: httpx.Response) -> list[dict[str, Any]]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return sse_messages(response.text)
    return [response.json()]


def initialize(c: httpx.Client, version: str = "2025-11-25", capabilities: dict[str, Any] | None = None) -> dict[str, str]:
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": capabilities or {}, "clientInfo": {"name": "t", "version": "1"}}}
    r = c.post("/mcp", headers=POST_HEADERS, json=body)
    assert r.status_code == 200, r.text
    headers = {**POST_HEADERS, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": version}
    assert c.post("/mcp", headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
    return headers


def call(c: httpx.Client, headers: dict[str, str], id_: int, name: str, arguments: dict[str, Any] | None = None,
         meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if meta:
        params["_meta"] = meta
    r = c.post("/mcp", headers=headers, json={"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params})
    assert r.status_code == 200, r.text
    return answers(r)


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    h = {**POST_HEADERS, "mcp-protocol-version": MODERN, "mcp-method": method}
    if name is not None:
        h["mcp-name"] = name
    return h


def modern_call(c: httpx.Client, id_: int, name: str, arguments: dict[str, Any] | None = None,
                caps: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}, **(extra or {})}
    params["_meta"] = {**params.get("_meta", {}), "io.modelcontextprotocol/protocolVersion": MODERN,
                       "io.modelcontextprotocol/clientCapabilities": caps or {}}
    r = c.post("/mcp", headers=modern_headers("tools/call", name), json={"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params})
    return answers(r)


def text_of(messages: list[dict[str, Any]]) -> str:
    final = messages[-1]
    assert "result" in final, final
    return str(final["result"]["content"][0]["text"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate: Any, timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
