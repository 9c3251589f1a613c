"""``Context``: what a tool, resource or prompt handler can do besides returning a value.

One API for both eras. On a legacy connection, ``elicit`` / ``sample`` / ``list_roots`` are
server->client requests. On 2026-07-28 they become an MRTR round (M-14..M-18): the first call
ends the handler with an ``input_required`` result; the client answers and retries, and the
handler runs again from the top, this time receiving the answer where it asked. Code before the
question therefore runs once per round: keep it free of side effects, or put them after.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, overload

from pydantic import BaseModel

from anyport._exceptions import InternalError, MissingCapabilityError, RemoteProtocolError
from anyport.protocol import LOG_LEVELS, IncomingRequest

__all__ = ["Context", "ElicitResult", "Outlet", "Root", "SamplingResult"]

M = TypeVar("M", bound=BaseModel)


class Outlet(Protocol):
    """How a handler reaches the client: provided by the transport runtime.

    An outlet may also carry ``session_id`` (a str): the id under which its legacy session is
    registered with ``server.hub`` (resource subscriptions and task ownership use it).
    """

    async def notify(self, method: str, params: dict[str, Any]) -> None: ...

    async def request(self, method: str, params: dict[str, Any]) -> Any: ...


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


class Context:
    """Passed to handlers that declare a parameter annotated ``Context``."""

    __slots__ = ("_answers", "_asked", "_detacher", "_outlet", "_progress_last", "_task", "request", "server")

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
        self._answers: dict[str, Any] = dict(answers or {})
        self._asked = 0
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
        """``notifications/progress`` for this request's progressToken; a no-op without one (U-06..U-08)."""
        token = self.request.progress_token
        if token is None:
            return
        if self._progress_last is not None and progress <= self._progress_last:
            return  # U-08: progress strictly increases; a stale value is dropped, not sent
        self._progress_last = progress
        params: dict[str, Any] = {"progressToken": token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None and self.request.revision.progress_message:
            params["message"] = message
        await self._outlet.notify("notifications/progress", params)

    async def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """``notifications/message`` at ``level``, if the client asked for that level (U-10, M-19)."""
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}; one of {', '.join(LOG_LEVELS)}")
        floor = self.request.log_level
        if floor is None or LOG_LEVELS[level] < LOG_LEVELS[floor]:
            return
        params: dict[str, Any] = {"level": level, "data": data}
        if logger is not None:
            params["logger"] = logger
        await self._outlet.notify("notifications/message", params)

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
    async def elicit(self, message: str, schema: type[M], *, key: str | None = None) -> ElicitResult[M]: ...

    @overload
    async def elicit(self, message: str, schema: dict[str, Any], *, key: str | None = None) -> ElicitResult[Any]: ...

    async def elicit(self, message: str, schema: type[M] | dict[str, Any], *, key: str | None = None) -> ElicitResult[Any]:
        """Ask the user for structured input (form mode). ``schema`` is a flat pydantic model or a JSON Schema.

        ``key`` names the question in a 2026-07-28 ``inputRequests`` map (default ``q0``, ``q1``, ...
        in asking order); give one when a client answers by a name it knows.
        """
        model = schema if isinstance(schema, type) and issubclass(schema, BaseModel) else None
        requested = _flat_schema(model) if model is not None else dict(schema)  # type: ignore[arg-type]
        result = await self._ask("elicitation", "elicitation/create", {"message": message, "requestedSchema": requested}, key)
        if not isinstance(result, dict) or result.get("action") not in ("accept", "decline", "cancel"):
            raise RemoteProtocolError(f"invalid elicitation result: {result!r}")
        content = result.get("content") if result["action"] == "accept" else None
        if model is not None and isinstance(content, dict):
            return ElicitResult(result["action"], model.model_validate(content))
        return ElicitResult(result["action"], content if isinstance(content, dict) else None)

    async def sample(
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
    ) -> SamplingResult:
        """Ask the client's LLM for a completion (``sampling/createMessage``)."""
        if isinstance(messages, str):
            msgs: list[dict[str, Any]] = [{"role": "user", "content": {"type": "text", "text": messages}}]
        else:
            msgs = list(messages)
        params: dict[str, Any] = {"messages": msgs, "maxTokens": max_tokens}
        for key, value in (
            ("systemPrompt", system_prompt),
            ("temperature", temperature),
            ("stopSequences", list(stop_sequences) if stop_sequences else None),
            ("modelPreferences", model_preferences),
            ("metadata", metadata),
        ):
            if value is not None:
                params[key] = value
        result = await self._ask("sampling", "sampling/createMessage", params, key)
        if not isinstance(result, dict) or "content" not in result:
            raise RemoteProtocolError(f"invalid sampling result: {result!r}")
        return SamplingResult(
            role=str(result.get("role", "assistant")),
            content=result["content"],
            model=str(result.get("model", "")),
            stop_reason=result.get("stopReason"),
            raw=result,
        )

    async def list_roots(self, *, key: str | None = None) -> list[Root]:
        """The client's roots (``roots/list``)."""
        result = await self._ask("roots", "roots/list", {}, key)
        roots = result.get("roots") if isinstance(result, dict) else None
        if not isinstance(roots, list):
            raise RemoteProtocolError(f"invalid roots result: {result!r}")
        return [Root(str(r.get("uri")), r.get("name")) for r in roots if isinstance(r, dict)]

    async def _ask(self, capability: str, method: str, params: dict[str, Any], key: str | None = None) -> Any:
        if capability not in self.request.client_capabilities:
            # M-06 / M-15: never rely on, or ask for, what the client did not declare.
            raise MissingCapabilityError(
                f"this request needs the client capability {capability!r}",
                data={"requiredCapabilities": {capability: {}}},
            )
        rev = self.request.revision
        if capability == "elicitation" and not rev.elicitation:
            raise InternalError(f"elicitation does not exist on protocol {rev.version}")
        if self._task is not None:
            return await self._task.ask(method, params)
        if rev.server_requests:
            return await self._outlet.request(method, params)
        key = key or f"q{self._asked}"
        self._asked += 1
        if key in self._answers:
            return self._answers[key]
        raise InputRequired({key: {"method": method, "params": params}}, self._answers)


def _flat_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema
