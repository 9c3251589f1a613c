"""anyport: MCP servers and clients for every transport and every protocol revision.

``import anyport`` loads the exception tree and ``Limits``; the server API and the client load when
first named (``anyport.Server``, ``from anyport import Client``), so ``import anyport.protocol``
stays free of them and of pydantic. HTTP, Redis and the CLI load only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from anyport._exceptions import (
    AuthError,
    AuthRequiredError,
    BrokenConnectionError,
    ConnectionClosedError,
    HeaderMismatchError,
    HeaderValueError,
    InsufficientScopeError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    JSONRPCError,
    LocalProtocolError,
    MCPError,
    MethodNotFoundError,
    MissingCapabilityError,
    NotAnSSEEndpointError,
    OAuthDiscoveryError,
    OAuthRegistrationError,
    OAuthResponseError,
    OAuthTokenError,
    ParseError,
    ProtocolError,
    RemoteProtocolError,
    RequestTimeoutError,
    ResourceNotFoundError,
    ServerExitedError,
    SessionTerminatedError,
    ToolError,
    TransportError,
    UnsupportedProtocolVersionError,
)
from anyport.limits import Limits

if TYPE_CHECKING:
    from anyport.client import CallToolResult, Client
    from anyport.server import (
        Audio,
        Completion,
        Context,
        ElicitResult,
        EmbeddedResource,
        Image,
        Message,
        Question,
        ResourceContents,
        ResourceLink,
        Root,
        SamplingResult,
        Server,
        TextContent,
        ToolResult,
    )

#: Public names loaded on first use, and the module each comes from.
_LAZY: dict[str, str] = {
    "CallToolResult": "anyport.client",
    "Client": "anyport.client",
    **dict.fromkeys(
        (
            "Audio", "Completion", "Context", "ElicitResult", "EmbeddedResource", "Image", "Message", "Question",
            "ResourceContents", "ResourceLink", "Root", "SamplingResult", "Server", "TextContent", "ToolResult",
        ),
        "anyport.server",
    ),
}


def __getattr__(name: str) -> Any:
    if name == "oauth":  # the OAuth 2.1 client (httpx, joserfc): a subpackage, loaded when first named
        return importlib.import_module("anyport.oauth")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'anyport' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__version__ = "0.1.0"

__all__ = [
    "Audio",
    "AuthError",
    "AuthRequiredError",
    "BrokenConnectionError",
    "CallToolResult",
    "Client",
    "Completion",
    "ConnectionClosedError",
    "Context",
    "ElicitResult",
    "EmbeddedResource",
    "HeaderMismatchError",
    "HeaderValueError",
    "Image",
    "InsufficientScopeError",
    "InternalError",
    "InvalidParamsError",
    "InvalidRequestError",
    "JSONRPCError",
    "Limits",
    "LocalProtocolError",
    "MCPError",
    "Message",
    "MethodNotFoundError",
    "MissingCapabilityError",
    "NotAnSSEEndpointError",
    "OAuthDiscoveryError",
    "OAuthRegistrationError",
    "OAuthResponseError",
    "OAuthTokenError",
    "ParseError",
    "ProtocolError",
    "Question",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "ResourceContents",
    "ResourceLink",
    "ResourceNotFoundError",
    "Root",
    "SamplingResult",
    "Server",
    "ServerExitedError",
    "SessionTerminatedError",
    "TextContent",
    "ToolError",
    "ToolResult",
    "TransportError",
    "UnsupportedProtocolVersionError",
    "__version__",
]
