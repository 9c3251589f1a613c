"""An anyport server with authentication on uvicorn (a thread, a free loopback port, optionally TLS
with client certificates), and the test server whose tools report their principal."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from anyport import Context, Server
from anyport.transports.http import create_app
from anyport.transports.http._serve import client_cert_options


def make_server(**kw: Any) -> Server:
    app = Server("authd", **kw)

    @app.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        """Who the caller is."""
        p = ctx.principal
        assert p is not None
        return {"subject": p.subject, "method": p.method, "client": p.client_id, "scopes": sorted(p.scopes)}

    @app.tool(scopes=["tools.write"])
    def write(text: str) -> str:
        """Needs tools.write."""
        return f"wrote {text}"

    @app.resource("secret://plans", scopes=["secrets.read"])
    def plans() -> str:
        return "the plans"

    @app.prompt(scopes=["prompts.use"])
    def greet() -> str:
        return "hello"

    return app


@contextmanager
def served(
    make_app: Callable[[str], Any], *, certfile: str | None = None, keyfile: str | None = None,
    client_ca: str | None = None, client_cert: str = "required",
) -> Iterator[str]:
    """Serve ``make_app(base_url)`` on 127.0.0.1; yields the base URL; always stops it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = f"{'https' if certfile else 'http'}://127.0.0.1:{port}"
    extra: dict[str, Any] = {"http": "h11"}
    if certfile:
        extra.update(ssl_certfile=certfile, ssl_keyfile=keyfile)
        extra.update(client_cert_options(client_ca, client_cert, certfile))
    config = uvicorn.Config(make_app(base), lifespan="on", log_level="warning", ws="none", loop="asyncio",
                            timeout_graceful_shutdown=5, **extra)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def app_with(chain_of: Callable[[str], Any], server: Server | None = None, **options: Any) -> Callable[[str], Any]:
    """A ``make_app`` for ``served``: the test server with the auth chain built for its base URL."""

    def make(base: str) -> Any:
        return create_app(server or make_server(), auth=chain_of(base + "/mcp"), **options)

    return make
