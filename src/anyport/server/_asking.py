"""Asking the client from a handler: ``ctx.elicit`` / ``ctx.sample`` / ``ctx.list_roots`` / ``ctx.gather``.

``_Asking`` is a mixin of ``Context``. A question goes out as a server->client request on a legacy
connection or inside a task, and as an MRTR round (``InputRequired``) on 2026-07-28 (M-14..M-18).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel

from anyport._exceptions import InternalError, MissingCapabilityError, RemoteProtocolError
from anyport.protocol import brief
from anyport.server._ctxbase import _ContextBase
from anyport.server._questions import (
    ElicitResult,
    Question,
    Root,
    SamplingResult,
    _flat_schema,
    _roots_result,
    _sampling_result,
)

__all__ = ["InputRequired"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")


class InputRequired(Exception):
    """Raised inside a handler on 2026-07-28 when it needs the client's input (MRTR)."""

    def __init__(self, requests: dict[str, dict[str, Any]], answers: dict[str, Any]) -> None:
        super().__init__("input required")
        self.requests = requests
        self.answers = answers


class _Asking(_ContextBase):
    """``Context``'s questions to the client; its state is declared in ``_ContextBase``."""

    __slots__ = ()

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
