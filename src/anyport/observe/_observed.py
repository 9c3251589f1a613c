"""``Observed``: an application, measured. Metrics, spans and a log line per request, around any
``anyport.runtime.Application`` (a ``Server``), without the server or a transport knowing.

The runtimes and transports call ``reply`` / ``reply_now`` for every request the protocol core
admitted; ``Observed`` times them and classifies the answer. What it adds per request with all three
off is one attribute lookup; each one on is measured in ``bench/RESULTS.md`` ("Observability").
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from anyport.observe._access import AccessLog
from anyport.observe._metrics import OTHER, MCPMetrics
from anyport.runtime import current_principal, serve_stream

if TYPE_CHECKING:
    from anyport.observe._tracing import Tracing
    from anyport.protocol import IncomingRequest, ParamHeader, Revision, ServerConnection
    from anyport.runtime import Application, MessageStream, NotificationHub, Outlet

__all__ = ["Observed", "outcome"]

log = logging.getLogger("anyport.observe")


def outcome(answer: dict[str, Any]) -> tuple[str, str]:
    """``(error_type, description)`` of a JSON-RPC response: the error code as a string and its
    message, ``tool_error`` for a tool result with ``isError``, or ``("", "")`` for a success."""
    error = answer.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        return str(error.get("code", OTHER)), message if isinstance(message, str) else ""
    result = answer.get("result")
    if isinstance(result, dict) and result.get("isError") is True:
        return "tool_error", ""
    return "", ""


class Observed:
    """``app``, with ``metrics`` (an ``MCPMetrics``), ``tracing`` (a ``Tracing``) and ``access`` (an
    ``AccessLog``), each optional. ``transport``: ``tcp`` (HTTP) or ``pipe`` (stdio, in-process),
    the conventions' ``network.transport``."""

    def __init__(
        self, app: Application, *, metrics: MCPMetrics | None = None, tracing: Tracing | None = None,
        access: AccessLog | None = None, transport: str = "tcp",
    ) -> None:
        if isinstance(app, Observed):
            raise TypeError("this application is observed already")
        self.app = app
        self.metrics = metrics
        self.tracing = tracing
        self.access = access
        self.transport = transport
        self._tools: dict[str, str] = {}
        self.legacy_versions = app.legacy_versions
        self.modern_versions = app.modern_versions

    # -- the Application seam, delegated --------------------------------------------------------------

    @property
    def hub(self) -> NotificationHub:
        return self.app.hub

    def open_connection(self, *, assume_initialized: Revision | None = None) -> ServerConnection:
        return self.app.open_connection(assume_initialized=assume_initialized)

    def inline_safe(self, req: IncomingRequest) -> bool:
        return self.app.inline_safe(req)

    def required_scopes(self, method: str, params: dict[str, Any]) -> tuple[str, ...]:
        return self.app.required_scopes(method, params)

    def param_headers(self, name: str) -> list[ParamHeader] | str | None:
        return self.app.param_headers(name)

    def client_notification(self, session_id: str | None, method: str, params: dict[str, Any]) -> None:
        self.app.client_notification(session_id, method, params)

    async def serve(self, stream: MessageStream) -> None:
        """Serve one connection (stdio, a memory pair) observed; it counts as one session."""
        started = time.perf_counter()
        try:
            await serve_stream(self, stream)
        finally:
            if self.metrics is not None:
                self.metrics.session_ended(time.perf_counter() - started, "", self.transport)

    def run(self, transport: str = "stdio", **kw: Any) -> None:
        """``Server.run``, observed (stdio's ``network.transport`` is ``pipe``)."""
        from anyport._launch import run

        if transport == "stdio":
            self.transport = "pipe"
        run(self, transport, **kw)

    def __getattr__(self, name: str) -> Any:
        # Anything else a transport or a test reads of the server (its name, its state keys, ...).
        return getattr(self.app, name)

    # -- measured ------------------------------------------------------------------------------------

    async def reply(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        started = time.perf_counter()
        if self.tracing is None:
            answer = await self.app.reply(req, outlet)
            self._record(req, outlet, answer, time.perf_counter() - started, None)
            return answer
        names = self._names(req)  # once: the span's name and the metric's labels
        with self.tracing.span(req, names, getattr(outlet, "session_id", None)) as span:
            answer = await self.app.reply(req, outlet)
            trace_id = self.tracing.finish(span, req, answer)
        self._record(req, outlet, answer, time.perf_counter() - started, trace_id, names)
        return answer

    def reply_now(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        started = time.perf_counter()
        if self.tracing is None:
            answer = self.app.reply_now(req, outlet)
            self._record(req, outlet, answer, time.perf_counter() - started, None)
            return answer
        names = self._names(req)  # once: the span's name and the metric's labels
        with self.tracing.span(req, names, getattr(outlet, "session_id", None)) as span:
            answer = self.app.reply_now(req, outlet)
            trace_id = self.tracing.finish(span, req, answer)
        self._record(req, outlet, answer, time.perf_counter() - started, trace_id, names)
        return answer

    def _names(self, req: IncomingRequest) -> tuple[str, str]:
        """(tool, prompt) of a request, as labels: only names the server registered (a client that
        calls made-up names cannot grow the label set), ``_OTHER`` for the rest, "" when none."""
        method = req.method
        if method == "tools/call":
            name = req.params.get("name")
            if not isinstance(name, str):
                return OTHER, ""
            label = self._tools.get(name)
            if label is None:
                label = name if self.app.param_headers(name) is not None else OTHER
                if label is not OTHER and len(self._tools) < 10_000:
                    self._tools[name] = label  # only registered names: a client cannot grow this
            return label, ""
        if method == "prompts/get":
            name = req.params.get("name")
            prompts = getattr(self.app, "_prompts", None)
            known = isinstance(name, str) and isinstance(prompts, dict) and name in prompts
            return "", name if known and isinstance(name, str) else OTHER
        return "", ""

    def _record(
        self, req: IncomingRequest, outlet: Outlet, answer: dict[str, Any], seconds: float, trace_id: str | None,
        names: tuple[str, str] | None = None,
    ) -> None:
        try:
            error, _ = outcome(answer)
            tool, prompt = names if names is not None else self._names(req)
            if self.metrics is not None:
                self.metrics.observe(seconds, req.method, tool, prompt, error, req.revision.version, self.transport)
            if self.access is not None:
                principal = current_principal()
                self.access.request(
                    req.method, tool or prompt, error, seconds, getattr(outlet, "session_id", None),
                    getattr(principal, "subject", None), trace_id, req.revision.version,
                )
        except Exception:  # observing must never cost a client its answer
            log.exception("recording a request failed")
