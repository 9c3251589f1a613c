"""The one place where bytes become JSON-RPC messages and back (orjson, bytes in and out)."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from anyport._exceptions import INTERNAL_ERROR, ParseError
from anyport.protocol._messages import is_request_id

__all__ = ["dumps", "dumps_canonical", "dumps_line", "loads"]

_OPTS = orjson.OPT_NON_STR_KEYS

log = logging.getLogger("anyport.protocol")


def dumps(message: Any) -> bytes:
    """Serialise compactly; UTF-8, no raw newlines (JSON escapes them inside strings: T-STDIO-02).

    A response that cannot be serialised (a handler's error ``data`` that is not JSON, or nested
    deeper than the 254 levels orjson writes) becomes an internal error with the same id: the
    request still gets its one answer. Anything else that cannot be serialised raises
    ``TypeError`` in the code that tried to send it.
    """
    try:
        return orjson.dumps(message, option=_OPTS)
    except orjson.JSONEncodeError:
        return orjson.dumps(_sendable(message), option=_OPTS)


def dumps_canonical(message: Any) -> bytes:
    """Sorted keys: the same value always gives the same bytes (digests, bindings)."""
    return orjson.dumps(message, option=_OPTS | orjson.OPT_SORT_KEYS)


def dumps_line(message: Any) -> bytes:
    """One newline-terminated line for stdio framing (T-STDIO-02); responses as in ``dumps``."""
    try:
        return orjson.dumps(message, option=_OPTS | orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return orjson.dumps(_sendable(message), option=_OPTS | orjson.OPT_APPEND_NEWLINE)


def _sendable(message: Any) -> Any:
    """``message`` with each response that cannot be serialised replaced by an internal error."""
    if isinstance(message, list):
        return [_sendable(item) for item in message]
    if isinstance(message, dict) and "id" in message and ("result" in message or "error" in message):
        try:
            orjson.dumps(message, option=_OPTS)
        except orjson.JSONEncodeError:
            id_ = message["id"]
            if not is_request_id(id_):
                id_ = None
            log.error("the response to request %.64s could not be serialised; sent an internal error instead", id_)
            return {"jsonrpc": "2.0", "id": id_, "error": {"code": INTERNAL_ERROR, "message": "Internal error: the response could not be serialised"}}
        return message
    # A request or notification of ours: the caller's bug, raised where it sent it.
    orjson.dumps(message, option=_OPTS)
    return message


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; malformed input or invalid UTF-8 raises ``ParseError`` (-32700, J-02)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"Parse error: {exc}") from exc
