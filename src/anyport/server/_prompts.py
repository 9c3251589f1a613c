"""``_Prompts``: the ``prompts/list``, ``prompts/get`` and ``completion/complete`` handlers of ``Server``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pydantic

from anyport._exceptions import InvalidParamsError
from anyport.protocol import IncomingRequest, brief
from anyport.server._content import to_content_blocks
from anyport.server._context import InputRequired, Outlet
from anyport.server._entries import Completion, Message, _page, _Prompt, _Resource, _validation_text
from anyport.server._mrtr import _Mrtr
from anyport.server._scopes import _Scopes

_MAX_COMPLETIONS = 100


class _Prompts(_Mrtr, _Scopes):
    """Listing and getting prompts; completing an argument of a prompt or resource template."""

    _prompts: dict[str, _Prompt]
    _resources: dict[str, _Resource]
    _templates: list[_Resource]
    _completions: dict[tuple[str, str, str], Callable[..., Any]]
    page_size: int | None

    async def _list_prompts(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        return _page([p.meta for p in self._prompts.values() if self._visible(p.scopes)], req.params, "prompts", self.page_size)

    async def _get_prompt(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        name = req.params.get("name")
        prompt = self._prompts.get(name) if isinstance(name, str) else None
        if prompt is None:
            raise InvalidParamsError(f"Unknown prompt: {brief(name)}")  # F-PROMPT-02
        self._check_scopes(f"prompt {prompt.name}", prompt.scopes)
        arguments = req.params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise InvalidParamsError("prompts/get arguments must be an object")
        try:
            kwargs = prompt.args.validate(arguments)
        except pydantic.ValidationError as exc:
            raise InvalidParamsError(f"Invalid arguments for prompt {prompt.name}: {_validation_text(exc)}") from exc
        answers = self._answers(req, prompt.name)
        try:
            value = await self._invoke(prompt.fn, prompt.is_async, kwargs, prompt.args, req, outlet, answers)
        except InputRequired as exc:
            return self._input_required(req, prompt.name, exc)
        result: dict[str, Any] = {"messages": _prompt_messages(value)}
        if prompt.meta.get("description"):
            result["description"] = prompt.meta["description"]
        return result

    # -- completion ---------------------------------------------------------------------------------------------

    async def _complete(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        ref = req.params.get("ref")
        argument = req.params.get("argument")
        if not isinstance(ref, dict) or not isinstance(argument, dict) or not isinstance(argument.get("name"), str):
            raise InvalidParamsError("completion/complete needs ref and argument {name, value}")
        kind = ref.get("type")
        target = ref.get("name") if kind == "ref/prompt" else ref.get("uri") if kind == "ref/resource" else None
        if not isinstance(target, str):
            raise InvalidParamsError(f"Invalid completion ref: {brief(ref)}")
        if kind == "ref/prompt" and target not in self._prompts:
            raise InvalidParamsError(f"Unknown prompt: {brief(target)}")
        if kind == "ref/resource" and not any(t.template.template == target for t in self._templates) and target not in self._resources:
            raise InvalidParamsError(f"Unknown resource: {brief(target)}")
        fn = self._completions.get((str(kind), target, str(argument["name"])))
        if fn is None:
            return {"completion": {"values": [], "hasMore": False}}
        value = argument.get("value", "")
        ctx_args = req.params.get("context", {})
        ctx_args = ctx_args.get("arguments", {}) if isinstance(ctx_args, dict) else {}
        out = fn(str(value), dict(ctx_args) if isinstance(ctx_args, dict) else {})
        if inspect.isawaitable(out):
            out = await out
        comp = out if isinstance(out, Completion) else Completion([str(v) for v in out])
        values = comp.values[:_MAX_COMPLETIONS]
        completion: dict[str, Any] = {"values": values}
        total = comp.total if comp.total is not None else len(comp.values)
        completion["total"] = total
        completion["hasMore"] = comp.has_more if comp.has_more is not None else total > len(values)
        return {"completion": completion}


def _prompt_messages(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, Message):
            role, content = item.role, item.content
        elif isinstance(item, dict) and "role" in item:
            role, content = item["role"], item.get("content")
        else:
            role, content = "user", item
        if role not in ("user", "assistant"):
            raise InvalidParamsError(f"prompt message role must be user or assistant, not {role!r}")
        if isinstance(content, dict) and "type" in content:
            block = content
        else:
            blocks = to_content_blocks(content)
            block = blocks[0] if blocks else {"type": "text", "text": ""}
        out.append({"role": role, "content": block})
    return out
