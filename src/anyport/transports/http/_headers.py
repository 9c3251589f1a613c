"""HTTP header rules of the Streamable HTTP endpoint: Host/Origin allow-lists, Accept and
Content-Type, and the 2026-07-28 request-metadata headers with their base64 sentinel."""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_LOCAL_HOSTS",
    "HeaderValueError",
    "HostAllowList",
    "OriginAllowList",
    "accepts_json_and_sse",
    "accepts_sse",
    "decode_field_value",
    "is_json_content_type",
    "split_host",
]

#: Hosts a local server answers by default (DNS-rebinding defence, T-HTTP-02).
DEFAULT_LOCAL_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")

_SENTINEL = re.compile(r"=\?base64\?(?P<payload>[A-Za-z0-9+/=]*)\?=")
_VISIBLE = re.compile(r"[\x20-\x7e]*")
_OWS = " \t"


class HeaderValueError(ValueError):
    """A header value that cannot be used: invalid characters or a malformed sentinel."""


def split_host(value: str) -> tuple[str, str | None]:
    """``host[:port]`` -> (lower-cased host, port or None); IPv6 literals keep their brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        host, rest = value[: end + 1], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return value, None  # "[::1].evil.example": not a bracketed literal, matches no entry
        return host, rest[1:] if rest else None
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        return host, port
    return value, None


class HostAllowList:
    """Allowed ``Host`` values: entries ``name`` (any port), ``name:port``, or ``*`` (anything)."""

    def __init__(self, hosts: Iterable[str] | None) -> None:
        entries = list(DEFAULT_LOCAL_HOSTS if hosts is None else hosts)
        self.any = "*" in entries
        self._any_port: set[str] = set()
        self._exact: set[tuple[str, str]] = set()
        for entry in entries:
            if entry == "*":
                continue
            host, port = split_host(entry)
            if port is None:
                self._any_port.add(host)
            else:
                self._exact.add((host, port))

    def allows(self, value: str | None) -> bool:
        if self.any:
            return True
        if not value:
            return False
        host, port = split_host(value)
        return host in self._any_port or (port is not None and (host, port) in self._exact)


class OriginAllowList:
    """Allowed ``Origin`` values: exact ``scheme://host[:port]`` entries, or ``*``.

    Without a configured list, origins of the local hosts (any scheme and port) are allowed.
    """

    def __init__(self, origins: Iterable[str] | None) -> None:
        self._default = origins is None
        entries = [] if origins is None else [o.strip().rstrip("/").lower() for o in origins]
        self.any = "*" in entries
        self._origins = set(entries)

    def allows(self, origin: str) -> bool:
        if self.any:
            return True
        value = origin.strip().rstrip("/").lower()
        if not self._default:
            return value in self._origins
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or host is None:
            return False
        if split_host(parts.netloc.rpartition("@")[2])[0] != (f"[{host}]" if ":" in host else host):
            return False  # urlsplit reads "[::1].evil.example" as ::1: the authority must be the host alone
        if ":" in host:
            host = f"[{host}]"
        return host in DEFAULT_LOCAL_HOSTS


@functools.lru_cache(maxsize=128)
def _media_types(value: str) -> tuple[str, ...]:
    # Clients send the same few Accept / Content-Type values on every request: parse each once.
    return tuple(part.split(";", 1)[0].strip().lower() for part in value.split(","))


def accepts_json_and_sse(value: str | None) -> bool:
    """The client accepts both response shapes (T-HTTP-06, T-H26-03); wildcards count."""
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


def decode_field_value(raw: str) -> str:
    """A request-metadata header value as text (T-H26-16..18).

    Optional whitespace around the value is dropped (RFC 9110); a plain value must be visible
    ASCII; ``=?base64?...?=`` (exact lowercase markers) carries UTF-8 in canonical base64.
    """
    value = raw.strip(_OWS)
    if not _VISIBLE.fullmatch(value):
        raise HeaderValueError("header value has characters outside visible ASCII")
    m = _SENTINEL.fullmatch(value)
    if m is None:
        if value.startswith("=?base64?"):
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
