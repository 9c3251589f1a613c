"""Who the current request is from: one context variable, set by a transport that authenticates
(the HTTP app, when configured with ``auth``) and read by handlers as ``ctx.principal``.

It holds an ``anyport.auth.Principal`` or None (stdio, the memory transport, an HTTP server without
auth: T-STDIO-08, A-01). Handlers that run inline run in a copy of the request's context and tasks
inherit it, so the value follows a request wherever the runtime runs it. The runtime does not
import ``anyport.auth``: the value is opaque here.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

__all__ = ["PRINCIPAL", "current_principal"]

PRINCIPAL: ContextVar[Any] = ContextVar("anyport_principal", default=None)


def current_principal() -> Any:
    """The principal of the request being served, or None when it was not authenticated."""
    return PRINCIPAL.get()
