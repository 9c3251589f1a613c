"""Observability: metrics after the OpenTelemetry MCP conventions, spans, a log line per request.

    from anyport.observe import MCPMetrics, Observed, Tracing, AccessLog
    metrics = MCPMetrics()
    app = create_app(Observed(server, metrics=metrics, tracing=Tracing(), access=AccessLog()))

``anyport serve --metrics-port``, ``--otel`` and ``--access-log`` do the same from the command line
(``docs/operations.md``). Each part is optional and costs nothing when off; prometheus-client
(``anyport[metrics]``) and the OpenTelemetry API (``anyport[otel]``) load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anyport.observe._access import AccessLog, JSONFormatter, configure_logging
    from anyport.observe._metrics import BUCKETS, OTHER, MCPMetrics
    from anyport.observe._observed import Observed, outcome
    from anyport.observe._tracing import Tracing, inject_meta

__all__ = [
    "BUCKETS", "OTHER", "AccessLog", "JSONFormatter", "MCPMetrics", "Observed", "Tracing", "configure_logging",
    "inject_meta", "outcome",
]

#: Loaded on first use: the client imports ``inject_meta`` on every start, and nothing else of this.
_WHERE = {
    "AccessLog": "_access", "JSONFormatter": "_access", "configure_logging": "_access", "BUCKETS": "_metrics",
    "OTHER": "_metrics", "MCPMetrics": "_metrics", "Observed": "_observed", "outcome": "_observed",
    "Tracing": "_tracing", "inject_meta": "_tracing",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'anyport.observe' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"anyport.observe.{module}"), name)
