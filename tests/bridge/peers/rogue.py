"""A small stdio MCP server written without anyport (raw JSON-RPC, stdlib only), for the bridge tests:
a stateful counter and every way a child can misbehave.

Usage: python rogue.py [MODE]   MODE: normal (default), exit-at-start, silent (never answers initialize),
       garbage-at-start (prints junk lines before serving), exit-if:PATH (exit-at-start while PATH exists),
       stubborn (ignores SIGTERM and the end of stdin, and starts a grandchild: see ``family``)

Tools:
- ``inc``: adds 1 to this process's counter and returns it; sends a progress notification (when the
  request has a progressToken) and a log message naming the counter;
- ``pid``: this process's id;
- ``family``: ``<this pid>,<the grandchild's pid or 0>``;
- ``env``: the names of the environment variables this process got, sorted, comma-separated;
- ``getenv``: the value of the variable ``name`` ("" when unset);
- ``changed``: sends ``notifications/tools/list_changed``, then answers ``ok``;
- ``ping``: pings its client and answers ``pong`` when the answer is ``{}``;
- ``ask``: asks the client ``elicitation/create`` and returns ``name=<content.name>`` (or the action);
- ``crash``: exits with status 3 in the middle of the call;
- ``hang``: never answers;
- ``flood``: writes 64 MiB on stdout without a newline;
- ``garbage``: writes three lines that are no JSON-RPC, then answers ``ok``;
- ``slow``: sleeps ``seconds`` then answers ``slept``;
- ``cancels``: the request ids named by the ``notifications/cancelled`` this process received;
- ``notes``: the methods of the other notifications it received (``notifications/roots/list_changed``, ...);
- ``level``: the level of the last ``logging/setLevel`` it was sent ("" before any).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "normal"
OUT = sys.stdout
LOCK = threading.Lock()
counter = 0
pending: dict[int, dict] = {}
waiters: dict[int, threading.Event] = {}
next_id = 0

TOOLS = ["inc", "pid", "family", "env", "getenv", "ping", "changed", "ask", "crash", "hang", "flood", "garbage", "slow", "cancels",
         "notes", "level"]
cancelled: list[object] = []
notes: list[str] = []
level = ""


def send(msg: dict) -> None:
    with LOCK:
        OUT.write(json.dumps(msg, separators=(",", ":")) + "\n")
        OUT.flush()


def ask_client(method: str, params: dict) -> dict:
    global next_id
    with LOCK:
        next_id += 1
        rid = next_id
        event = waiters[rid] = threading.Event()
    send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
    event.wait(60)  # the answer may already be in: the event is ours, whatever the table holds now
    return pending.pop(rid, {"error": {"message": "no answer"}})


def text(value: str) -> dict:
    return {"content": [{"type": "text", "text": value}]}


def call_tool(rid: object, params: dict) -> None:
    global counter
    name = params.get("name")
    args = params.get("arguments") or {}
    token = (params.get("_meta") or {}).get("progressToken")
    if name == "inc":
        with LOCK:
            counter += 1
            value = counter
        if token is not None:
            send({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": 1, "total": 1}})
        send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": f"counter={value}"}})
        result = text(str(value))
    elif name == "pid":
        result = text(str(os.getpid()))
    elif name == "family":
        result = text(f"{os.getpid()},{grandchild.pid if grandchild else 0}")
    elif name == "env":
        result = text(",".join(sorted(os.environ)))
    elif name == "getenv":
        result = text(os.environ.get(str(args.get("name")), ""))
    elif name == "changed":
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        result = text("ok")
    elif name == "ping":
        answer = ask_client("ping", {})
        result = text("pong" if answer.get("result") == {} else str(answer))
    elif name == "ask":
        answer = ask_client("elicitation/create", {"message": "Name?", "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}})
        res = answer.get("result") or {}
        result = text(f"name={res.get('content', {}).get('name')}" if res.get("action") == "accept" else str(res.get("action") or answer))
    elif name == "crash":
        sys.stderr.write("rogue: crashing on purpose\n")
        sys.stderr.flush()
        os._exit(3)
    elif name == "hang":
        return
    elif name == "flood":
        chunk = "x" * (1 << 20)
        with LOCK:
            for _ in range(64):
                OUT.write(chunk)
            OUT.flush()
        return
    elif name == "garbage":
        with LOCK:
            OUT.write("this is not json\n{\"no\": \"jsonrpc\"\n[1,2,3]\n")
            OUT.flush()
        result = text("ok")
    elif name == "cancels":
        result = text(json.dumps(cancelled))
    elif name == "notes":
        result = text(json.dumps(notes))
    elif name == "level":
        result = text(level)
    elif name == "slow":
        time.sleep(float(args.get("seconds", 1)))
        result = text("slept")
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": f"Unknown tool: {name}"}})
        return
    send({"jsonrpc": "2.0", "id": rid, "result": result})


def handle(msg: dict) -> None:
    global level
    method = msg.get("method")
    rid = msg.get("id")
    if method is None:  # an answer to one of our requests
        if rid in waiters:
            pending[rid] = msg
            waiters.pop(rid).set()
        return
    if rid is None:
        if method == "notifications/cancelled":
            cancelled.append((msg.get("params") or {}).get("requestId"))
        elif method != "notifications/initialized":
            notes.append(str(method))
        return
    if method == "initialize":
        if MODE == "silent":
            return
        version = msg["params"].get("protocolVersion", "2025-06-18")
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "protocolVersion": version, "capabilities": {"tools": {}, "logging": {}},
            "serverInfo": {"name": "rogue", "version": "1.0"},
        }})
    elif method == "tools/list":
        tools = [{"name": n, "inputSchema": {"type": "object"}} for n in TOOLS]
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": tools}})
    elif method == "tools/call":
        threading.Thread(target=call_tool, args=(rid, msg.get("params") or {}), daemon=True).start()
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": rid, "result": {}})
    elif method == "logging/setLevel":
        level = str((msg.get("params") or {}).get("level"))
        send({"jsonrpc": "2.0", "id": rid, "result": {}})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"Method not found: {method}"}})


grandchild = None


def main() -> None:
    global grandchild
    if MODE == "stubborn":
        import signal
        import subprocess

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen(["sleep", "120"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    if MODE == "exit-at-start" or (MODE.startswith("exit-if:") and os.path.exists(MODE[8:])):
        sys.stderr.write("rogue: missing configuration, giving up\n")
        sys.exit(2)
    if MODE == "garbage-at-start":
        OUT.write("Starting rogue server v1.0...\n")
        OUT.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict):
            handle(msg)
    if MODE == "stubborn":
        time.sleep(120)  # the end of stdin is not the end for this one


if __name__ == "__main__":
    main()
