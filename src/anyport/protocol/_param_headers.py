"""``x-mcp-header`` tool parameters sent as ``Mcp-Param-<Name>`` headers (2026-07-28, T-H26-19/20).

A tool's ``inputSchema`` may mark a property with ``"x-mcp-header": "<Name>"``; a client calling
that tool over Streamable HTTP copies the argument's value into ``Mcp-Param-<Name>`` so that
gateways can route on it without reading the body.

``scan_param_headers`` checks one ``inputSchema``: every annotation must sit on a property reached only through
``properties`` keys (never under ``items``, ``anyOf``/``oneOf``/``allOf``/``not``,
``if``/``then``/``else``, ``$ref`` targets and the like), be a non-empty RFC 9110 token, be unique
(case-insensitively) within the tool, and annotate a ``string``, ``integer`` or ``boolean``
property. A tool breaking any rule is not usable over HTTP: the client drops it from the
``tools/list`` it exposes and logs a warning (T-H26-20).

``header_values`` builds the headers for one call: strings as they are, integers in decimal (only within
±(2^53-1)), booleans as ``true``/``false``; an absent or null argument sends no header (T-H26-19).
Values that are not plain visible ASCII (or are empty) use the ``=?base64?...?=`` sentinel (T-H26-16).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from anyport.protocol._fields import encode_field_value

__all__ = ["HEADER_PREFIX", "ParamHeader", "header_values", "scan_param_headers", "usable_tools"]

HEADER_PREFIX = "mcp-param-"
_KEY = "x-mcp-header"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TYPES = frozenset({"string", "integer", "boolean"})
_MAX_INT = 2**53 - 1
#: Keywords whose subschemas are not reached through a plain chain of ``properties``.
_SUBSCHEMA_ONE = ("items", "contains", "additionalProperties", "unevaluatedProperties", "unevaluatedItems",
                  "propertyNames", "not", "if", "then", "else")
_SUBSCHEMA_LIST = ("prefixItems", "allOf", "anyOf", "oneOf")
_SUBSCHEMA_MAP = ("patternProperties", "dependentSchemas", "$defs", "definitions")


@dataclass(frozen=True, slots=True)
class ParamHeader:
    """One annotated property: where it sits in ``arguments`` and the header it feeds."""

    path: tuple[str, ...]
    name: str
    type: str


#: Deeper schemas are refused (JSON can nest 1,024 levels; Python's recursion limit is 1,000).
_MAX_DEPTH = 128


def scan_param_headers(schema: Any) -> list[ParamHeader] | str:
    """The annotations of one ``inputSchema``, or the reason the tool is invalid."""
    found: list[ParamHeader] = []
    seen: dict[str, str] = {}

    def visit(node: Any, path: tuple[str, ...], reachable: bool) -> str | None:
        if not isinstance(node, dict):
            return None
        if len(path) > _MAX_DEPTH:
            return f"the schema nests deeper than {_MAX_DEPTH} levels"  # a peer's schema: never a RecursionError
        where = ".".join(path) or "<root>"
        if _KEY in node:
            raw = node[_KEY]
            if not reachable or not path:
                return f"{where}: x-mcp-header is allowed only on properties reached through 'properties'"
            if not isinstance(raw, str) or not raw:
                return f"{where}: x-mcp-header must be a non-empty string"
            if not _TOKEN.fullmatch(raw):
                return f"{where}: x-mcp-header {raw!r} is not an HTTP token"
            kind = node.get("type")
            if kind not in _TYPES:
                return f"{where}: x-mcp-header needs a string, integer or boolean property, not {kind!r}"
            lower = raw.lower()
            if lower in seen:
                return f"x-mcp-header {raw!r} is declared twice (also as {seen[lower]!r})"
            seen[lower] = raw
            found.append(ParamHeader(path, raw, str(kind)))
        props = node.get("properties")
        if isinstance(props, dict):
            for key, child in props.items():
                reason = visit(child, (*path, str(key)), reachable)
                if reason is not None:
                    return reason
        for kw in _SUBSCHEMA_ONE:
            if kw in node:
                reason = visit(node[kw], (*path, f"<{kw}>"), False)
                if reason is not None:
                    return reason
        for kw in _SUBSCHEMA_LIST:
            branches = node.get(kw)
            if isinstance(branches, list):
                for i, branch in enumerate(branches):
                    reason = visit(branch, (*path, f"<{kw}[{i}]>"), False)
                    if reason is not None:
                        return reason
        for kw in _SUBSCHEMA_MAP:
            table = node.get(kw)
            if isinstance(table, dict):
                for key, sub in table.items():
                    reason = visit(sub, (*path, f"<{kw}.{key}>"), False)
                    if reason is not None:
                        return reason
        return None

    reason = visit(schema, (), True)
    return found if reason is None else reason


def header_values(decls: list[ParamHeader], arguments: Any) -> dict[str, str]:
    """``Mcp-Param-*`` headers (lower-case names) for one ``tools/call`` with these ``arguments``."""
    out: dict[str, str] = {}
    for decl in decls:
        node: Any = arguments
        for key in decl.path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            continue  # absent or null: no header
        if isinstance(node, bool):
            text = "true" if node else "false"
        elif isinstance(node, str):
            text = node
        elif isinstance(node, int):
            if abs(node) > _MAX_INT:
                continue
            text = str(node)
        elif isinstance(node, float) and node.is_integer() and abs(node) <= _MAX_INT:
            text = str(int(node))
        else:
            continue  # not a primitive of the declared kind: the server will say so
        out[HEADER_PREFIX + decl.name.lower()] = encode_field_value(text, empty_as_sentinel=True)
    return out


def usable_tools(tools: list[Any]) -> tuple[list[Any], dict[str, list[ParamHeader]], list[tuple[str, str]]]:
    """A 2026-07-28 ``tools/list`` page as a client may use it (T-H26-20): the tools kept, the
    annotations of each kept tool by name, and ``(name, reason)`` of each tool dropped for an
    invalid ``x-mcp-header``. Entries that are not tools with a name are kept as they are."""
    kept: list[Any] = []
    decls: dict[str, list[ParamHeader]] = {}
    dropped: list[tuple[str, str]] = []
    for tool in tools:
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or not isinstance(tool, dict):
            kept.append(tool)
            continue
        scanned = scan_param_headers(tool.get("inputSchema"))
        if isinstance(scanned, str):
            dropped.append((name, scanned))
            continue
        decls[name] = scanned
        kept.append(tool)
    return kept, decls, dropped
