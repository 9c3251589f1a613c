"""A small notes server: tools with progress and a confirmation, resources with a template, a prompt.

Serve it to Claude Desktop, Cursor or any MCP client over stdio:

    anyport serve examples/notes.py

It keeps its notes in memory, needs no network and no accounts.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import BaseModel, Field

from anyport import Context, Server, ToolError

app = Server("notes", version="1.0.0", instructions="Keep short notes; search them; summarise them.")

NOTES: dict[str, str] = {
    "1": "MCP servers expose tools, resources and prompts.",
    "2": "anyport serves stdio and HTTP from one process.",
    "3": "Remember to buy coffee.",
}


class Hit(BaseModel):
    id: str
    text: str
    score: float


class Confirm(BaseModel):
    confirm: bool = Field(description="Delete the note?")


@app.tool(annotations={"readOnlyHint": False})
async def add_note(text: Annotated[str, Field(description="The note's text", min_length=1)]) -> str:
    """Add a note and return its id."""
    note_id = str(max((int(k) for k in NOTES), default=0) + 1)
    NOTES[note_id] = text
    return note_id


@app.tool(annotations={"readOnlyHint": True})
async def search(query: str, ctx: Context, limit: int = 10) -> list[Hit]:
    """Search the notes for words of the query (reports progress per note)."""
    words = {w.lower() for w in query.split()}
    hits = []
    for i, (note_id, text) in enumerate(sorted(NOTES.items()), start=1):
        await ctx.report_progress(i, len(NOTES), f"note {note_id}")
        score = len(words & {w.lower().strip(".,") for w in text.split()}) / max(len(words), 1)
        if score:
            hits.append(Hit(id=note_id, text=text, score=score))
        await asyncio.sleep(0)
    await ctx.info(f"{len(hits)} hits for {query!r}", logger="notes")
    return sorted(hits, key=lambda h: -h.score)[:limit]


@app.tool(annotations={"destructiveHint": True})
async def delete_note(note_id: str, ctx: Context) -> str:
    """Delete a note, after asking the user to confirm."""
    if note_id not in NOTES:
        raise ToolError(f"no note {note_id}")
    answer = await ctx.elicit(f"Delete note {note_id}: {NOTES[note_id]!r}?", Confirm)
    if answer.action == "accept" and isinstance(answer.content, Confirm) and answer.content.confirm:
        del NOTES[note_id]
        return f"deleted {note_id}"
    return "kept"


@app.resource("notes://all", mime_type="application/json")
def all_notes() -> dict[str, str]:
    """Every note, by id."""
    return NOTES


@app.resource("notes://{note_id}", name="note", mime_type="text/plain")
def note(note_id: str) -> str:
    """One note."""
    return NOTES.get(note_id, "")


@app.prompt()
def summarize(topic: str) -> str:
    """Ask the model to summarise the notes about a topic."""
    return f"Summarise my notes about {topic}:\n" + "\n".join(f"- {t}" for t in NOTES.values())


@app.completion(resource="notes://{note_id}", argument="note_id")
def complete_note_id(value: str, context: dict[str, str]) -> list[str]:
    return [k for k in sorted(NOTES) if k.startswith(value)]


if __name__ == "__main__":
    app.run()
