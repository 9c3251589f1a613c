"""Turning what went wrong in a phase into a ``ProbeError`` with a stable code and exit code."""

from __future__ import annotations

import contextvars
import logging
import ssl

import anyport._exceptions as exc_mod
from anyport._exceptions import (
    BrokenConnectionError,
    JSONRPCError,
    LocalProtocolError,
    RemoteProtocolError,
    RequestTimeoutError,
    ServerExitedError,
    TransportError,
    UnsupportedProtocolVersionError,
)
from anyport.probe._result import ProbeError

__all__ = ["classify", "malformed_counter"]

#: The malformed messages the client ignored during the current probe (so a server that only
#: sends garbage fails as a protocol error, not as a timeout).
_MALFORMED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("anyport_probe_malformed", default=None)


class _MalformedHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        seen = _MALFORMED.get()
        if seen is not None and len(seen) < 16 and record.getMessage().startswith("ignoring a"):
            seen.append(record.getMessage()[:200])


_HANDLER = _MalformedHandler(logging.WARNING)


def malformed_counter() -> list[str]:
    """Start counting, for the current task and the tasks it starts, the messages the client ignored."""
    for name in ("anyport.client", "anyport.http.client", "anyport.http.sse_client"):
        logger = logging.getLogger(name)
        if _HANDLER not in logger.handlers:
            logger.addHandler(_HANDLER)
    seen: list[str] = []
    _MALFORMED.set(seen)
    return seen


#: How the HTTP client streams word the JSON-RPC errors they make up when the exchange broke
#: (they reach us as errors "from the server"; anyport.transports.http.client ``_Post.run``).
_DROPPED = ("the HTTP exchange with", "the server ended the response stream", "the response stream broke")


def _http_status(exc: JSONRPCError) -> int | None:
    data = exc.data
    status = data.get("httpStatus") if isinstance(data, dict) else None
    return status if isinstance(status, int) else None


def classify(exc: BaseException, phase: str, *, timeout: float, url: str | None = None) -> ProbeError:
    """The ``ProbeError`` for ``exc`` raised in ``phase`` (``timeout``: the phase's limit, for the message)."""
    if isinstance(exc, ProbeError):
        if exc.phase is None:
            exc.phase = phase
        return exc
    auth_error = getattr(exc_mod, "AuthError", None)  # anyport.oauth's errors, where that part is present
    if isinstance(auth_error, type) and isinstance(exc, auth_error):
        return ProbeError("auth_required", str(exc), phase=phase, status=401, url=url)
    if isinstance(exc, RequestTimeoutError | TimeoutError):
        seen = _MALFORMED.get()
        if seen:
            return ProbeError("protocol_error", f"no valid answer in {timeout:g} s; the server sent garbage: {seen[0]}", phase=phase)
        return ProbeError("timeout", f"no answer in {timeout:g} s", phase=phase, url=url)
    if isinstance(exc, ServerExitedError):
        first = str(exc).splitlines()[0].removesuffix("; last stderr lines:")
        detail: dict[str, object] = {"returncode": exc.returncode}
        if exc.stderr_tail:
            detail["stderr_tail"] = exc.stderr_tail[-1000:]
        return ProbeError("server_exited", first, phase=phase, detail=detail)
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ProbeError("tls_error", f"TLS failed: {exc}", phase=phase, url=url)
    if isinstance(exc, BrokenConnectionError):
        text = str(exc)
        code = "unreachable" if text.startswith(("cannot connect", "cannot start")) else "connection_lost"
        return ProbeError(code, text.splitlines()[0], phase=phase, url=url)
    if isinstance(exc, TransportError):
        return ProbeError("connection_lost", str(exc).splitlines()[0] or type(exc).__name__, phase=phase, url=url)
    if isinstance(exc, UnsupportedProtocolVersionError):
        return ProbeError(
            "version_mismatch", exc.message, phase=phase, detail={"supported": exc.supported, "jsonrpc_code": exc.code}
        )
    if isinstance(exc, LocalProtocolError):
        code = "version_mismatch" if "version" in exc.message else "protocol_error"
        return ProbeError(code, exc.message, phase=phase)
    if isinstance(exc, JSONRPCError):
        if exc.message.startswith(_DROPPED):  # made up by the HTTP client stream for a broken exchange
            return ProbeError("connection_lost", exc.message.splitlines()[0], phase=phase, url=url)
        status = _http_status(exc)
        if status in (401, 403):
            return ProbeError("auth_required", f"HTTP {status}: authentication required", phase=phase, status=status, url=url)
        if status is not None and status >= 500:
            return ProbeError("unreachable", exc.message.splitlines()[0], phase=phase, status=status, url=url)
        seen = _MALFORMED.get()
        message = exc.message.splitlines()[0] if exc.message else type(exc).__name__
        if seen and not exc.remote:
            message = f"{message}; the server sent garbage: {seen[0]}"
        rpc = {"jsonrpc_code": exc.code} if exc.remote or isinstance(exc, RemoteProtocolError) else {}
        return ProbeError("protocol_error", message, phase=phase, status=status, url=url, detail=rpc)
    if isinstance(exc, OSError):
        return ProbeError("unreachable", f"{type(exc).__name__}: {exc}", phase=phase, url=url)
    return ProbeError("unexpected", f"{type(exc).__name__}: {exc}", phase=phase)
