"""HTTP field values of the 2026-07-28 request-metadata headers, both ways (T-H26-16..18): plain
visible ASCII as it is, anything else as ``=?base64?<base64 of the UTF-8>?=``."""

from __future__ import annotations

import base64
import binascii
import re

from anyport._exceptions import HeaderValueError

__all__ = ["SENTINEL_PREFIX", "decode_field_value", "encode_field_value"]

SENTINEL_PREFIX = "=?base64?"
_SENTINEL = re.compile(r"=\?base64\?(?P<payload>[A-Za-z0-9+/=]*)\?=")
_VISIBLE = re.compile(r"[\x20-\x7e]*")
_OWS = " \t"


def encode_field_value(value: str, *, empty_as_sentinel: bool = False) -> str:
    """``value`` as an HTTP field value: as-is when it is plain visible ASCII, else the sentinel.

    Non-ASCII, control characters, leading or trailing whitespace, or text that itself looks
    like ``=?base64?...`` are sent as ``=?base64?<base64 of the UTF-8>?=``. ``empty_as_sentinel``:
    an empty value too (an ``Mcp-Param-*`` argument ``""`` must not look like a missing header).
    """
    plain = (
        (value != "" or not empty_as_sentinel)
        and all(0x20 <= ord(ch) <= 0x7E for ch in value)
        and value == value.strip(_OWS)
        and not value.startswith(SENTINEL_PREFIX)
    )
    if plain:
        return value
    return SENTINEL_PREFIX + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def decode_field_value(raw: str) -> str:
    """A request-metadata header value as text.

    Optional whitespace around the value is dropped (RFC 9110); a plain value must be visible
    ASCII; ``=?base64?...?=`` (exact lowercase markers) carries UTF-8 in canonical base64.
    Raises ``HeaderValueError`` for anything else.
    """
    value = raw.strip(_OWS)
    if not _VISIBLE.fullmatch(value):
        raise HeaderValueError("header value has characters outside visible ASCII")
    m = _SENTINEL.fullmatch(value)
    if m is None:
        if value.startswith(SENTINEL_PREFIX):
            raise HeaderValueError("malformed =?base64?...?= header value")
        return value
    payload = m.group("payload")
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise HeaderValueError("invalid base64 in header value") from exc
    if base64.b64encode(data).decode("ascii") != payload:
        raise HeaderValueError("non-canonical base64 in header value")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeaderValueError("header value is not UTF-8") from exc
