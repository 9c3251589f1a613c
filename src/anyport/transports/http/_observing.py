"""What the HTTP transport tells an observed application's metrics (``anyport.observe``): requests
it refused before the application saw them, by reason; the sessions and streams it holds; the
sessions that ended. Nothing here runs unless the application carries an ``MCPMetrics``
(``Observed(server, metrics=...)``): a plain server pays one attribute test at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from anyport.transports.http._asgi import ASGIMessage, Send

if TYPE_CHECKING:
    from anyport.transports.http._app import StreamableHTTPApp

__all__ = ["REASONS", "counting", "metrics_of"]

#: The reason label of a refusal, by the HTTP status it was refused with (T-HTTP / §15 cheat-sheet).
REASONS = {
    400: "bad_request",     # malformed JSON, a version header that contradicts the body, no session id
    401: "auth",            # no or bad credentials (A-*)
    403: "forbidden",       # Origin/Host not allowed, or insufficient scope
    404: "unknown_session",  # also an unknown path
    405: "method",
    406: "media",
    408: "timeout",         # the body did not arrive in time
    413: "too_large",
    415: "media",
    429: "rate_limit",
    500: "internal",
    503: "unavailable",     # shared state down, capacity
}


def metrics_of(app: StreamableHTTPApp) -> Any:
    """The application's ``MCPMetrics`` (an ``Observed`` application's), wired to ``app``; or None."""
    metrics = getattr(app.server, "metrics", None)
    if metrics is None or not hasattr(metrics, "reject"):
        return None
    metrics.track("sessions", lambda: len(app.sessions))
    metrics.track("streams", lambda: len(app.get_streams) + (len(app.legacy.connections) if app.legacy is not None else 0))

    def ended(session: Any) -> None:
        rev = session.conn.revision
        metrics.session_ended(app.sessions.clock() - session.created, rev.version if rev is not None else "", "tcp")

    app.sessions.on_end = ended
    return metrics


def counting(send: Send, metrics: Any, app: StreamableHTTPApp, path: str) -> Send:
    """``send``, counting the request by MCP endpoint, and a response with a refusal's status (see
    ``REASONS``) as rejected."""
    path = path.rstrip("/") or "/"
    if path == app.path:
        metrics.http_request("streamable_http")
    elif app.legacy is not None and path == (app.legacy.sse_path.rstrip("/") or "/"):
        metrics.http_request("sse")
    elif app.legacy is not None and path == (app.legacy.messages_path.rstrip("/") or "/"):
        metrics.http_request("sse_messages")

    async def counted(message: ASGIMessage) -> None:
        if message["type"] == "http.response.start":
            reason = REASONS.get(message["status"])
            if reason is not None:
                metrics.reject(reason)
        await send(message)

    return counted
