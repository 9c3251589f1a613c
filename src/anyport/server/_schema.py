"""Input and output schemas from type hints, built once at registration.

Arguments are validated with a pydantic model made from the signature (plain types,
``Annotated[..., Field(...)]``, pydantic models, defaults); the JSON Schema is 2020-12, the
pydantic default. The return annotation decides the output: a ``str`` (or no annotation) is
text; an object type (model, TypedDict, dataclass, mapping) is ``structuredContent`` with its
``outputSchema``; any other type is wrapped as ``{"result": value}`` so the root stays an object
for legacy clients (F-TOOL-06).
"""

from __future__ import annotations

import dataclasses
import dis
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, get_args, get_origin

import pydantic
from pydantic import BaseModel, TypeAdapter

from anyport.server._content import CONTENT_TYPES

__all__ = ["ArgumentsSpec", "OutputSpec", "build_arguments", "build_output", "never_awaits"]

# What a coroutine's own code object must contain to ever suspend: await, async with, async for.
_SUSPENDING_OPS = frozenset({"GET_AWAITABLE", "BEFORE_ASYNC_WITH", "GET_AITER", "GET_ANEXT", "SEND", "YIELD_VALUE"})


def never_awaits(fn: Callable[..., Any]) -> bool:
    """True for an ``async def`` whose body has no ``await``, ``async with`` or ``async for``.

    Such a coroutine runs to its end in one step, like a plain function, so it can be run inline
    without a task. Anything that is not a plain Python function (a partial, a callable object,
    a C function) counts as awaiting: we only claim what the bytecode shows.
    """
    if not isinstance(fn, types.FunctionType):
        return False
    return not any(ins.opname in _SUSPENDING_OPS for ins in dis.get_instructions(fn.__code__))


def _is_context(annotation: Any, context_type: type) -> bool:
    if annotation is context_type:
        return True
    args = get_args(annotation)
    return bool(args) and any(a is context_type for a in args)


@dataclasses.dataclass(slots=True)
class ArgumentsSpec:
    model: type[BaseModel]
    names: tuple[str, ...]
    context_param: str | None
    schema: dict[str, Any]
    #: (name, description, required) for prompts
    fields: tuple[tuple[str, str | None, bool], ...]
    #: (name, accepted exact types, required) when every parameter is a plain scalar, else None.
    quick: tuple[tuple[str, tuple[type, ...], bool], ...] | None = None

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validated keyword arguments; raises ``pydantic.ValidationError``.

        Arguments whose values already have exactly the declared scalar types are taken as they
        are (what pydantic would return for them); anything else, including every error, goes
        through the pydantic validator.
        """
        quick = self.quick
        if quick is not None:
            out: dict[str, Any] = {}
            for name, kinds, required in quick:
                value = arguments.get(name, _MISSING)
                if value is _MISSING:
                    if required:
                        break
                    continue  # the function's own default applies
                if type(value) not in kinds:
                    break
                out[name] = value
            else:
                return out
        obj = self.model.__pydantic_validator__.validate_python(arguments)
        return obj.__dict__  # type: ignore[no-any-return]  # the field values by name; the instance is dropped


_MISSING: Any = object()
_SCALARS = (str, int, float, bool)


def _quick_types(annotation: Any, default: Any) -> tuple[type, ...] | None:
    """The exact types a plain scalar parameter accepts as-is (``str``, ``int | None``, ...), else None."""
    if annotation in _SCALARS:
        kinds: tuple[type, ...] = (annotation,)
    elif get_origin(annotation) in (typing.Union, types.UnionType):
        members = get_args(annotation)
        if not all(m in _SCALARS or m is type(None) for m in members):
            return None
        kinds = tuple(members)
    else:
        return None
    if default is not ... and type(default) not in (*kinds, type(None)):
        return None
    return kinds


def _strip_titles(schema: Any) -> None:
    """pydantic titles every property after its name; drop that noise, keep user-given titles."""
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for name, prop in props.items():
                if isinstance(prop, dict) and prop.get("title") == name.replace("_", " ").title():
                    del prop["title"]
        for v in schema.values():
            _strip_titles(v)
    elif isinstance(schema, list):
        for v in schema:
            _strip_titles(v)


def build_arguments(fn: Callable[..., Any], context_type: type, model_name: str) -> ArgumentsSpec:
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    ctx_param: str | None = None
    prompt_fields: list[tuple[str, str | None, bool]] = []
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{fn.__qualname__}: *args/**kwargs cannot be described as a schema")
        ann = hints.get(name, Any)
        if _is_context(ann, context_type):
            ctx_param = name
            continue
        if name.startswith("_"):
            raise TypeError(f"{fn.__qualname__}: parameter names may not start with '_' ({name})")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (ann, default)
        desc = None
        for meta in get_args(ann)[1:] if get_origin(ann) is typing.Annotated else ():
            if isinstance(meta, pydantic.fields.FieldInfo) and meta.description:
                desc = meta.description
        prompt_fields.append((name, desc, default is ...))
    model = pydantic.create_model(model_name, __config__=pydantic.ConfigDict(arbitrary_types_allowed=True), **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    _strip_titles(schema)
    schema.setdefault("properties", {})
    if not fields:
        schema["additionalProperties"] = False  # F-TOOL-04: a no-argument tool
    quick: list[tuple[str, tuple[type, ...], bool]] | None = []
    for name, (ann, default) in fields.items():
        accepted = _quick_types(ann, default)
        if accepted is None or quick is None:
            quick = None
            continue
        quick.append((name, accepted, default is ...))
    return ArgumentsSpec(
        model, tuple(fields), ctx_param, schema, tuple(prompt_fields), None if quick is None else tuple(quick)
    )


@dataclasses.dataclass(slots=True)
class OutputSpec:
    #: None: unstructured (text / content blocks).
    schema: dict[str, Any] | None
    adapter: TypeAdapter[Any] | None
    wrapped: bool

    def structured(self, value: Any) -> Any:
        assert self.adapter is not None
        data = self.adapter.dump_python(value, mode="json")
        return {"result": data} if self.wrapped else data


def _is_object_type(tp: Any) -> bool:
    origin = get_origin(tp) or tp
    if inspect.isclass(origin):
        if issubclass(origin, BaseModel) or dataclasses.is_dataclass(origin):
            return True
        if typing.is_typeddict(origin):
            return True
        if issubclass(origin, Mapping):
            return True
    return False


def build_output(fn: Callable[..., Any], structured: bool | None) -> OutputSpec:
    hints = typing.get_type_hints(fn, include_extras=True)
    ret = hints.get("return", inspect.Signature.empty)
    if get_origin(ret) is typing.Annotated:
        ret = get_args(ret)[0]
    unstructured = (
        ret is inspect.Signature.empty
        or ret is None
        or ret is type(None)
        or ret is str
        or ret is Any
        or (inspect.isclass(ret) and issubclass(ret, CONTENT_TYPES))
        or any(inspect.isclass(a) and issubclass(a, CONTENT_TYPES) for a in get_args(ret))
    )
    if structured is False or (unstructured and structured is not True):
        return OutputSpec(None, None, False)
    adapter: TypeAdapter[Any] = TypeAdapter(ret)
    inner = adapter.json_schema(mode="serialization")
    if _is_object_type(ret):
        schema = inner
        wrapped = False
    else:
        defs = inner.pop("$defs", None)
        schema = {"type": "object", "properties": {"result": inner}, "required": ["result"]}
        if defs:
            schema["$defs"] = defs  # refs point at the root: keep the definitions there
        wrapped = True
    schema.pop("title", None)
    _strip_titles(schema)
    return OutputSpec(schema, adapter, wrapped)
