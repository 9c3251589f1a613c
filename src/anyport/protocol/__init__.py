"""The sans-IO protocol core: codec, revision table, messages, connection state, MRTR sealing.

No asyncio and no sockets here: feed decoded input in, get events and messages out.
Imports only the standard library, orjson and (for AEAD) cryptography.
"""

from anyport.protocol._codec import dumps, dumps_line, loads
from anyport.protocol._connection import (
    CancelRequested,
    ClientConnection,
    Event,
    IncomingRequest,
    NotificationReceived,
    OutgoingRequests,
    Received,
    Reply,
    ResponseReceived,
    ServerConnection,
)
from anyport.protocol._messages import (
    LOG_LEVELS,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    META_SERVER_INFO,
    META_SUBSCRIPTION_ID,
    Notification,
    Request,
    Response,
    classify,
    error_message,
    notification,
    request,
    result_message,
)
from anyport.protocol._revisions import (
    LATEST_LEGACY_VERSION,
    LATEST_VERSION,
    LEGACY_VERSIONS,
    MODERN_VERSIONS,
    REVISIONS,
    SUPPORTED_VERSIONS,
    Revision,
    negotiate_legacy,
    revision,
)
from anyport.protocol._seal import KeyRing

__all__ = [
    "LATEST_LEGACY_VERSION",
    "LATEST_VERSION",
    "LEGACY_VERSIONS",
    "LOG_LEVELS",
    "META_CLIENT_CAPABILITIES",
    "META_CLIENT_INFO",
    "META_LOG_LEVEL",
    "META_PROTOCOL_VERSION",
    "META_SERVER_INFO",
    "META_SUBSCRIPTION_ID",
    "MODERN_VERSIONS",
    "REVISIONS",
    "SUPPORTED_VERSIONS",
    "CancelRequested",
    "ClientConnection",
    "Event",
    "IncomingRequest",
    "KeyRing",
    "Notification",
    "NotificationReceived",
    "OutgoingRequests",
    "Received",
    "Reply",
    "Request",
    "Response",
    "ResponseReceived",
    "Revision",
    "ServerConnection",
    "classify",
    "dumps",
    "dumps_line",
    "error_message",
    "loads",
    "negotiate_legacy",
    "notification",
    "request",
    "result_message",
    "revision",
]
