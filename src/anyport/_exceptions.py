"""The one exception tree of anyport.

```
MCPError
├── JSONRPCError                    an error that is (or becomes) a JSON-RPC error object: code, message, data
│   ├── ProtocolError               the rules of JSON-RPC / MCP were broken
│   │   ├── LocalProtocolError      ... by us (or by code using this library): a bug on this side
│   │   └── RemoteProtocolError     ... by the peer: carries the code to answer with
│   ├── ParseError                  -32700
│   ├── InvalidRequestError         -32600
│   ├── MethodNotFoundError         -32601
│   ├── InvalidParamsError          -32602
│   │   └── ResourceNotFoundError   -32602 on 2026-07-28, -32002 on legacy revisions
│   ├── InternalError               -32603
│   ├── HeaderMismatchError         -32020
│   │   └── HeaderValueError        a request-metadata header value that cannot be decoded (also a ValueError)
│   ├── MissingCapabilityError      -32021
│   └── UnsupportedProtocolVersionError  -32022
├── ToolError                       raised in a tool: the call returns an ``isError`` result
├── TransportError
│   ├── ConnectionClosedError       we (this side) closed the connection; no further I/O
│   ├── BrokenConnectionError       the peer or the network broke it (cause chained)
│   │   ├── ServerExitedError       a stdio server process exited: exit code and its stderr tail
│   │   └── SessionTerminatedError  the server no longer knows our HTTP session (404 to its id)
│   ├── NotAnSSEEndpointError       the URL serves no 2024-11-05 HTTP+SSE endpoint (HTTP status kept)
│   └── AuthError                   HTTP authorization (OAuth 2.1, ``anyport.oauth``) is needed or failed
│       ├── AuthRequiredError       the server answered 401 and the client has no ``auth=``
│       ├── OAuthDiscoveryError     no usable resource or authorization-server metadata (A-08..A-13)
│       ├── OAuthRegistrationError  no client identity for this authorization server (A-14..A-19)
│       ├── OAuthResponseError      the authorization response was refused: state, ``iss`` (A-21, A-22)
│       ├── OAuthTokenError         the token endpoint refused a grant (its ``error`` code kept)
│       └── InsufficientScopeError  403 insufficient_scope after the step-up attempts allowed (A-28)
└── RequestTimeoutError             no answer in time (also a ``TimeoutError``); a cancellation was sent
```

A ``JSONRPCError`` raised inside a handler is sent to the peer as that error. A JSON-RPC error
received from the peer is raised as the subclass for its code with ``remote=True``, so errors that
the peer sent and errors that this library raised locally can be told apart (E-03).
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthError",
    "AuthRequiredError",
    "BrokenConnectionError",
    "ConnectionClosedError",
    "HeaderMismatchError",
    "HeaderValueError",
    "InsufficientScopeError",
    "InternalError",
    "InvalidParamsError",
    "InvalidRequestError",
    "JSONRPCError",
    "LocalProtocolError",
    "MCPError",
    "MethodNotFoundError",
    "MissingCapabilityError",
    "NotAnSSEEndpointError",
    "OAuthDiscoveryError",
    "OAuthRegistrationError",
    "OAuthResponseError",
    "OAuthTokenError",
    "ParseError",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "ResourceNotFoundError",
    "ServerExitedError",
    "SessionTerminatedError",
    "ToolError",
    "TransportError",
    "UnsupportedProtocolVersionError",
    "error_from_response",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND_LEGACY = -32002
HEADER_MISMATCH = -32020
MISSING_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022
#: Implementation-defined (JSON-RPC reserves -32000..-32099 for servers): too many requests in flight.
SERVER_BUSY = -32000
#: Implementation-defined: a rate limit refused the request (HTTP 429; ``data.retryAfter`` in seconds).
RATE_LIMITED = -32029


class MCPError(Exception):
    """Base of every exception anyport raises."""


class JSONRPCError(MCPError):
    """An error with a JSON-RPC ``code``, ``message`` and optional ``data``."""

    default_code: ClassVar[int] = INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        data: Any = None,
        remote: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.default_code if code is None else code
        self.data = data
        self.remote = remote

    def to_error(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member for this exception."""
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r})"


class ProtocolError(JSONRPCError):
    """The rules of JSON-RPC or MCP were broken. Use a concrete subclass."""

    default_code = INVALID_REQUEST

    def __init__(self, message: str, *, code: int | None = None, data: Any = None) -> None:
        if type(self) is ProtocolError:
            raise TypeError("raise LocalProtocolError or RemoteProtocolError")
        super().__init__(message, code=code, data=data)


class LocalProtocolError(ProtocolError):
    """This side tried to do something the protocol forbids (a bug in the caller)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids; ``code`` is what to answer it with."""


class ParseError(JSONRPCError):
    default_code = PARSE_ERROR


class InvalidRequestError(JSONRPCError):
    default_code = INVALID_REQUEST


class MethodNotFoundError(JSONRPCError):
    default_code = METHOD_NOT_FOUND


class InvalidParamsError(JSONRPCError):
    default_code = INVALID_PARAMS


class ResourceNotFoundError(InvalidParamsError):
    """A resource URI that the server does not have. The wire code depends on the revision (F-RES-04)."""

    default_code = INVALID_PARAMS


class InternalError(JSONRPCError):
    default_code = INTERNAL_ERROR


class HeaderMismatchError(JSONRPCError):
    default_code = HEADER_MISMATCH


class HeaderValueError(HeaderMismatchError, ValueError):
    """A request-metadata header value that cannot be used: characters outside visible ASCII or a
    malformed ``=?base64?...?=`` sentinel (T-H26-16..18)."""


class MissingCapabilityError(JSONRPCError):
    default_code = MISSING_CAPABILITY


class UnsupportedProtocolVersionError(JSONRPCError):
    default_code = UNSUPPORTED_PROTOCOL_VERSION

    @property
    def supported(self) -> list[str]:
        data = self.data if isinstance(self.data, dict) else {}
        sup = data.get("supported")
        return [v for v in sup if isinstance(v, str)] if isinstance(sup, list) else []


class ToolError(MCPError):
    """Raise inside a tool to end the call with an ``isError`` result carrying this message."""


class TransportError(MCPError):
    """The connection underneath failed or was closed."""


class ConnectionClosedError(TransportError):
    """This side closed the connection; nothing more can be sent or received."""


class BrokenConnectionError(TransportError):
    """The peer or the network broke the connection."""


class ServerExitedError(BrokenConnectionError):
    """A stdio server process exited while we still needed it."""

    def __init__(self, message: str, *, returncode: int | None, stderr_tail: str = "") -> None:
        detail = f"{message} (exit code {returncode})"
        if stderr_tail:
            detail += f"; last stderr lines:\n{stderr_tail}"
        super().__init__(detail)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class SessionTerminatedError(BrokenConnectionError):
    """The server no longer knows our session (HTTP 404 to a request that carried its id)."""


class NotAnSSEEndpointError(TransportError):
    """The URL does not serve the 2024-11-05 HTTP+SSE transport (no ``endpoint`` event came)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(TransportError):
    """HTTP authorization is needed or failed; the message says what to do about it."""


class AuthRequiredError(AuthError):
    """The server answered 401 and the client has no ``auth=`` (``www_authenticate`` keeps its challenge)."""

    def __init__(self, message: str, *, www_authenticate: str | None = None) -> None:
        super().__init__(message)
        self.www_authenticate = www_authenticate


class OAuthDiscoveryError(AuthError):
    """No usable protected-resource or authorization-server metadata (A-08..A-13)."""


class OAuthRegistrationError(AuthError):
    """No client identity for the authorization server: none given, no CIMD, no DCR (A-14..A-19)."""


class OAuthResponseError(AuthError):
    """The authorization response was refused: wrong ``state`` or ``iss``, an error, no code (A-21, A-22)."""


class OAuthTokenError(AuthError):
    """The token endpoint refused a grant; ``error`` is its OAuth error code (e.g. ``invalid_grant``)."""

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.status = status


class InsufficientScopeError(AuthError):
    """The server still answers 403 ``insufficient_scope`` after the step-up attempts allowed (A-28)."""

    def __init__(self, message: str, *, scopes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.scopes = scopes


class RequestTimeoutError(MCPError, TimeoutError):
    """A request got no answer in time; a cancellation was sent to the peer."""


_BY_CODE: dict[int, type[JSONRPCError]] = {
    PARSE_ERROR: ParseError,
    INVALID_REQUEST: InvalidRequestError,
    METHOD_NOT_FOUND: MethodNotFoundError,
    INVALID_PARAMS: InvalidParamsError,
    INTERNAL_ERROR: InternalError,
    RESOURCE_NOT_FOUND_LEGACY: ResourceNotFoundError,
    HEADER_MISMATCH: HeaderMismatchError,
    MISSING_CAPABILITY: MissingCapabilityError,
    UNSUPPORTED_PROTOCOL_VERSION: UnsupportedProtocolVersionError,
}


def error_from_response(error: object) -> JSONRPCError:
    """Build the exception for a JSON-RPC ``error`` member received from the peer."""
    if not isinstance(error, dict):
        return RemoteProtocolError(f"malformed error member: {error!r}")
    code = error.get("code")
    message = error.get("message")
    if not isinstance(code, int) or isinstance(code, bool):
        return RemoteProtocolError(f"error without an integer code: {error!r}")
    cls = _BY_CODE.get(code, JSONRPCError)
    return cls(str(message) if message is not None else "", code=code, data=error.get("data"), remote=True)
