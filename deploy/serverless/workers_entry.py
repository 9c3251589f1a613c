"""Cloudflare Python Workers: the Worker's entry point (``main`` in wrangler.toml).

Cloudflare's ASGI adapter (``workers.asgi`` of the workers runtime SDK) runs each request through
the app: a lifespan startup, the request with its body read in whole, then the lifespan shutdown
once the response is out. Only the stateless 2026-07-28 path (and stateless legacy requests) fit
a Worker; see docs/deploy.md for what runs there and what does not.

A Worker's variables and secrets arrive as bindings on ``self.env``, not in ``os.environ``; the
server reads ``ANYPORT_*`` from the environment when it is built, so the first request copies
them over and then imports the app (once per isolate).
"""

from __future__ import annotations

import os
from typing import Any

from workers import WorkerEntrypoint, asgi

#: The bindings copied into os.environ before the app is built.
SETTINGS = ("ANYPORT_ALLOWED_HOSTS", "ANYPORT_STATE_KEYS", "ANYPORT_JSON_RESPONSE")

_app: Any = None


def _load(env: Any) -> Any:
    global _app
    if _app is None:
        for name in SETTINGS:
            value = getattr(env, name, None)
            if isinstance(value, str):
                os.environ[name] = value
        from mcp_app import app

        _app = app
    return _app


class Default(WorkerEntrypoint):  # type: ignore[misc]
    async def fetch(self, request: Any) -> Any:
        return await asgi.fetch(_load(self.env), request, self.env)
