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

import asyncio
import collections
import inspect
import time
import weakref
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar, overload

from pydantic import BaseModel

from anyport._exceptions import InternalError, MissingCapabilityError, RemoteProtocolError
from anyport.protocol import LOG_LEVELS, IncomingRequest, brief
from anyport.runtime import Outlet

__all__ = ["Context", "ElicitResult", "Outlet", "Question", "Root", "SamplingResult"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")


class TaskBinding(Protocol):
    """What a handler running as a task asks the client through."""

    task_id: str
    outlet: Outlet

    async def ask(self, method: str, params: dict[str, Any]) -> Any: ...


@dataclass(slots=True)
class ElicitResult(Generic[M]):
    """The user's answer: ``action`` is ``accept``, ``decline`` or ``cancel``; ``content`` on accept."""

    action: str
    content: M | dict[str, Any] | None = None

    @property
    def accepted(self) -> bool:
        return self.action == "accept"


@dataclass(slots=True)
class SamplingResult:
    role: str
    content: dict[str, Any]
    model: str
    stop_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        c = self.content
        if isinstance(c, dict) and c.get("type") == "text":
            return str(c.get("text", ""))
        if isinstance(c, list):
            return "".join(str(b.get("text", "")) for b in c if isinstance(b, dict) and b.get("type") == "text")
        return ""


@dataclass(slots=True)
class Root:
    uri: str
    name: str | None = None


class InputRequired(Exception):
    """Raised inside a handler on 2026-07-28 when it needs the client's input (MRTR)."""

    def __init__(self, requests: dict[str, dict[str, Any]], answers: dict[str, Any]) -> None:
        super().__init__("input required")
        self.requests = requests
        self.answers = answers


class _Turns:
    """Fair turns at the ``ctx`` scheduling points of one event loop.

    A handler that only reports progress or logs is runnable on every turn of the loop; 500 of them
    make each turn cost 500 handler steps, and everything else the loop does (accepting a connection,
    answering ``/healthz``) waits that long, once per turn (uvloop accepts one connection per turn).
    So at most ``PER_TURN`` handlers pass a scheduling point per turn of the loop; the others queue,
    first come first served, and are released ``PER_TURN`` at a time on the following turns. Queued
    handlers cost nothing while they wait; a loop with few handlers never queues one.
    """

    PER_TURN = 32

    __slots__ = ("_armed", "_loop", "_passed", "_queue")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._passed = 0
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._armed = False

    async def turn(self) -> None:
        if self._passed < self.PER_TURN and not self._queue:
            self._passed += 1
            self._arm()
            await asyncio.sleep(0)
            return
        fut = self._loop.create_future()
        self._queue.append(fut)
        self._arm()
        await fut

    def _arm(self) -> None:
        if not self._armed:
            self._armed = True
            self._loop.call_soon(self._tick)  # runs on the next turn of the loop, before the handlers

    def _tick(self) -> None:
        self._armed = False
        self._passed = 0
        queue = self._queue
        while queue and self._passed < self.PER_TURN:
            fut = queue.popleft()
            if not fut.done():  # a handler cancelled while it waited
                fut.set_result(None)
                self._passed += 1
        if queue or self._passed:
            self._arm()


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = weakref.WeakKeyDictionary()


def _turn() -> Awaitable[None]:
    """The scheduling point of ``report_progress`` and ``log`` (see ``_Turns``)."""
    loop = asyncio.get_running_loop()
    turns = _turns.get(loop)
    if turns is None:
        turns = _turns[loop] = _Turns(loop)
    return turns.turn()


class Context:
    """Passed to handlers that declare a parameter annotated ``Context``."""

    __slots__ = (
        "_answers", "_asked", "_detacher", "_keys", "_outlet", "_progress_at", "_progress_budget", "_progress_last", "_task",
        "request", "server",
    )

    #: U-09 (rate-limit progress): a burst of this many progress notifications goes out at once ...
    PROGRESS_BURST = 10
    #: ... then at most this many per second per request; the reports in between are skipped (each
    #: later one supersedes them), except one that reaches ``total``, which always goes.
    PROGRESS_PER_SECOND = 10.0

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
        self._progress_last: float | None = None
        self._progress_budget = float(self.PROGRESS_BURST)
        self._progress_at = 0.0
        self._answers: dict[str, Any] = dict(answers or {})
        self._asked = 0
        #: Keys of the questions asked so far in this run of the handler (each must be unique, M-15).
        self._keys: set[str] = set()
        #: The task this handler runs as (None: it answers its request directly).
        self._task: TaskBinding | None = None
        #: Turns the rest of this handler into a task (set for tools that may defer; see ``detach``).
        self._detacher: Callable[[Context], Awaitable[None]] | None = None

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

    # -- progress and logging ----------------------------------------------------------------

    async def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """``notifications/progress`` for this request's progressToken; a no-op without one (U-06..U-08).

        A scheduling point, like ``log``: it always yields to the event loop once, so a handler
        that does nothing but report progress still lets the server answer other requests and
        health checks and notice a client that went away. When the client reads more slowly than
        the handler reports, the transport holds a bounded number of messages: the latest progress
        replaces older queued progress, other messages wait for room (docs/limits.md). A handler
        that reports more than ``PROGRESS_PER_SECOND`` times a second (after a burst of
        ``PROGRESS_BURST``) has the reports in between skipped (U-09): it costs the server a
        notification only when one can matter to the client.
        """
        token = self.request.progress_token
        last = self._progress_last
        # U-08: progress strictly increases; a stale value is dropped, not sent.
        if token is not None and (last is None or progress > last):
            self._progress_last = progress
            if self._progress_due(total is not None and progress >= total):
                params: dict[str, Any] = {"progressToken": token, "progress": progress}
                if total is not None:
                    params["total"] = total
                if message is not None and self.request.revision.progress_message:
                    params["message"] = message
                await self._outlet.notify("notifications/progress", params)
        await _turn()

    def _progress_due(self, last: bool) -> bool:
        """A token bucket of ``PROGRESS_BURST`` refilled at ``PROGRESS_PER_SECOND``."""
        now = time.monotonic()
        budget = min(float(self.PROGRESS_BURST), self._progress_budget + (now - self._progress_at) * self.PROGRESS_PER_SECOND)
        self._progress_at = now
        if budget >= 1.0 or last:
            self._progress_budget = max(0.0, budget - 1.0)
            return True
        self._progress_budget = budget
        return False

    async def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """``notifications/message`` at ``level``, if the client asked for that level (U-10, M-19).
        A scheduling point, as ``report_progress`` is."""
        if not isinstance(level, str) or level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {brief(level)}; one of {', '.join(LOG_LEVELS)}")
        floor = self.request.log_level
        if floor is not None and LOG_LEVELS[level] >= LOG_LEVELS[floor]:
            params: dict[str, Any] = {"level": level, "data": data}
            if logger is not None:
                params["logger"] = logger
            await self._outlet.notify("notifications/message", params)
        await _turn()

    async def debug(self, data: Any, logger: str | None = None) -> None:
        await self.log("debug", data, logger)

    async def info(self, data: Any, logger: str | None = None) -> None:
        await self.log("info", data, logger)

    async def warning(self, data: Any, logger: str | None = None) -> None:
        await self.log("warning", data, logger)

    async def error(self, data: Any, logger: str | None = None) -> None:
        await self.log("error", data, logger)

    # -- asking the client -------------------------------------------------------------------

    @overload
    def elicit(self, message: str, schema: type[M], *, key: str | None = None) -> Question[ElicitResult[M]]: ...

    @overload
    def elicit(self, message: str, schema: dict[str, Any], *, key: str | None = None) -> Question[ElicitResult[Any]]: ...

    def elicit(self, message: str, schema: type[M] | dict[str, Any], *, key: str | None = None) -> Question[ElicitResult[Any]]:
        """Ask the user for structured input (form mode). ``schema`` is a flat pydantic model or a JSON Schema.

        Await the returned question, or pass it to ``gather`` with others. ``key`` names the question
        in a 2026-07-28 ``inputRequests`` map (default ``q0``, ``q1``, ... in asking order); give one
        when a client answers by a name it knows.
        """
        model = schema if isinstance(schema, type) and issubclass(schema, BaseModel) else None
        requested = _flat_schema(model) if model is not None else dict(schema)  # type: ignore[arg-type]

        def parse(result: Any) -> ElicitResult[Any]:
            if not isinstance(result, dict) or result.get("action") not in ("accept", "decline", "cancel"):
                raise RemoteProtocolError(f"invalid elicitation result: {brief(result)}")
            content = result.get("content") if result["action"] == "accept" else None
            if model is not None and isinstance(content, dict):
                return ElicitResult(result["action"], model.model_validate(content))
            return ElicitResult(result["action"], content if isinstance(content, dict) else None)

        params = {"message": message, "requestedSchema": requested}
        return Question(self, "elicitation", "elicitation/create", params, key, parse)

    def sample(
        self,
        messages: str | Sequence[dict[str, Any]],
        *,
        max_tokens: int = 512,
        system_prompt: str | None = None,
        temperature: float | None = None,
        stop_sequences: Sequence[str] | None = None,
        model_preferences: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> Question[SamplingResult]:
        """Ask the client's LLM for a completion (``sampling/createMessage``); await it or ``gather`` it."""
        if isinstance(messages, str):
            msgs: list[dict[str, Any]] = [{"role": "user", "content": {"type": "text", "text": messages}}]
        else:
            msgs = list(messages)
        params: dict[str, Any] = {"messages": msgs, "maxTokens": max_tokens}
        for name, value in (
            ("systemPrompt", system_prompt),
            ("temperature", temperature),
            ("stopSequences", list(stop_sequences) if stop_sequences else None),
            ("modelPreferences", model_preferences),
            ("metadata", metadata),
        ):
            if value is not None:
                params[name] = value
        return Question(self, "sampling", "sampling/createMessage", params, key, _sampling_result)

    def list_roots(self, *, key: str | None = None) -> Question[list[Root]]:
        """The client's roots (``roots/list``); await it or ``gather`` it."""
        return Question(self, "roots", "roots/list", {}, key, _roots_result)

    @overload
    async def gather(self, q1: Question[T1], /, *, return_exceptions: Literal[False] = False) -> tuple[T1]: ...

    @overload
    async def gather(
        self, q1: Question[T1], q2: Question[T2], /, *, return_exceptions: Literal[False] = False
    ) -> tuple[T1, T2]: ...

    @overload
    async def gather(
        self, q1: Question[T1], q2: Question[T2], q3: Question[T3], /, *, return_exceptions: Literal[False] = False
    ) -> tuple[T1, T2, T3]: ...

    @overload
    async def gather(
        self, q1: Question[T1], q2: Question[T2], q3: Question[T3], q4: Question[T4], /, *,
        return_exceptions: Literal[False] = False,
    ) -> tuple[T1, T2, T3, T4]: ...

    @overload
    async def gather(self, *questions: Question[Any], return_exceptions: bool = False) -> tuple[Any, ...]: ...

    async def gather(self, *questions: Question[Any], return_exceptions: bool = False) -> tuple[Any, ...]:
        """Ask several questions at once; their answers come back in argument order.

        ``name, reply, roots = await ctx.gather(ctx.elicit(...), ctx.sample(...), ctx.list_roots())``

        On a legacy connection (and inside a task) the server->client requests go out
        concurrently, as with ``asyncio.gather``. On 2026-07-28 it is one MRTR round for all of
        them (M-15): questions already answered get their answers, and if any is still missing,
        one ``input_required`` result carries every missing question; the client answers them all
        and retries. Default keys follow asking order (``q<n>``, one number per question, answered
        or not), so a later round maps answers back to the same questions; ``key=`` overrides one.

        Errors: every question is checked before anything is asked. Something other than a
        question made by this Context is a ``TypeError`` (an arbitrary coroutine could ask a
        varying number of questions, which would shift the keys between rounds: await it on its
        own, or use ``asyncio.gather`` for non-questions); a question already asked is a
        ``RuntimeError``; two questions with one key are a ``ValueError``; capabilities the
        client did not declare are one ``MissingCapabilityError`` naming all of them (M-06).
        After that, the first question that fails (an invalid answer, a failed request) ends the
        gather with its error and, on a legacy connection, cancels the requests still out.
        With ``return_exceptions=True`` such errors are returned in place of answers instead; a
        2026-07-28 round with missing answers still ends the handler (that is not an error).
        """
        if not questions:
            return ()
        self._claim(questions)
        self._require(questions)
        keys = [self._take_key(q.key) for q in questions]
        if not self._mrtr:
            return await self._gather_requests(questions, return_exceptions)
        results: list[Any] = []
        missing: dict[str, dict[str, Any]] = {}
        for q, key in zip(questions, keys, strict=True):
            if key not in self._answers:
                missing[key] = q._request()
                results.append(None)
                continue
            try:
                results.append(q._parse(self._answers[key]))
            except Exception as exc:
                if not return_exceptions:
                    raise
                results.append(exc)
        if missing:
            raise InputRequired(missing, self._answers)  # M-15: one round, every missing question
        return tuple(results)

    @property
    def _mrtr(self) -> bool:
        """Questions become an MRTR round (2026-07-28, outside a task) rather than requests."""
        return self._task is None and not self.request.revision.server_requests

    async def _ask_one(self, q: Question[T]) -> T:
        self._claim((q,))
        self._require((q,))
        key = self._take_key(q.key)
        if not self._mrtr:
            return q._parse(await self._send(q))
        if key in self._answers:
            return q._parse(self._answers[key])
        raise InputRequired({key: q._request()}, self._answers)

    async def _send(self, q: Question[Any]) -> Any:
        if self._task is not None:
            return await self._task.ask(q.method, q.params)
        return await self._outlet.request(q.method, q.params)

    async def _send_parsed(self, q: Question[T]) -> T:
        return q._parse(await self._send(q))

    async def _gather_requests(self, questions: Sequence[Question[Any]], return_exceptions: bool) -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._send_parsed(q)) for q in questions]
        try:
            return tuple(await asyncio.gather(*tasks, return_exceptions=return_exceptions))
        except BaseException:
            # Unlike asyncio.gather, a failure does not leave the other requests running unseen.
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks)
            raise

    def _claim(self, questions: Sequence[Any]) -> None:
        """Each argument is a question of this Context, asked now for the first time."""
        for q in questions:
            if not isinstance(q, Question):
                for other in questions:
                    if inspect.iscoroutine(other):
                        other.close()  # no "never awaited" warning on top of this error
                raise TypeError(
                    f"ctx.gather() takes questions made by ctx.elicit(), ctx.sample() or ctx.list_roots(), "
                    f"not {type(q).__name__}; await other coroutines separately (or use asyncio.gather)"
                )
            if q._ctx is not self:
                raise ValueError(f"{q!r} belongs to another Context")
            if q._asked:
                raise RuntimeError(f"{q!r} was already asked; make a new question to ask again")
            q._asked = True

    def _require(self, questions: Sequence[Question[Any]]) -> None:
        caps = self.request.client_capabilities
        missing: dict[str, Any] = {q.capability: {} for q in questions if q.capability not in caps}
        if missing:
            # M-06 / M-15: never rely on, or ask for, what the client did not declare.
            names = ", ".join(repr(c) for c in missing)
            raise MissingCapabilityError(
                f"this request needs the client capabilit{'y' if len(missing) == 1 else 'ies'} {names}",
                data={"requiredCapabilities": missing},
            )
        rev = self.request.revision
        if not rev.elicitation and any(q.capability == "elicitation" for q in questions):
            raise InternalError(f"elicitation does not exist on protocol {rev.version}")

    def _take_key(self, explicit: str | None) -> str:
        """The question's key: ``explicit``, else ``q<n>`` by asking order (n counts every question)."""
        key = explicit or f"q{self._asked}"
        self._asked += 1
        if key in self._keys:
            # M-15: inputRequests keys are unique, and an answer must map back to one question.
            raise ValueError(f"two questions share the key {key!r}; give each a distinct key=")
        self._keys.add(key)
        return key


class Question(Generic[T_co]):
    """One question for the client, made by ``ctx.elicit``, ``ctx.sample`` or ``ctx.list_roots``.

    Nothing is asked until it is awaited (alone) or passed to ``ctx.gather`` (with others); a
    question is asked once.
    """

    __slots__ = ("_asked", "_ctx", "_parse", "capability", "key", "method", "params")

    def __init__(
        self, ctx: Context, capability: str, method: str, params: dict[str, Any], key: str | None,
        parse: Callable[[Any], T_co],
    ) -> None:
        self._ctx = ctx
        self.capability = capability
        self.method = method
        self.params = params
        self.key = key
        self._parse = parse
        self._asked = False

    def __await__(self) -> Generator[Any, None, T_co]:
        return self._ctx._ask_one(self).__await__()

    def __repr__(self) -> str:
        named = f" key={self.key!r}" if self.key else ""
        return f"<Question {self.method}{named}>"

    def _request(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}


def _sampling_result(result: Any) -> SamplingResult:
    if not isinstance(result, dict) or "content" not in result:
        raise RemoteProtocolError(f"invalid sampling result: {brief(result)}")
    return SamplingResult(
        role=str(result.get("role", "assistant")),
        content=result["content"],
        model=str(result.get("model", "")),
        stop_reason=result.get("stopReason"),
        raw=result,
    )


def _roots_result(result: Any) -> list[Root]:
    roots = result.get("roots") if isinstance(result, dict) else None
    if not isinstance(roots, list):
        raise RemoteProtocolError(f"invalid roots result: {brief(result)}")
    return [Root(str(r.get("uri")), r.get("name")) for r in roots if isinstance(r, dict)]


def _flat_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema
