"""`make demo`: spawn the notes server over stdio, discover it, call its tools, print what happens."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from anyport import Client

SERVER = [sys.executable, "-m", "anyport", "serve", str(Path(__file__).with_name("notes.py"))]


def confirm(params: dict[str, Any]) -> dict[str, Any]:
    print(f"   server asks: {params['message']} -> yes")
    return {"action": "accept", "content": {"confirm": True}}


async def main() -> None:
    for era in ("legacy", "modern"):
        print(f"== {' '.join(SERVER[1:])}  ({era} era)")
        async with Client(SERVER, era=era, on_elicit=confirm, log_level="info",
                          on_log=lambda p: print(f"   log [{p['level']}] {p['data']}")) as client:
            print(f"connected to {client.server_info['name']} {client.server_info['version']}, "
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
            print("complete ->", (await client.complete({"type": "ref/resource", "uri": "notes://{note_id}"}, "note_id", "")).values)
        print()


if __name__ == "__main__":
    asyncio.run(main())
