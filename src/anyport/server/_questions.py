"""What a handler asks the client and what comes back: ``Question`` and the answer types.

``ElicitResult``, ``SamplingResult`` and ``Root`` are the parsed answers to ``ctx.elicit``,
``ctx.sample`` and ``ctx.list_roots``; the parsers here check the client's raw result. Public
through ``anyport.server._context`` (and ``anyport``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from anyport._exceptions import RemoteProtocolError
from anyport.protocol import brief

if TYPE_CHECKING:
    from anyport.server._asking import _Asking

__all__ = ["ElicitResult", "Question", "Root", "SamplingResult"]

M = TypeVar("M", bound=BaseModel)
T_co = TypeVar("T_co", covariant=True)


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


class Question(Generic[T_co]):
    """One question for the client, made by ``ctx.elicit``, ``ctx.sample`` or ``ctx.list_roots``.

    Nothing is asked until it is awaited (alone) or passed to ``ctx.gather`` (with others); a
    question is asked once.
    """

    __slots__ = ("_asked", "_ctx", "_parse", "capability", "key", "method", "params")

    def __init__(
        self, ctx: _Asking, capability: str, method: str, params: dict[str, Any], key: str | None,
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
