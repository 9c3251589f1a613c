"""The fixture server of tests/transports/test_hardening.py (served in-process and by ``anyport serve``).

``spin`` reports progress as fast as it can; the module-level ``STATE`` counts how many ``spin``
handlers run, so a test can tell (with the ``stats`` tool, on any transport) whether a request the
client abandoned was cancelled (T-H26-11) or still runs.
"""

from __future__ import annotations

import asyncio
import json

from anyport import Context, Server

app = Server("hardening-fixture", version="1.0.0")

#: running: spin handlers now running; started / finished / cancelled: totals since the start.
STATE = {"running": 0, "started": 0, "finished": 0, "cancelled": 0}


@app.tool()
async def echo(text: str) -> str:
    """Echo the text back."""
    return text


@app.tool()
async def spin(steps: int, ctx: Context) -> str:
    """Report progress ``steps`` times, as fast as the server lets it."""
    STATE["running"] += 1
    STATE["started"] += 1
    try:
        for i in range(steps):
            await ctx.report_progress(i, steps)
        STATE["finished"] += 1
        return "done"
    except asyncio.CancelledError:
        STATE["cancelled"] += 1
        raise
    finally:
        STATE["running"] -= 1


@app.tool()
async def stats() -> str:
    """``STATE`` plus the number of asyncio tasks of this process, as a JSON text."""
    return json.dumps({**STATE, "tasks": len(asyncio.all_tasks())})
