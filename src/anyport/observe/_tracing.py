"""OpenTelemetry spans after the MCP semantic conventions, through the OTel API alone
(``pip install 'anyport[otel]'``; with no SDK configured the API's tracer does nothing).

Server: one SERVER span per request the application answers, named ``{mcp.method.name} {target}``
(the tool or prompt), its parent the context the client put in ``params._meta`` (``traceparent``,
``tracestate``, ``baggage``: SEP-414), linked to the ambient context (an HTTP server span, when an
ASGI instrumentation made one): the MCP and HTTP traces stay independent, as the conventions ask.
Status ERROR iff the answer is an error (``error.type``), with the JSON-RPC message.
Client: ``inject_meta`` adds the current context to a request's ``_meta``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anyport.protocol import IncomingRequest

__all__ = ["Tracing", "inject_meta"]


def _otel() -> tuple[Any, Any]:
    try:
        from opentelemetry import propagate, trace
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("tracing needs the OpenTelemetry API: pip install 'anyport[otel]'") from exc
    return trace, propagate


class Tracing:
    """Spans for ``Observed``; ``tracer_provider``: the OTel provider (default: the global one)."""

    def __init__(self, tracer_provider: Any = None) -> None:
        trace, propagate = _otel()
        from anyport import __version__

        self._trace = trace
        self._propagate = propagate
        self.tracer = trace.get_tracer("anyport", __version__, tracer_provider=tracer_provider)

    @contextmanager
    def span(self, req: IncomingRequest, names: tuple[str, str], session: str | None = None) -> Iterator[Any]:
        trace = self._trace
        tool, prompt = names
        target = tool or prompt
        meta = req.params.get("_meta")
        parent = self._propagate.extract(meta) if isinstance(meta, dict) else None
        ambient = trace.get_current_span().get_span_context()
        links = [trace.Link(ambient)] if ambient.is_valid else None
        attributes: dict[str, Any] = {
            "mcp.method.name": req.method, "mcp.protocol.version": req.revision.version, "jsonrpc.request.id": str(req.id),
        }
        if tool:
            attributes["gen_ai.tool.name"] = tool
            attributes["gen_ai.operation.name"] = "execute_tool"
        if prompt:
            attributes["gen_ai.prompt.name"] = prompt
        if session:
            attributes["mcp.session.id"] = session
        with self.tracer.start_as_current_span(
            f"{req.method} {target}" if target else req.method, context=parent, kind=trace.SpanKind.SERVER,
            attributes=attributes, links=links,
        ) as span:
            yield span

    def finish(self, span: Any, req: IncomingRequest, answer: dict[str, Any]) -> str | None:
        """Set the outcome on ``span``; the trace id (32 hex digits) when the span is recorded."""
        from anyport.observe._observed import outcome

        error, description = outcome(answer)
        if error:
            span.set_attribute("error.type", error)
            if error != "tool_error":
                span.set_attribute("rpc.response.status_code", error)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, description or None))
        context = span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None


_PROPAGATION: tuple[Any, Any] | bool | None = False  # not looked up yet; None: no OTel API here


def inject_meta(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the current OTel context in its ``_meta`` (SEP-414), for an outgoing request;
    ``params`` itself when there is no active span, or no OTel API (looked up once)."""
    global _PROPAGATION
    if _PROPAGATION is False:
        try:
            from opentelemetry import propagate, trace
        except ImportError:
            _PROPAGATION = None
        else:
            _PROPAGATION = (trace, propagate)
    if _PROPAGATION is None or _PROPAGATION is True:
        return params
    trace, propagate = _PROPAGATION
    if not trace.get_current_span().get_span_context().is_valid:
        return params
    meta = dict(params.get("_meta") or {})
    propagate.inject(meta)
    return {**params, "_meta": meta}
