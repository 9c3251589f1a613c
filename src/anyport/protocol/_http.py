"""The rules of MCP over HTTP that do not need a socket: which era a POST belongs to, the HTTP
status of a JSON-RPC answer, the media types, and the 2026-07-28 request-metadata headers
(``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name``, ``Mcp-Param-*``) with their
``=?base64?...?=`` sentinel (DIGEST §15, §21, T-H26-12..21).

Both sides use them: the server to check a request against its body, the client to build the
headers of the requests it sends. Headers are read through a function ``header(name) -> str |
None`` taking the lower-case name as bytes, so any HTTP library fits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import Any

from anyport._exceptions import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_CAPABILITY,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    HeaderValueError,
)
from anyport.protocol._bounded import bounded, brief
from anyport.protocol._fields import SENTINEL_PREFIX, decode_field_value, encode_field_value
from anyport.protocol._messages import meta_version
from anyport.protocol._param_headers import HEADER_PREFIX, ParamHeader, header_values

__all__ = [
    "NAME_FIELDS",
    "Header",
    "Mismatch",
    "accepts_json_and_sse",
    "accepts_sse",
    "is_json_content_type",
    "is_modern_post",
    "metadata_headers",
    "metadata_mismatch",
    "param_mismatch",
    "status_for",
]

#: Reads one request header by lower-case name (repeated fields joined); None when absent.
Header = Callable[[bytes], "str | None"]
#: A request-metadata header that does not repeat the body: (message, error data) of a -32020.
Mismatch = tuple[str, dict[str, Any]]

#: Methods whose ``Mcp-Name`` header mirrors a params field on 2026-07-28 (T-H26-15); the tasks
#: extension adds its methods, keyed by ``taskId`` (SEP-2663 "Streamable HTTP: Routing Headers").
NAME_FIELDS: dict[str, str] = {
    "tools/call": "name", "prompts/get": "name", "resources/read": "uri",
    "tasks/get": "taskId", "tasks/update": "taskId", "tasks/cancel": "taskId",
}


# -- the era of a POST ------------------------------------------------------------------------------


def is_modern_post(version_header: str | None, body: object, modern_versions: Collection[str]) -> bool:
    """A POST is served the 2026-07-28 way when its ``MCP-Protocol-Version`` header names a modern
    revision or its body's ``_meta`` names any version; everything else follows the legacy rules."""
    return version_header in modern_versions or meta_version(body) is not None


# -- HTTP status of an answer (DIGEST §15) --------------------------------------------------------

#: Error codes a 2026-07-28 endpoint answers with HTTP 400 (T-H26-13, T-H26-17).
_MODERN_400 = frozenset(
    {HEADER_MISMATCH, MISSING_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION, INVALID_PARAMS, PARSE_ERROR, INVALID_REQUEST}
)


def status_for(message: dict[str, Any], *, modern: bool) -> int:
    """The HTTP status of a single JSON answer."""
    error = message.get("error")
    if not isinstance(error, dict):
        return 200
    code = error.get("code")
    if modern:
        if code == METHOD_NOT_FOUND:
            return 404  # T-H26-13: the body tells it apart from "no such endpoint"
        return 400 if code in _MODERN_400 else 200
    # Legacy: JSON-RPC errors ride on 200; a message that could not even be read is an HTTP 400 (T-HTTP-09).
    return 400 if message.get("id") is None else 200


# -- media types (T-HTTP-06, T-HTTP-20, T-H26-03) -------------------------------------------------


@functools.lru_cache(maxsize=128)
def _media_types(value: str) -> tuple[str, ...]:
    # Clients send the same few Accept / Content-Type values on every request: parse each once.
    return tuple(part.split(";", 1)[0].strip().lower() for part in value.split(","))


def accepts_json_and_sse(value: str | None) -> bool:
    """The client accepts both response shapes of a POST; wildcards count."""
    if value is None:
        return False
    types = set(_media_types(value))
    json_ok = bool(types & {"application/json", "application/*", "*/*"})
    sse_ok = bool(types & {"text/event-stream", "text/*", "*/*"})
    return json_ok and sse_ok


def accepts_sse(value: str | None) -> bool:
    """A GET for an event stream: no Accept at all, or one that allows ``text/event-stream``."""
    if value is None:
        return True
    return bool(set(_media_types(value)) & {"text/event-stream", "text/*", "*/*"})


def is_json_content_type(value: str | None) -> bool:
    return value is not None and _media_types(value)[0] == "application/json"


# -- the request-metadata headers -------------------------------------------------------------------


def metadata_headers(message: dict[str, Any], decls: list[ParamHeader] | None = None) -> dict[str, str]:
    """What a client sends with a 2026-07-28 request (lower-case names): ``MCP-Protocol-Version``
    equal to its ``_meta`` version, ``Mcp-Method``, ``Mcp-Name`` for the methods of ``NAME_FIELDS``
    (T-H26-12..15) and, for a ``tools/call`` of a tool with ``decls``, ``Mcp-Param-*`` (T-H26-19)."""
    version = meta_version(message)
    headers = {"mcp-protocol-version": encode_field_value(version if isinstance(version, str) else "")}
    method = message.get("method")
    if isinstance(method, str):
        headers["mcp-method"] = encode_field_value(method)
        field = NAME_FIELDS.get(method)
        params = message.get("params")
        value = params.get(field) if field is not None and isinstance(params, dict) else None
        if isinstance(value, str):
            headers["mcp-name"] = encode_field_value(value)
        if decls and isinstance(params, dict):
            headers.update(header_values(decls, params.get("arguments")))
    return headers


def metadata_mismatch(header: Header, body: dict[str, Any], version: str | None) -> Mismatch | None:
    """T-H26-12, T-H26-15..18: the request-metadata headers must repeat the body (else -32020)."""
    wanted = meta_version(body)
    if version is None:
        return "Header mismatch: MCP-Protocol-Version header is required", {"header": "MCP-Protocol-Version", "expected": bounded(wanted)}
    if version != wanted:
        return (
            f"Header mismatch: MCP-Protocol-Version {brief(version)} differs from _meta protocolVersion {brief(wanted)}",
            {"header": "MCP-Protocol-Version", "expected": bounded(wanted), "actual": bounded(version)},
        )
    method = body.get("method")
    checks: list[tuple[bytes, str, object]] = [(b"mcp-method", "Mcp-Method", method)]
    field = NAME_FIELDS.get(method) if isinstance(method, str) else None
    if field is not None:
        params = body.get("params")
        checks.append((b"mcp-name", "Mcp-Name", params.get(field) if isinstance(params, dict) else None))
    for key, name, expected in checks:
        raw = header(key)
        if raw is None:
            return f"Header mismatch: {name} header is required", {"header": name, "expected": bounded(expected)}
        try:
            actual = decode_field_value(raw)
        except HeaderValueError as exc:
            return f"Header mismatch: invalid {name} header: {exc}", {"header": name}
        if actual != expected:
            return (
                f"Header mismatch: {name} {brief(actual)} differs from the body's {brief(expected)}",
                {"header": name, "expected": bounded(expected), "actual": bounded(actual)},
            )
    return None


def param_mismatch(header: Header, arguments: object, decls: list[ParamHeader]) -> Mismatch | None:
    """T-H26-21: each ``x-mcp-header`` argument of a ``tools/call`` must be mirrored, equal, in its
    ``Mcp-Param-<Name>`` header (decoded first, T-H26-16/17; integers compared as numbers)."""
    for decl in decls:
        name = "Mcp-Param-" + decl.name
        key = HEADER_PREFIX + decl.name.lower()
        wanted = header_values([decl], arguments).get(key)
        raw = header(key.encode("latin-1"))
        if raw is None:
            if wanted is not None:
                return f"Header mismatch: {name} header is required", {"header": name}
            continue
        try:
            actual = decode_field_value(raw)
        except HeaderValueError as exc:
            literal = raw.strip(" \t")
            if not (literal.startswith(SENTINEL_PREFIX) and literal.isascii() and literal.isprintable()):
                return f"Header mismatch: invalid {name} header: {exc}", {"header": name}
            actual = literal  # not a whole sentinel: a plain value that merely starts like one
        expected = decode_field_value(wanted) if wanted is not None else None
        same = actual == expected
        if not same and decl.type == "integer" and expected is not None:
            try:
                same = int(actual) == int(expected)
            except ValueError:
                same = False
        if not same:
            return f"Header mismatch: {name} {brief(actual)} differs from the argument {brief(expected)}", {"header": name}
    return None

