"""``Context``: what a tool, resource or prompt handler can do besides returning a value.

One API for both eras. On a legacy connection, ``elicit`` / ``sample`` / ``list_roots`` are
server->client requests. On 2026-07-28 they become an MRTR round (M-14..M-18): the first call
ends the handler with an ``input_required`` result; the client answers and retries, and the
handler runs again from the top, this time receiving the answer where it asked. Code before the
question therefore runs once per round: keep it free of side effects, or put them after.

``ctx.gather(q1, q2, ...)`` asks several questions at once: concurrent requests on a legacy
connection, a single MRTR round carrying every unanswered question on 2026-07-28 (M-15).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anyport.protocol import IncomingRequest
from anyport.runtime import Outlet, current_principal
from anyport.server._asking import InputRequired as InputRequired, _Asking
from anyport.server._ctxbase import TaskBinding as TaskBinding
from anyport.server._questions import ElicitResult, Question, Root, SamplingResult
from anyport.server._reporting import _Reporting

if TYPE_CHECKING:
    from anyport.auth import Principal

__all__ = ["Context", "ElicitResult", "Outlet", "Question", "Root", "SamplingResult"]


class Context(_Reporting, _Asking):
    """Passed to handlers that declare a parameter annotated ``Context``.

    Progress and logging (``report_progress``, ``log``, ``PROGRESS_BURST`` ...) come from
    ``_Reporting``; questions to the client (``elicit``, ``sample``, ``list_roots``, ``gather``)
    from ``_Asking``. Both are slot-less mixins over ``_ContextBase``, which declares every slot;
    they are initialised here.
    """

    __slots__ = ()

    def __init__(
        self,
        request: IncomingRequest,
        outlet: Outlet,
        server: Any = None,
        answers: Mapping[str, Any] | None = None,
    ) -> None:
        self.request = request
        self.server = server
        self._outlet = outlet
        # _Reporting: the progress token bucket (U-08, U-09).
        self._progress_last = None
        self._progress_budget = float(self.PROGRESS_BURST)
        self._progress_at = 0.0
        # _Asking: the answers of earlier MRTR rounds, and the questions asked in this run.
        self._answers = dict(answers or {})
        self._asked = 0
        self._keys = set()
        # Tasks (see ``detach``).
        self._task = None
        self._detacher = None

    # -- facts about the request -------------------------------------------------------------

    @property
    def request_id(self) -> str | int:
        return self.request.id

    @property
    def protocol_version(self) -> str:
        return self.request.revision.version

    @property
    def era(self) -> str:
        return self.request.revision.era

    @property
    def client_info(self) -> dict[str, Any] | None:
        return self.request.client_info

    @property
    def client_capabilities(self) -> dict[str, Any]:
        return self.request.client_capabilities

    @property
    def principal(self) -> Principal | None:
        """Who made this request (an ``anyport.auth.Principal``: subject, client id, scopes, how it
        was authenticated, expiry, claims), or None when the transport does not authenticate
        (stdio, or HTTP without ``auth``). Never forward its token anywhere (A-33)."""
        return current_principal()  # type: ignore[no-any-return]

    @property
    def task_id(self) -> str | None:
        """The id of the task this handler runs as, or None."""
        return None if self._task is None else self._task.task_id

    # -- tasks -------------------------------------------------------------------------------

    async def detach(self) -> bool:
        """Continue as a task: the client gets a ``CreateTaskResult`` now, this handler keeps running.

        For tools registered with ``defer_task=True``: questions asked before ``detach`` are
        answered within the request (an MRTR round on 2026-07-28), the rest runs as a task whose
        result the client polls. Returns True when the handler now runs as a task; False when
        the client cannot take a task (it did not declare the tasks extension), in which case
        the handler simply goes on answering its request.
        """
        if self._task is not None:
            return True
        if self._detacher is None:
            return False
        await self._detacher(self)
        return self._task is not None

    def _bind_task(self, task: TaskBinding) -> None:
        self._task = task
        self._outlet = task.outlet

