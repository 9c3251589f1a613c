"""A server with the tools the conformance suite's ``tasks-*`` scenarios drive (SEP-2663), plus a
watched resource; shared by the in-memory tests and the stdio subprocess tests."""

from __future__ import annotations

import sys
from pathlib import Path

from anyport import Server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from conformance_server import add_task_tools


def build_app() -> Server:
    app = Server("tasks-fixture", version="1.0.0")

    add_task_tools(app)

    @app.tool()
    async def touch(uri: str) -> str:
        """Tell subscribers that ``uri`` changed."""
        await app.notify_resource_updated(uri)
        return "ok"

    @app.tool()
    async def add_tool(name: str) -> str:
        """Register a tool while running (list_changed)."""
        app.add_tool(lambda: "new", name=name, description="added at run time")
        return "added"

    @app.resource("test://watched-resource")
    def watched() -> str:
        return "watched"

    return app


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.path.insert(0, sys.argv[1])
    build_app().run()
