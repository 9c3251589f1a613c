"""Client values repeated in errors, kept small and always serialisable.

An error often names what the peer sent (``"requested": <protocolVersion>``, ``Unknown tool:
'x'``). The peer's value can be a megabyte string or an array nested a thousand deep: orjson reads
1,024 levels but writes only 254, and ``repr`` of a thousand levels raises ``RecursionError``. So an
error never repeats a client value as it is, only ``bounded(value)`` (in ``data``) or
``brief(value)`` (in ``message``):

- strings are cut to ``chars`` characters and marked with ``…``;
- lists and objects keep their first ``items`` members, then one marker (``"… 5 more"``);
- below ``depth`` levels a container becomes ``"[…]"`` or ``"{…}"``;
- over the whole value at most ``budget`` members and strings are kept;
- anything that is not JSON (a float NaN, a tuple, an object) becomes a short description.

Pure functions, no recursion deeper than ``depth``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["bounded", "brief", "clip"]

#: Limits for ``data``: enough to show what was sent, never more than a few KiB.
MAX_DEPTH = 4
MAX_ITEMS = 16
MAX_CHARS = 256
MAX_BUDGET = 64

#: ``message`` texts are one line: at most this many characters of the client's value.
BRIEF_CHARS = 120


def bounded(
    value: Any, *, depth: int = MAX_DEPTH, items: int = MAX_ITEMS, chars: int = MAX_CHARS, budget: int = MAX_BUDGET
) -> Any:
    """A JSON-serialisable copy of ``value`` of bounded depth and size (see the module docs)."""
    left = [budget]
    return _copy(value, depth, items, chars, left)


def _copy(value: Any, depth: int, items: int, chars: int, left: list[int]) -> Any:
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else repr(value)
    if kind is str:
        left[0] -= 1
        return value if len(value) <= chars else value[:chars] + "…"
    if kind is list or kind is dict:
        if depth <= 0 or left[0] <= 0:
            return "[…]" if kind is list else "{…}"
        left[0] -= 1
        if kind is list:
            out_list: list[Any] = []
            for member in value:
                if len(out_list) >= items or left[0] <= 0:
                    out_list.append(f"… {len(value) - len(out_list)} more")
                    break
                out_list.append(_copy(member, depth - 1, items, chars, left))
            return out_list
        out_dict: dict[str, Any] = {}
        for n, (key, member) in enumerate(value.items()):
            if n >= items or left[0] <= 0:
                out_dict["…"] = f"{len(value) - n} more"
                break
            name = key if isinstance(key, str) else str(key)
            out_dict[name[:chars]] = _copy(member, depth - 1, items, chars, left)
        return out_dict
    return f"<{kind.__name__}>"


def brief(value: Any) -> str:
    """A one-line ``repr``-style text of ``value`` for an error message, at most ~``BRIEF_CHARS`` long."""
    text = repr(bounded(value, depth=3, items=4, chars=BRIEF_CHARS, budget=16))
    return text if len(text) <= BRIEF_CHARS else text[: BRIEF_CHARS - 1] + "…"


def clip(text: str, limit: int = BRIEF_CHARS) -> str:
    """``text`` (a method name, say) cut to ``limit`` characters for a message, without quotes."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
