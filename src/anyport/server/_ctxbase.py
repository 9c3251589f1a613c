"""``_ContextBase``: the per-request state that ``Context`` and its mixins share.

Every slot of a ``Context`` is declared (and typed) here, once, so the slot-less mixins
``_Reporting`` (progress, logging) and ``_Asking`` (questions to the client) can both use them
and ``Context`` keeps a single, ``__dict__``-free instance layout. ``Context.__init__`` sets them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from anyport.protocol import IncomingRequest
from anyport.runtime import Outlet

if TYPE_CHECKING:
    from anyport.server._context import Context

__all__ = ["TaskBinding"]


class TaskBinding(Protocol):
    """What a handler running as a task asks the client through."""

    task_id: str
    outlet: Outlet

    async def ask(self, method: str, params: dict[str, Any]) -> Any: ...


class _ContextBase:
    """The slots of ``Context``, with their types; no behaviour."""

    __slots__ = (
        "_answers", "_asked", "_detacher", "_keys", "_outlet", "_progress_at", "_progress_budget", "_progress_last", "_task",
        "request", "server",
    )

    request: IncomingRequest
    server: Any
    _outlet: Outlet
    # _Reporting: the progress token bucket (U-08, U-09).
    _progress_last: float | None
    _progress_budget: float
    _progress_at: float
    # _Asking: the answers of earlier MRTR rounds, and the questions asked in this run of the handler.
    _answers: dict[str, Any]
    _asked: int
    #: Keys of the questions asked so far in this run of the handler (each must be unique, M-15).
    _keys: set[str]
    #: The task this handler runs as (None: it answers its request directly).
    _task: TaskBinding | None
    #: Turns the rest of this handler into a task (set for tools that may defer; see ``detach``).
    _detacher: Callable[[Context], Awaitable[None]] | None
