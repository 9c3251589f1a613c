"""MRTR rounds for a 2026-07-28 caller of a legacy child (M-14..M-18).

A legacy child asks its client with requests (``elicitation/create``, ``sampling/createMessage``,
``roots/list``) in the middle of a call. A 2026-07-28 caller cannot be asked that way (M-10): the
bridge answers its request with an ``input_required`` result carrying the child's questions, and
keeps the child's call running, *parked*, until the caller retries with ``inputResponses``. The
``requestState`` it echoes is sealed with the key ring (AEAD, bound to the method and the tool,
prompt or resource named): it names the parked call and cannot be forged (M-16). The parked call's
id also stands in clear in front of it (``<id>.<sealed>``, checked against the sealed one), so that
bridge replicas can route a retry to the replica where its call is parked without opening it. A
parked call nobody comes back for is cancelled after ``input_ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anyport._exceptions import InvalidParamsError
from anyport.protocol import IncomingRequest, KeyRing

if TYPE_CHECKING:
    from anyport.bridge._child import Child
    from anyport.runtime import Outlet

__all__ = ["Parked", "Rounds", "Route", "parked_id"]


class Route:
    """Where one forwarded request's messages go: the caller's outlet and request (both replaced
    when a 2026-07-28 caller retries), its session, and the questions waiting for an answer."""

    __slots__ = ("asked", "outlet", "questions", "req", "session")

    def __init__(self, outlet: Outlet, req: IncomingRequest, session: str | None) -> None:
        self.outlet = outlet
        self.req = req
        self.session = session
        #: Key -> (the child's request as an MRTR input request, the future its answer settles).
        self.questions: dict[str, tuple[dict[str, Any], asyncio.Future[Any]]] = {}
        self.asked = asyncio.Event()

    async def ask(self, method: str, params: dict[str, Any]) -> Any:
        """The child asked something: it becomes a question of the next ``input_required`` round."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.questions[f"q{len(self.questions)}-{secrets.token_hex(3)}"] = ({"method": method, "params": params}, fut)
        self.asked.set()
        return await fut

    def open_questions(self) -> dict[str, dict[str, Any]]:
        return {key: ask for key, (ask, fut) in self.questions.items() if not fut.done()}


@dataclass(eq=False)
class Parked:
    """A child's call (or, for ``anyport connect``, a remote's) waiting for the caller's answers."""

    child: Child | None
    route: Route
    flight: asyncio.Task[dict[str, Any]]
    disposable: bool
    expires: float = field(default=0.0)


def parked_id(request_state: object) -> str | None:
    """The id of the parked call a ``requestState`` names (not verified: ``Rounds.resume`` does that)."""
    if not isinstance(request_state, str):
        return None
    pid, sep, _ = request_state.partition(".")
    return pid if sep and 0 < len(pid) <= 32 else None


def _binding(req: IncomingRequest) -> bytes:
    target = req.params.get("name") or req.params.get("uri") or ""
    return f"bridge\0{req.method}\0{target}".encode()


class Rounds:
    """The parked calls of one bridge."""

    def __init__(self, key_ring: KeyRing, ttl: float) -> None:
        self.key_ring = key_ring
        self.ttl = ttl
        self._parked: dict[str, Parked] = {}

    def __contains__(self, parked: object) -> bool:
        return parked in self._parked

    def holds(self, child: Child) -> bool:
        return any(p.child is child for p in self._parked.values())

    def park(self, parked: Parked) -> dict[str, Any]:
        """The ``input_required`` result asking the caller what the child asked (M-15)."""
        pid = secrets.token_urlsafe(12)
        parked.expires = time.monotonic() + self.ttl
        self._parked[pid] = parked
        state = f"{pid}.{self.key_ring.seal({'p': pid}, binding=_binding(parked.route.req), ttl=self.ttl)}"
        parked.route.asked.clear()
        return {"resultType": "input_required", "inputRequests": parked.route.open_questions(), "requestState": state}

    def resume(self, req: IncomingRequest) -> Parked:
        """The parked call a retry names, with the retry's answers given to the child's questions.
        ``InvalidParamsError`` for a forged, altered, expired or already used ``requestState``."""
        state = req.params.get("requestState")
        pid = parked_id(state)
        opened = self.key_ring.open(state[len(pid) + 1:] if isinstance(state, str) and pid else state, binding=_binding(req))
        if pid is None or opened.get("p") != pid:
            raise InvalidParamsError("invalid requestState: altered")
        parked = self._parked.pop(pid, None)
        if parked is None:
            raise InvalidParamsError(
                "invalid requestState: the call it names is gone (answered, expired or the bridge restarted); "
                "send the request again without requestState"
            )
        responses = req.params.get("inputResponses")
        answers = responses if isinstance(responses, dict) else {}
        for key, (_ask, fut) in parked.route.questions.items():
            if key in answers and not fut.done():
                fut.set_result(answers[key])
        if parked.route.open_questions():
            parked.route.asked.set()  # M-17: still missing answers: the next round asks again
        return parked

    def expired(self) -> list[Parked]:
        now = time.monotonic()
        gone = [pid for pid, p in self._parked.items() if p.expires <= now]
        return [self._parked.pop(pid) for pid in gone]

    def close(self) -> None:
        for parked in self._parked.values():
            parked.flight.cancel()
        self._parked.clear()
