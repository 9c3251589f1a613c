"""The canonical hash of a tool list: the same tools give the same hash, whatever the server,
the era, the transport or the order in which the tools came.

Each tool is reduced to the fields that change what a model sees or may send: ``name``, ``title``,
``description``, ``inputSchema``, ``outputSchema`` and ``annotations`` (``_meta``, icons and any
other field are left out, so per-request metadata does not look like drift). The tools are
sorted by name, encoded as JSON with sorted keys, no whitespace and UTF-8 (not ``\\u`` escapes),
and hashed with SHA-256; the hash is given in lower-case hex.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

__all__ = ["HASHED_FIELDS", "canonical_tools", "tools_hash"]

HASHED_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")


def canonical_tools(tools: Iterable[Mapping[str, Any]]) -> bytes:
    """The canonical JSON bytes of ``tools`` (raw ``tools/list`` entries)."""
    reduced = [{k: t[k] for k in HASHED_FIELDS if t.get(k) is not None} for t in tools]
    reduced.sort(key=lambda t: (str(t.get("name", "")), orjson.dumps(t, option=orjson.OPT_SORT_KEYS)))
    return orjson.dumps(reduced, option=orjson.OPT_SORT_KEYS)


def tools_hash(tools: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 (hex) of ``canonical_tools(tools)``."""
    return hashlib.sha256(canonical_tools(tools)).hexdigest()
