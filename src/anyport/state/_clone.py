"""A private copy of JSON data, as a shared store would hand it back."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["clone"]


def clone(value: Any) -> Any:
    """A deep copy made by a JSON round trip: ~10x cheaper than ``copy.deepcopy`` for messages, and
    it fails, as a Redis-backed store would, on anything that is not JSON."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
