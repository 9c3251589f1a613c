"""The ASGI application of the serverless recipes: the server of ``server.py`` in the serverless
profile of anyport.

- ``stateless``: no legacy session is kept. Every request stands alone: 2026-07-28 requests are
  stateless by design, and legacy (2025-11-25 and older) clients are served without ``initialize``
  state. There is nothing to share between instances but the key ring below.
- ``json_response`` (default on; ``ANYPORT_JSON_RESPONSE=0`` for a streaming platform): one JSON
  answer per request, what a buffering adapter (Mangum behind API Gateway) can carry.
- ``legacy_sse=False``: the 2024-11-05 HTTP+SSE transport needs a long-lived GET stream and a
  session per connection; neither survives a function.
- ``ANYPORT_ALLOWED_HOSTS`` (space-separated): the names the function is reached under (API Gateway,
  Function URL, workers.dev, your domain); any other Host is refused with 403.
- ``ANYPORT_STATE_KEYS``: the key ring sealing 2026-07-28 ``requestState`` (elicitation and sampling
  rounds); the same value on every instance, from the platform's secret store. ``anyport keygen``.

The app survives its lifespan being run around every request (Mangum and Cloudflare's adapter do
that): tests/deploy/test_serverless.py drives 100 such cycles through it.
"""

from __future__ import annotations

import os

from anyport.transports.http import create_app
from server import app as server

__all__ = ["app", "server"]


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


app = create_app(
    server,
    stateless=True,
    json_response=_flag("ANYPORT_JSON_RESPONSE", True),
    legacy_sse=False,
    allowed_hosts=os.environ.get("ANYPORT_ALLOWED_HOSTS", "").split() or None,
)
