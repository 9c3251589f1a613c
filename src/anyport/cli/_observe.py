"""``anyport serve``'s observability options: ``--metrics-port``, ``--access-log``, ``--log-format``,
``--otel`` (issue 14). Everything off by default, and nothing of ``anyport.observe`` is loaded then:
a server started with no flag pays nothing for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["OBSERVE_OPTIONS", "apply_observe", "observe_options", "observer"]

F = TypeVar("F", bound=Callable[..., Any])

#: The keyword names these options add to a command.
OBSERVE_OPTIONS = ("metrics_port", "metrics_host", "access_log", "log_format", "otel")


def observe_options(f: F) -> F:
    options = [
        click.option(
            "--metrics-port", type=click.IntRange(0, 65535), default=None, envvar="ANYPORT_METRICS_PORT",
            help="Serve Prometheus metrics (OpenTelemetry MCP conventions) at /metrics on this port; needs anyport[metrics].",
        ),
        click.option(
            "--metrics-host", default="127.0.0.1", show_default=True, envvar="ANYPORT_METRICS_HOST",
            help="Address the metrics port binds (keep it private: metrics are not authenticated).",
        ),
        click.option(
            "--access-log", is_flag=True, envvar="ANYPORT_ACCESS_LOG",
            help="One line per request on stderr (method, tool, status, duration, session, principal, trace id).",
        ),
        click.option(
            "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
            envvar="ANYPORT_LOG_FORMAT", help="The access log's and anyport's log lines: human text or JSON lines.",
        ),
        click.option(
            "--otel", is_flag=True, envvar="ANYPORT_OTEL",
            help="A span per request through the OpenTelemetry API (configure the SDK as usual, e.g. opentelemetry-instrument); needs anyport[otel].",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def apply_observe(
    server: Any, *, transport: str, workers: int = 1, metrics_port: int | None, metrics_host: str, access_log: bool,
    log_format: str, otel: bool,
) -> Any:
    """``server``, observed as the options ask (or ``server`` itself when none is on); starts the
    metrics port. A usage error for a combination that cannot work."""
    observe = observer(
        transport=transport, workers=workers, metrics_port=metrics_port, metrics_host=metrics_host, access_log=access_log,
        log_format=log_format, otel=otel,
    )
    return observe(server)


def observer(
    *, transport: str, workers: int = 1, metrics_port: int | None, metrics_host: str, access_log: bool, log_format: str,
    otel: bool,
) -> Callable[[Any], Any]:
    """What ``apply_observe`` does, for several servers in one process (``anyport bridge`` with
    ``[bridge.servers]``): one ``MCPMetrics`` (one metrics port), ``Tracing`` and ``AccessLog``,
    made and started once; the function returned wraps each server in an ``Observed`` of its own
    sharing them (or returns it as is when no option is on)."""
    if log_format == "json":
        from anyport.observe import configure_logging

        configure_logging(level="warning", fmt="json")
    if metrics_port is None and not access_log and not otel:
        return _as_is
    if metrics_port is not None and workers > 1:
        raise click.UsageError(
            "--metrics-port with --workers > 1: each worker would keep metrics of its own; run one process per "
            "container and scrape each (see docs/operations.md)"
        )
    from anyport.observe import AccessLog, MCPMetrics, Observed, Tracing

    try:
        metrics = MCPMetrics() if metrics_port is not None else None
        tracing = Tracing() if otel else None
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    access = AccessLog(fmt=log_format) if access_log else None
    if metrics is not None and metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
        except OSError as exc:
            raise click.ClickException(f"metrics port {metrics_host}:{metrics_port}: {exc.strerror or exc}") from None

    def observe(server: Any) -> Any:
        return Observed(server, metrics=metrics, tracing=tracing, access=access, transport="pipe" if transport == "stdio" else "tcp")

    return observe


def _as_is(server: Any) -> Any:
    return server
