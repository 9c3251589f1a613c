"""`make demo`: serve examples/notes.py over HTTP, walk through it with the client, keep serving.

1. starts `anyport serve examples/notes.py --http` on http://127.0.0.1:8000/mcp (+ /sse),
   in-memory state, no accounts;
2. connects a client in each era (2025-11-25 handshake and stateless 2026-07-28), lists and
   calls tools (with progress and an elicitation), reads resources, gets a prompt, and also
   runs the same walk over stdio;
3. prints how to connect Claude Desktop, Cursor and the MCP Inspector, and keeps serving until
   Ctrl-C (`--once` stops right after the walk-through).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from anyport import Client

NOTES = Path(__file__).with_name("notes.py").resolve()


def confirm(params: dict[str, Any]) -> dict[str, Any]:
    print(f"   server asks: {params['message']} -> yes")
    return {"action": "accept", "content": {"confirm": True}}


async def walk(target: Any, era: str) -> None:
    async with Client(target, era=era, on_elicit=confirm, log_level="info",
                      on_log=lambda p: print(f"   log [{p['level']}] {p['data']}")) as client:
        print(f"connected to {client.server_info.get('name')} {client.server_info.get('version')}, "
              f"protocol {client.protocol_version}")
        print("tools:    ", ", ".join(t.name for t in await client.list_tools()))
        print("resources:", ", ".join(r.uri for r in await client.list_resources()),
              "+", ", ".join(t.uri_template for t in await client.list_resource_templates()))
        print("prompts:  ", ", ".join(p.name for p in await client.list_prompts()))
        new_id = (await client.call_tool("add_note", {"text": f"written by the {era} demo"})).text
        print(f"add_note -> id {new_id}")
        result = await client.call_tool(
            "search", {"query": "mcp servers"},
            on_progress=lambda p, t, m: print(f"   progress {p:g}/{t:g} {m or ''}"),
        )
        print("search   ->", result.structured_content)
        print("delete   ->", (await client.call_tool("delete_note", {"note_id": new_id})).text)
        print("note 2   ->", (await client.read_resource("notes://2")).text)
        prompt = await client.get_prompt("summarize", {"topic": "mcp"})
        print("prompt   ->", prompt.messages[0]["content"]["text"].splitlines()[0])


def wait_healthy(base: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode} (is port 8000 taken? try PORT=8001 make demo)")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        time.sleep(0.1)
    raise SystemExit("the server did not become healthy in time")


def instructions(url: str, sse: str) -> str:
    stdio_cfg = {"mcpServers": {"notes": {"command": sys.executable, "args": ["-m", "anyport", "serve", str(NOTES)]}}}
    http_cfg = {"mcpServers": {"notes": {"url": url}}}
    return f"""
Serving {NOTES.name}:
  Streamable HTTP  {url}
  legacy HTTP+SSE  {sse}

Connect it to:
  Claude Desktop   add to claude_desktop_config.json (Claude Desktop spawns local servers over stdio):
                   {json.dumps(stdio_cfg)}
  Cursor           add to ~/.cursor/mcp.json (or .cursor/mcp.json in a project):
                   {json.dumps(http_cfg)}
  MCP Inspector    npx @modelcontextprotocol/inspector  -> transport "Streamable HTTP", URL {url}
  the shell        anyport call {sys.executable} -m anyport serve {NOTES} -- search query=mcp
"""


async def walk_all(base: str) -> None:
    for era in ("legacy", "modern"):
        print(f"\n== over HTTP, {era} era")
        await walk(f"{base}/mcp", era)
    print("\n== over stdio (the client spawns the server)")
    await walk([sys.executable, "-m", "anyport", "serve", str(NOTES)], "auto")


def main(once: bool) -> None:
    host, port = "127.0.0.1", int(os.environ.get("PORT", "8000"))
    base = f"http://{host}:{port}"
    cmd = [sys.executable, "-m", "anyport", "serve", str(NOTES), "--http", "--host", host, "--port", str(port),
           "--log-level", "warning"]
    print("$", " ".join(cmd[1:]))
    proc = subprocess.Popen(cmd)
    try:
        wait_healthy(base, proc, time.monotonic() + 20)
        asyncio.run(walk_all(base))
        print(instructions(f"{base}/mcp", f"{base}/sse"))
        if not once:
            print("Serving until Ctrl-C.")
            proc.wait()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="stop after the walk-through instead of serving")
    with contextlib.suppress(KeyboardInterrupt):
        main(parser.parse_args().once)
