"""Which hosts and origins this deployment answers (DNS-rebinding defence, T-HTTP-01/02): the
allow-lists the operator configures. The protocol's own header rules are in ``anyport.protocol``."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["DEFAULT_LOCAL_HOSTS", "HostAllowList", "OriginAllowList", "split_host"]

#: Hosts a local server answers by default (DNS-rebinding defence, T-HTTP-02).
DEFAULT_LOCAL_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")

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
