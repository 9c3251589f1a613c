"""One line per request (``anyport serve --access-log``), JSON or human, and the CLI's logging.

``AccessLog`` writes one line per request the application answered: a JSON object (``fmt="json"``)
with ``ts``, ``method``, ``name`` (tool or prompt), ``status`` (``ok``, a JSON-RPC error code,
``tool_error``), ``duration_ms``, ``session`` (the first 8 characters of a legacy session id),
``principal`` (the subject), ``trace_id`` and ``protocol_version``, or the same as a short human
line (``fmt="text"``). Never arguments, results or tokens.

It does not go through ``logging``: a ``LogRecord``, a handler lock and a write per line cost ~17 µs
a request (measured, ``bench/observe_cost.py``), 40 % of a stateless JSON request's CPU. Lines are
encoded with orjson into a buffer that is written out ``flush_interval`` seconds after its first
line (or once it holds 64 KiB), and at exit: cheap enough to leave on. uvicorn's own access log
stays off (it cost ~40 % of the throughput at INFO, issue 14).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
from typing import Any, BinaryIO

import orjson

__all__ = ["AccessLog", "JSONFormatter", "configure_logging"]


class AccessLog:
    """Request lines to ``stream`` (default: standard error; never standard output, which a stdio
    server keeps for protocol messages)."""

    def __init__(self, stream: BinaryIO | None = None, *, fmt: str = "json", flush_interval: float = 0.5) -> None:
        if fmt not in ("json", "text"):
            raise ValueError(f"access log format is json or text, not {fmt!r}")
        self.stream = stream if stream is not None else sys.stderr.buffer
        self.json = fmt == "json"
        self.flush_interval = flush_interval
        self.enabled = True
        self._buffer: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._second, self._stamp = -1, ""  # the formatted second of the last line, reused within it
        atexit.register(self.flush)

    def request(
        self, method: str, name: str, error: str, seconds: float, session: str | None, principal: str | None,
        trace_id: str | None, version: str,
    ) -> None:
        if not self.enabled:
            return
        now = time.time()
        status = error or "ok"
        ms = round(seconds * 1000, 3)
        if self.json:
            second = int(now)
            if second != self._second:
                self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            fields: dict[str, Any] = {
                "ts": f"{self._stamp}.{int(now * 1000) % 1000:03d}Z",
                "method": method, "status": status, "duration_ms": ms, "protocol_version": version,
            }
            if name:
                fields["name"] = name
            if session:
                fields["session"] = session[:8]
            if principal:
                fields["principal"] = principal
            if trace_id:
                fields["trace_id"] = trace_id
            line = orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)
        else:
            text = time.strftime("%H:%M:%S", time.localtime(now)) + f" {method}{' ' + name if name else ''} {status} {ms} ms"
            if session:
                text += f" session={session[:8]}"
            if principal:
                text += f" principal={principal}"
            line = (text + "\n").encode("utf-8", "backslashreplace")
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= 65536:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self.flush)
            except RuntimeError:  # no loop (a synchronous caller): write now
                self.flush()

    def flush(self) -> None:
        """Write out what is buffered."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # standard error closed: nothing to tell


class JSONFormatter(logging.Formatter):
    """Every record as one JSON object per line: ``ts``, ``level``, ``logger``, ``message``, and an
    exception as ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        out["message"] = record.getMessage()
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(*, level: str = "warning", fmt: str = "text") -> None:
    """The CLI's logging: ``anyport`` loggers at ``level`` on stderr (never stdout: a stdio server's
    stdout carries only protocol messages), as human lines (``text``) or JSON lines (``json``)."""
    if fmt not in ("json", "text"):
        raise ValueError(f"log format is json or text, not {fmt!r}")
    use_json = fmt == "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if use_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("anyport")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
