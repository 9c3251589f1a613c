"""The composition root of ``Server.run``: the one place, with the CLI, that knows both the
application and the transports (the server package imports no transport; DESIGN.md §3)."""

from __future__ import annotations

from typing import Any

from anyport.runtime import Application

__all__ = ["run"]


def run(app: Application, transport: str = "stdio", **kw: Any) -> None:
    """Blocking: serve ``app`` on ``"stdio"``, or on ``"http"`` with uvicorn (see ``Server.run``)."""
    if transport == "stdio":
        from anyport.transports.stdio import run_stdio_server

        run_stdio_server(app, **kw)
    elif transport == "http":
        from anyport.transports.http import run_http_server

        run_http_server(app, **kw)
    else:
        raise ValueError(f"unknown transport {transport!r} (stdio or http)")
