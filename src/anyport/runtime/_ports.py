"""The three seams of the request runtime, as small Protocols.

- ``MessageStream``: what a byte-stream transport (stdio, the in-memory pair, one HTTP+SSE
  connection, a client's HTTP connection) offers the runtimes above it.
- ``Outlet``: a running handler's way back to its client (notifications, server->client requests);
  each runtime makes one per request.
- ``Application``: what the runtime and the transports need of the application (``Server``
  implements it): fresh protocol state, dispatch, whether a request may be answered inline, the
  notification hub, the per-tool header declarations, and the client's notifications that the
  protocol core does not consume itself (``client_notification``). Nothing else of tools, resources or
  prompts crosses this seam.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from anyport.protocol import IncomingRequest, ParamHeader, Revision, ServerConnection
    from anyport.runtime._hub import NotificationHub

__all__ = ["Application", "MessageStream", "Outlet"]


class MessageStream(Protocol):
    """One bidirectional connection carrying framed JSON-RPC messages.

    ``receive`` returns the bytes of one message, or None once the peer has finished.
    ``send`` takes the bytes of one message (no framing). Transports know nothing of MCP.
    """

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes | None: ...

    async def aclose(self) -> None: ...


class Outlet(Protocol):
    """How a handler reaches the client: provided by the runtime that runs the request.

    An outlet may also carry ``session_id`` (a str): the id under which its legacy session is
    registered with the hub (resource subscriptions and task ownership use it).
    """

    async def notify(self, method: str, params: dict[str, Any]) -> None: ...

    async def request(self, method: str, params: dict[str, Any]) -> Any: ...


class Application(Protocol):
    """The application behind a runtime (``anyport.Server``)."""

    #: The revisions it serves, per era (a server may be configured to serve fewer).
    legacy_versions: tuple[str, ...]
    modern_versions: tuple[str, ...]

    @property
    def hub(self) -> NotificationHub:
        """Where sessions register to receive server-initiated notifications."""
        ...

    def open_connection(self, *, assume_initialized: Revision | None = None) -> ServerConnection:
        """Fresh protocol state for one connection, session or stateless request."""
        ...

    def inline_safe(self, req: IncomingRequest) -> bool:
        """True when the request's handler never waits: ``reply_now`` may answer it without a task."""
        ...

    async def reply(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """The JSON-RPC response to an admitted request (handler errors become error responses)."""
        ...

    def reply_now(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """``reply`` for a request that ``inline_safe`` admits, by a plain call."""
        ...

    def required_scopes(self, method: str, params: dict[str, Any]) -> tuple[str, ...]:
        """The scopes a request needs (a tool, resource or prompt registered with ``scopes``): an
        HTTP transport with authentication answers 403 ``insufficient_scope`` before it runs."""
        ...

    def param_headers(self, name: str) -> list[ParamHeader] | str | None:
        """A tool's ``x-mcp-header`` declarations (a str: why they are invalid; None: no such tool)."""
        ...

    def client_notification(self, session_id: str | None, method: str, params: dict[str, Any]) -> None:
        """A notification of the client that the protocol core leaves to the application (e.g.
        ``notifications/roots/list_changed``; never ``initialized`` or ``cancelled``).
        ``session_id``: the session it came on (the id its peer has in the hub), None for a
        request of its own. Called by the runtime as it reads the message: it must not block."""
        ...
