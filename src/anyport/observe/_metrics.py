"""Prometheus metrics named after the OpenTelemetry MCP semantic conventions.

The conventions (open-telemetry/semantic-conventions-genai, ``docs/gen-ai/mcp.md``, status:
development) define ``mcp.server.operation.duration`` and ``mcp.server.session.duration``,
histograms in seconds with advisory buckets 0.01 ... 300, and their attributes. In Prometheus' names
(dots become underscores, the unit a suffix, as grafana/mcp-grafana exports them):

``mcp_server_operation_duration_seconds``
    one observation per request the application answered; labels ``mcp_method_name``,
    ``gen_ai_tool_name`` / ``gen_ai_prompt_name`` (only names the server registered: a client
    cannot grow the label set), ``error_type`` (the JSON-RPC code, ``tool_error`` for a tool result
    with ``isError``, empty on success), ``mcp_protocol_version``, ``network_transport`` (``tcp``
    for HTTP, ``pipe`` for stdio and in-process).
``mcp_server_session_duration_seconds``
    one observation per legacy session that ended (DELETE, idle expiry, stdio EOF).
``anyport_rejected_requests_total``
    requests refused before they reached the application, by ``reason`` (``origin``, ``auth``,
    ``rate_limit``, ``version``, ``body``, ...).
``anyport_http_requests_total``
    HTTP requests by ``endpoint``: ``streamable_http``, ``sse`` (the 2024-11-05 stream) and
    ``sse_messages`` (its POSTs): which clients still use the old transport.
``anyport_live_sessions``, ``anyport_open_streams``
    gauges read when scraped, from whatever the transport registers (``track``).

Nothing here ever carries a tool's arguments, a resource URI or a session id. prometheus-client is
imported only when a ``MCPMetrics`` is made (``pip install 'anyport[metrics]'``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from anyport._lifespan import acknowledge_lifespan

__all__ = ["BUCKETS", "OTHER", "MCPMetrics"]

#: The conventions' advisory buckets, in seconds.
BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: The label value for what the conventions call ``_OTHER``: a name the server does not know.
OTHER = "_OTHER"

_OPERATION_LABELS = (
    "mcp_method_name", "gen_ai_tool_name", "gen_ai_prompt_name", "error_type", "mcp_protocol_version", "network_transport",
)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("metrics need prometheus-client: pip install 'anyport[metrics]'") from exc
    return prometheus_client


class _PerRequest:
    """The two per-request series, kept as plain counts and folded into Prometheus families only
    when scraped (``collect``): ``prometheus_client``'s ``Histogram.observe`` takes a lock per
    bucket and per sum and walks the buckets in Python, ``labels()`` more; this is one ``bisect``
    and two additions. Written on the event loop, read by the scrape thread: a scrape may see an
    observation's count before its sum, never a torn number."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily

        self._histogram = HistogramMetricFamily
        self._counter = CounterMetricFamily
        self.bounds = tuple(sorted(buckets))
        self._les = [repr(float(b)) for b in self.bounds]  # as prometheus_client writes le: 0.01, 1.0, 300.0
        #: label values -> [count per bucket ..., count above the last (+Inf), sum of seconds]
        self.operations: dict[tuple[str, ...], list[float]] = {}
        self.endpoints: dict[str, int] = {}

    def observe(self, key: tuple[str, ...], seconds: float) -> None:
        series = self.operations.get(key)
        if series is None:
            series = self.operations[key] = [0.0] * (len(self.bounds) + 2)
        series[bisect_left(self.bounds, seconds)] += 1
        series[-1] += seconds

    def describe(self) -> list[Any]:
        return [self._histogram(_OPERATIONS, _OPERATIONS_HELP, labels=_OPERATION_LABELS),
                self._counter(_HTTP_REQUESTS, _HTTP_REQUESTS_HELP, labels=("endpoint",))]

    def collect(self) -> list[Any]:
        histogram = self._histogram(_OPERATIONS, _OPERATIONS_HELP, labels=_OPERATION_LABELS)
        for key, series in list(self.operations.items()):
            total, buckets = 0.0, []
            for le, count in zip([*self._les, "+Inf"], series[:-1], strict=True):
                total += count
                buckets.append((le, total))
            histogram.add_metric(list(key), buckets, series[-1])
        counter = self._counter(_HTTP_REQUESTS, _HTTP_REQUESTS_HELP, labels=("endpoint",))
        for endpoint, count in list(self.endpoints.items()):
            counter.add_metric([endpoint], count)
        return [histogram, counter]


_OPERATIONS = "mcp_server_operation_duration_seconds"
_OPERATIONS_HELP = "Duration of MCP requests the server answered (OpenTelemetry mcp.server.operation.duration)."
_HTTP_REQUESTS = "anyport_http_requests"
_HTTP_REQUESTS_HELP = "HTTP requests by MCP endpoint (streamable_http, sse, sse_messages): who still uses /sse."


class MCPMetrics:
    """The metrics of one server process, in a registry of their own (``registry``)."""

    def __init__(self, *, registry: Any = None, buckets: tuple[float, ...] = BUCKETS) -> None:
        prom = _prometheus()
        self._prom = prom
        self.registry = registry if registry is not None else prom.CollectorRegistry(auto_describe=True)
        self._fast = _PerRequest(buckets)
        self.registry.register(self._fast)
        self.sessions = prom.Histogram(
            "mcp_server_session_duration_seconds",
            "Duration of MCP sessions that ended (OpenTelemetry mcp.server.session.duration).",
            ("mcp_protocol_version", "network_transport"), buckets=buckets, registry=self.registry,
        )
        self.rejected = prom.Counter(
            "anyport_rejected_requests", "Requests refused before they reached the application, by reason.",
            ("reason",), registry=self.registry,
        )
        self._gauges: dict[str, Callable[[], float]] = {}
        live = prom.Gauge("anyport_live_sessions", "Legacy sessions held now.", registry=self.registry)
        live.set_function(lambda: self._gauge("sessions"))
        streams = prom.Gauge(
            "anyport_open_streams", "Standalone SSE streams (GET) and HTTP+SSE connections open now.", registry=self.registry,
        )
        streams.set_function(lambda: self._gauge("streams"))

    def observe(self, seconds: float, method: str, tool: str, prompt: str, error: str, version: str, transport: str) -> None:
        self._fast.observe((method, tool, prompt, error, version, transport), seconds)

    def session_ended(self, seconds: float, version: str, transport: str) -> None:
        self.sessions.labels(version, transport).observe(seconds)

    def http_request(self, endpoint: str) -> None:
        endpoints = self._fast.endpoints
        endpoints[endpoint] = endpoints.get(endpoint, 0) + 1

    def reject(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def track(self, name: str, read: Callable[[], float]) -> None:
        """Report ``read()`` as gauge ``name`` (``sessions`` or ``streams``) at every scrape."""
        self._gauges[name] = read

    def _gauge(self, name: str) -> float:
        read = self._gauges.get(name)
        return float(read()) if read is not None else 0.0

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The text to serve at ``/metrics`` and its content type (OpenMetrics when asked for)."""
        from prometheus_client import exposition

        encoder, content_type = exposition.choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def asgi_app(self, path: str = "/metrics") -> Callable[..., Any]:
        """An ASGI app serving this registry at ``path`` (GET or HEAD), for a port of its own; it
        takes part in the lifespan protocol, so any ASGI server can run it alone."""

        async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
            if scope["type"] == "lifespan":
                await acknowledge_lifespan(receive, send)
                return
            if scope["type"] != "http":
                return
            if scope["path"] != path:
                status, body, content_type = 404, b"not found: metrics are at " + path.encode() + b"\n", "text/plain"
            elif scope["method"] not in ("GET", "HEAD"):
                status, body, content_type = 405, b"method not allowed\n", "text/plain"
            else:
                accept = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept"), None)
                status = 200
                body, content_type = self.exposition(accept)
            headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
            if status == 405:
                headers.append((b"allow", b"GET, HEAD"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

        return app
