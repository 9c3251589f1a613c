"""The one place where bytes become JSON-RPC messages and back (orjson, bytes in and out)."""

from __future__ import annotations

from typing import Any

import orjson

from anyport._exceptions import ParseError

__all__ = ["dumps", "dumps_canonical", "dumps_line", "loads"]

_OPTS = orjson.OPT_NON_STR_KEYS


def dumps(message: Any) -> bytes:
    """Serialise compactly; UTF-8, no raw newlines (JSON escapes them inside strings: T-STDIO-02)."""
    return orjson.dumps(message, option=_OPTS)


def dumps_canonical(message: Any) -> bytes:
    """Sorted keys: the same value always gives the same bytes (digests, bindings)."""
    return orjson.dumps(message, option=_OPTS | orjson.OPT_SORT_KEYS)


def dumps_line(message: Any) -> bytes:
    """One newline-terminated line for stdio framing (T-STDIO-02)."""
    return orjson.dumps(message, option=_OPTS | orjson.OPT_APPEND_NEWLINE)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; malformed input or invalid UTF-8 raises ``ParseError`` (-32700, J-02)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"Parse error: {exc}") from exc
