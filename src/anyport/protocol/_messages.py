"""JSON-RPC message shapes: building them and telling them apart.

Messages stay plain dicts end to end (no object graph per message); these helpers build and
classify them. ``classify`` is the single gate that rejects what JSON-RPC 2.0 and MCP forbid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

from anyport._exceptions import InvalidRequestError

__all__ = [
    "META_CLIENT_CAPABILITIES",
    "META_CLIENT_INFO",
    "META_LOG_LEVEL",
    "META_PROTOCOL_VERSION",
    "META_SERVER_INFO",
    "META_RELATED_TASK",
    "META_SUBSCRIPTION_ID",
    "LOG_LEVELS",
    "TASKS_EXTENSION_ID",
    "Notification",
    "Request",
    "Response",
    "cancelled_notification",
    "carries_request",
    "classify",
    "error_message",
    "is_initialize",
    "is_request",
    "is_request_id",
    "meta_version",
    "notification",
    "readable_id",
    "request",
    "result_message",
]

META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_LOG_LEVEL = "io.modelcontextprotocol/logLevel"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
META_SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
META_RELATED_TASK = "io.modelcontextprotocol/related-task"
TASKS_EXTENSION_ID = "io.modelcontextprotocol/tasks"

#: syslog severities in increasing order (U-11).
LOG_LEVELS: dict[str, int] = {
    name: i
    for i, name in enumerate(("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"))
}

_NO_ID = object()


@dataclass(slots=True)
class Request:
    id: str | int
    method: str
    params: dict[str, Any]


@dataclass(slots=True)
class Notification:
    method: str
    params: dict[str, Any]


@dataclass(slots=True)
class Response:
    id: str | int
    result: Any = None
    error: Any = None

    @property
    def is_error(self) -> bool:
        return self.error is not None


def is_request_id(value: object) -> TypeGuard[str | int]:
    """A JSON-RPC id this library accepts (J-03): a string or an integer; null is forbidden and a
    bool is not an integer here."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def readable_id(obj: object) -> str | int | None:
    """The id of a decoded message when it is a valid one (to echo in an error), else None."""
    value = obj.get("id") if isinstance(obj, dict) else None
    return value if is_request_id(value) else None


def is_request(obj: object) -> bool:
    """A decoded message shaped like a request: an object with a ``method`` and an ``id``
    (validity is ``classify``'s business; this only sorts messages for a transport)."""
    return isinstance(obj, dict) and "method" in obj and "id" in obj


def carries_request(parsed: object) -> bool:
    """A decoded body (one message or a batch) holds at least one request: it needs an answer."""
    if isinstance(parsed, list):
        return any(is_request(item) for item in parsed)
    return is_request(parsed)


def is_initialize(obj: object) -> bool:
    return isinstance(obj, dict) and "id" in obj and obj.get("method") == "initialize"


def meta_version(obj: object) -> object:
    """The protocol version a message names in its ``_meta`` (the 2026-07-28 way), or None; an
    ``initialize`` never counts (it negotiates the legacy way)."""
    if not isinstance(obj, dict) or obj.get("method") == "initialize":
        return None
    params = obj.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get(META_PROTOCOL_VERSION) if isinstance(meta, dict) else None


def classify(obj: object) -> Request | Notification | Response:
    """Validate one decoded JSON-RPC message (J-01, J-03, J-06, J-09, J-10).

    Raises ``InvalidRequestError`` (-32600) with ``data = {"id": ...}`` when the id was readable,
    so the error reply can echo it.
    """
    if not isinstance(obj, dict):
        raise InvalidRequestError("Invalid Request: a JSON-RPC message must be an object")
    raw_id = obj.get("id", _NO_ID)
    kind = type(raw_id)
    valid_id = raw_id if kind is int or kind is str or is_request_id(raw_id) else None
    if obj.get("jsonrpc") != "2.0":
        raise InvalidRequestError('Invalid Request: "jsonrpc" must be "2.0"', data=_id_data(valid_id))
    method = obj.get("method", _NO_ID)
    if method is not _NO_ID:
        if not isinstance(method, str) or not method:
            raise InvalidRequestError('Invalid Request: "method" must be a non-empty string', data=_id_data(valid_id))
        params = obj.get("params")
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            raise InvalidRequestError('Invalid Request: "params" must be an object', data=_id_data(valid_id))
        if raw_id is _NO_ID:
            return Notification(method, params)
        if valid_id is None:
            raise InvalidRequestError('Invalid Request: "id" must be a string or an integer')
        return Request(valid_id, method, params)
    has_result = "result" in obj
    has_error = "error" in obj
    if valid_id is None or has_result == has_error:
        raise InvalidRequestError("Invalid Request: neither a request, a notification nor a response")
    return Response(valid_id, obj.get("result"), obj.get("error"))


def _id_data(id_: str | int | None) -> dict[str, Any] | None:
    return None if id_ is None else {"id": id_}


def request(id_: str | int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def cancelled_notification(request_id: str | int, reason: str | None = None) -> dict[str, Any]:
    """``notifications/cancelled`` for a request we gave up on (U-02)."""
    params: dict[str, Any] = {"requestId": request_id}
    if reason is not None:
        params["reason"] = reason
    return notification("notifications/cancelled", params)


def result_message(id_: str | int, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "result": result}


def error_message(id_: str | int | None, error: dict[str, Any], *, omit_missing_id: bool = True) -> dict[str, Any]:
    """An error response. Without a readable id, omit ``id`` (J-08, >= 2025-11-25) or send null (older)."""
    msg: dict[str, Any] = {"jsonrpc": "2.0"}
    if id_ is not None or not omit_missing_id:
        msg["id"] = id_
    msg["error"] = error
    return msg
