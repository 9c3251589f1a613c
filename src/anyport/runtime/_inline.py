"""Run a coroutine's first step now, and only pay for a task if it actually has to wait.

Most MCP requests (a sync tool, a list) never wait for anything: creating an ``asyncio.Task`` for
each one, scheduling it, and letting the loop come round to it costs more than the request.
``start`` runs the coroutine until it first suspends. If it finished, the caller has the value
at once. If it suspended, the caller gets an awaitable that continues it exactly where it
stopped, to wrap in a task (or to await).

Only use it for coroutines that do not depend on ``asyncio.current_task()`` in their first step
(``asyncio.timeout``, ``TaskGroup`` and some libraries do): during that step the current task is
the caller's. The server decides which requests qualify (``Server.inline_safe``). The step runs
in a copy of the caller's context, as a task would, and a task created to continue it gets the
same context.
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, Generic, TypeVar

__all__ = ["Resumed", "finish", "here", "start"]

T = TypeVar("T")


class Resumed(Generic[T]):
    """The rest of a coroutine that suspended in ``start``: await it (in a task) to finish it."""

    __slots__ = ("_coro", "_yielded", "context")

    def __init__(self, coro: Coroutine[Any, Any, T], yielded: Any, context: contextvars.Context) -> None:
        self._coro = coro
        self._yielded = yielded
        #: The context the first step ran in: give it to the task that continues the coroutine.
        self.context = context

    def __await__(self) -> Generator[Any, Any, T]:
        coro, value = self._coro, self._yielded
        while True:
            try:
                # Hand what the coroutine waits on (a future, or None for a bare yield) to the task.
                yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation or an error thrown into the task
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
            else:
                try:
                    value = coro.send(None)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]


async def finish(rest: Resumed[T]) -> T:
    """A coroutine to give ``create_task`` for the rest of a suspended coroutine."""
    return await rest


def start(coro: Coroutine[Any, Any, T]) -> tuple[bool, T | Resumed[T]]:
    """``(True, value)`` when ``coro`` ran to the end now; ``(False, rest)`` when it suspended.

    An exception raised in the first step propagates, as awaiting the coroutine would.
    """
    context = contextvars.copy_context()
    try:
        yielded = context.run(coro.send, None)
    except StopIteration as stop:
        return True, stop.value
    return False, Resumed(coro, yielded, context)


def here(awaitable: Awaitable[T]) -> tuple[bool, T | Awaitable[T]]:
    """Like ``start``, for a coroutine that will be finished by the *current* task if it waits.

    ``(True, value)`` when it is done at once; otherwise ``(False, rest)``: await ``rest`` right
    here. Since the same task goes on, ``current_task()`` is right throughout. An awaitable that
    is not a coroutine is handed back as it is.
    """
    if not isinstance(awaitable, types.CoroutineType):
        return False, awaitable
    try:
        yielded = awaitable.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, Resumed(awaitable, yielded, contextvars.copy_context())
