"""The per-peer state machines: no asyncio, no sockets, no tools.

Rules (after h11's ``_state.py``):
1. Everything that decides *whether* a message is acceptable lives here; the runtime only
   moves bytes and runs handlers.
2. Both eras on one connection (M-12): a request whose ``params._meta`` names a protocol version
   is served statelessly as 2026-07-28 (nothing is derived from earlier requests: M-05); an
   ``initialize`` selects legacy semantics for the rest of the connection.
3. Input arrives through ``receive_data`` / ``receive``; each returns events. Errors the peer caused
   never raise out of ``receive``: they become a ``Reply`` carrying the JSON-RPC error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from anyport._exceptions import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    SERVER_BUSY,
    UNSUPPORTED_PROTOCOL_VERSION,
    JSONRPCError,
    LocalProtocolError,
    ParseError,
)
from anyport.protocol import _codec
from anyport.protocol._bounded import bounded, brief
from anyport.protocol._messages import (
    LOG_LEVELS,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    META_SERVER_INFO,
    TASKS_EXTENSION_ID,
    Notification,
    Request,
    Response,
    classify,
    error_message,
    is_request_id,
    readable_id,
    result_message,
)
from anyport.protocol._revisions import (
    LEGACY_VERSIONS,
    MODERN_VERSIONS,
    REVISIONS,
    Revision,
    negotiate_legacy,
)

__all__ = [
    "CancelRequested",
    "ClientConnection",
    "Event",
    "IncomingRequest",
    "NotificationReceived",
    "OutgoingRequests",
    "Received",
    "Reply",
    "ResponseReceived",
    "ServerConnection",
]

#: Requests running at once on one connection (``anyport.Limits.max_inflight``).
DEFAULT_MAX_INFLIGHT = 1000

# Methods that exist only in the legacy era; a modern request naming them gets -32601.
_LEGACY_ONLY_METHODS = frozenset(
    {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)
_MODERN_ONLY_METHODS = frozenset({"server/discover", "subscriptions/listen"})


@dataclass(slots=True)
class IncomingRequest:
    """A request that passed every protocol check and now needs a handler."""

    id: str | int
    method: str
    params: dict[str, Any]
    revision: Revision
    client_capabilities: dict[str, Any]
    client_info: dict[str, Any] | None
    #: Minimum level for ``notifications/message`` on this request; None = send none (M-19).
    log_level: str | None

    @property
    def progress_token(self) -> str | int | None:
        meta = self.params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        if is_request_id(token):
            return token
        return None


@dataclass(slots=True)
class Reply:
    """A message the connection answered by itself (errors, ping, initialize, discover)."""

    message: dict[str, Any]


@dataclass(slots=True)
class NotificationReceived:
    method: str
    params: dict[str, Any]


@dataclass(slots=True)
class CancelRequested:
    request_id: str | int
    reason: str | None


@dataclass(slots=True)
class ResponseReceived:
    id: str | int
    method: str
    result: Any
    error: Any


Event = IncomingRequest | Reply | NotificationReceived | CancelRequested | ResponseReceived


@dataclass(slots=True)
class Received:
    """What one frame (a stdio line, an HTTP body) turned into."""

    events: list[Event]
    batch: bool = False


class OutgoingRequests:
    """Ids for requests we send, and the ones still waiting for an answer (J-04, J-05)."""

    __slots__ = ("_last", "pending")

    def __init__(self) -> None:
        # Ids are never reused on a connection, even after completion (J-04 is the stricter rule).
        self._last = 0
        self.pending: dict[str | int, str] = {}

    def start(self, method: str) -> int:
        id_ = self._last = self._last + 1
        self.pending[id_] = method
        return id_

    def resolve(self, id_: str | int) -> str | None:
        """The method of the answered request, or None for an id we are not waiting on (U-05)."""
        return self.pending.pop(id_, None)

    def forget(self, id_: str | int) -> None:
        self.pending.pop(id_, None)


def _error_reply(id_: str | int | None, exc: JSONRPCError, revision: Revision | None) -> Reply:
    omit = revision is None or revision.error_id_optional
    return Reply(error_message(id_, exc.to_error(), omit_missing_id=omit))


def _error(id_: str | int | None, code: int, message: str, data: Any = None, revision: Revision | None = None) -> Reply:
    return _error_reply(id_, JSONRPCError(message, code=code, data=data), revision)


class ServerConnection:
    """Protocol state of one server-side connection: a stdio process or one HTTP session.

    For stateless HTTP a fresh connection per request serves the modern era and, with
    ``assume_initialized``, legacy requests without a handshake.
    """

    # Slots: one is made per stateless request and one is kept per session (memory, set-up time).
    __slots__ = (
        "_outgoing", "capabilities", "client_capabilities", "client_info", "discover_extra", "inflight",
        "initialized", "instructions", "legacy_versions", "log_level", "max_inflight", "modern_versions", "revision",
        "server_info", "shared",
    )

    def __init__(
        self,
        *,
        server_info: dict[str, Any],
        capabilities: dict[str, Any],
        instructions: str | None = None,
        legacy_versions: tuple[str, ...] = LEGACY_VERSIONS,
        modern_versions: tuple[str, ...] = MODERN_VERSIONS,
        discover_extra: dict[str, Any] | None = None,
        assume_initialized: Revision | None = None,
    ) -> None:
        self.server_info = server_info
        self.capabilities = capabilities
        self.instructions = instructions
        self.legacy_versions = legacy_versions
        self.modern_versions = modern_versions
        self.discover_extra = discover_extra or {}
        #: Negotiated legacy revision, once ``initialize`` was answered.
        self.revision: Revision | None = assume_initialized
        self.initialized = assume_initialized is not None
        self.client_capabilities: dict[str, Any] = {}
        self.client_info: dict[str, Any] | None = None
        self.log_level: str | None = "debug"
        self._outgoing: OutgoingRequests | None = None  # made when first needed: most connections never ask
        #: Incoming request ids still being handled -> cancelled flag.
        self.inflight: dict[str | int, bool] = {}
        #: At most this many requests run at once; one more is refused with -32000 (``anyport.Limits``).
        self.max_inflight = DEFAULT_MAX_INFLIGHT
        #: One replica's view of a session that several serve (HTTP with shared state): a
        #: cancellation of a request not running here still becomes ``CancelRequested``, for the
        #: transport to pass on. Answers to other replicas' requests go through ``outgoing.resolve``.
        self.shared = False

    @property
    def outgoing(self) -> OutgoingRequests:
        """Our requests to the client: their ids, and the ones still waiting for an answer."""
        out = self._outgoing
        if out is None:
            out = self._outgoing = OutgoingRequests()
        return out

    @outgoing.setter
    def outgoing(self, value: OutgoingRequests) -> None:
        self._outgoing = value

    # -- input -----------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview | str) -> Received:
        """One frame of bytes: a message, or a batch where the revision allows it (J-11, J-13)."""
        try:
            obj = _codec.loads(data)
        except ParseError as exc:
            return Received([_error_reply(None, exc, self.revision)])
        return self.receive_obj(obj)

    def receive_obj(self, obj: Any) -> Received:
        if isinstance(obj, list):
            if self.revision is None or not self.revision.batching:
                return Received([_error(None, INVALID_REQUEST, "Invalid Request: batches are not allowed on this protocol revision", revision=self.revision)])
            if not obj:
                return Received([_error(None, INVALID_REQUEST, "Invalid Request: empty batch", revision=self.revision)])
            events: list[Event] = []
            for item in obj:
                if isinstance(item, dict) and item.get("method") == "initialize":
                    # J-12: initialize is never part of a batch.
                    events.append(_error(readable_id(item), INVALID_REQUEST, "Invalid Request: initialize must not be batched", revision=self.revision))
                    continue
                ev = self.receive(item)
                if ev is not None:
                    events.append(ev)
            return Received(events, batch=True)
        ev = self.receive(obj)
        return Received([] if ev is None else [ev])

    def receive(self, obj: Any) -> Event | None:
        """One decoded message. Returns the event to act on, or None when nothing is to be done."""
        try:
            msg = classify(obj)
        except JSONRPCError as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            id_ = data.get("id")
            return _error_reply(id_, JSONRPCError(exc.message, code=exc.code), self.revision)
        if isinstance(msg, Request):
            return self._on_request(msg)
        if isinstance(msg, Notification):
            return self._on_notification(msg)
        return self._on_response(msg)

    def _on_request(self, req: Request) -> Event:
        meta = req.params.get("_meta")
        if req.method == "initialize":
            return self._on_initialize(req)
        if isinstance(meta, dict) and META_PROTOCOL_VERSION in meta:
            return self._on_modern_request(req, meta)
        if req.method == "ping":
            # L-19: answered at any time, also before initialization completes.
            return Reply(result_message(req.id, {}))
        if self.revision is None:
            if req.method in _MODERN_ONLY_METHODS or req.method not in _LEGACY_ONLY_METHODS:
                return _error(
                    req.id, INVALID_PARAMS,
                    f"Missing required _meta field {META_PROTOCOL_VERSION!r} "
                    "(2026-07-28 requests carry it; legacy clients must send initialize first)",
                )
            return _error(req.id, INVALID_REQUEST, "Invalid Request: received a request before initialize")
        if req.method in _MODERN_ONLY_METHODS:
            return _error(req.id, METHOD_NOT_FOUND, f"Method not found: {req.method} (not on {self.revision.version})", revision=self.revision)
        if req.method == "logging/setLevel":
            level = req.params.get("level")
            if not _is_log_level(level):
                return _error(req.id, INVALID_PARAMS, f"Invalid log level: {brief(level)}", revision=self.revision)
            self.log_level = level
            return Reply(result_message(req.id, {}))
        return self._admit(req, self.revision, self.client_capabilities, self.client_info, self.log_level)

    def _admit(
        self, req: Request, rev: Revision, caps: dict[str, Any], info: dict[str, Any] | None, level: str | None
    ) -> Event:
        inflight = self.inflight
        if req.id in inflight:
            # J-05: an id equal to one still outstanding is a protocol error.
            return _error(req.id, INVALID_REQUEST, f"Invalid Request: request id {brief(req.id)} is already in use", revision=rev)
        if len(inflight) >= self.max_inflight:
            return _error(
                req.id, SERVER_BUSY,
                f"Server busy: {len(inflight)} requests of this connection are still running; send more when some have finished",
                data={"limit": self.max_inflight}, revision=rev,
            )
        inflight[req.id] = False
        return IncomingRequest(req.id, req.method, req.params, rev, caps, info, level)

    def _on_initialize(self, req: Request) -> Event:
        if self.initialized or self.revision is not None:
            return _error(req.id, INVALID_REQUEST, "Invalid Request: the connection is already initialized", revision=self.revision)
        requested = req.params.get("protocolVersion")
        if not isinstance(requested, str):
            # L-07: an error only for unusable input; otherwise we counter-offer.
            return _error(
                req.id, INVALID_PARAMS, "initialize needs a string protocolVersion",
                data={"supported": list(self.legacy_versions), "requested": bounded(requested)},
            )
        version = negotiate_legacy(requested, self.legacy_versions)
        rev = REVISIONS[version]
        caps = req.params.get("capabilities")
        self.client_capabilities = caps if isinstance(caps, dict) else {}
        info = req.params.get("clientInfo")
        self.client_info = info if isinstance(info, dict) else None
        self.revision = rev
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": _capabilities_for(self.capabilities, rev),
            "serverInfo": _server_info_for(self.server_info, rev),
        }
        if self.instructions and rev.instructions:
            result["instructions"] = self.instructions
        return Reply(result_message(req.id, result))

    def _on_modern_request(self, req: Request, meta: dict[str, Any]) -> Event:
        version = meta.get(META_PROTOCOL_VERSION)
        if not isinstance(version, str) or version not in self.modern_versions:
            # M-08; the supported list names only versions valid in _meta (DIGEST §19).
            return _error(
                req.id, UNSUPPORTED_PROTOCOL_VERSION, f"Unsupported protocol version: {brief(version)}",
                data={"supported": list(self.modern_versions), "requested": bounded(version)},
            )
        rev = REVISIONS[version]
        caps = meta.get(META_CLIENT_CAPABILITIES)
        if not isinstance(caps, dict):
            return _error(req.id, INVALID_PARAMS, f"Missing required _meta field {META_CLIENT_CAPABILITIES!r}", revision=rev)
        info = meta.get(META_CLIENT_INFO)
        if info is not None and not isinstance(info, dict):
            return _error(req.id, INVALID_PARAMS, f"_meta field {META_CLIENT_INFO!r} must be an object", revision=rev)
        level = meta.get(META_LOG_LEVEL)
        if level is not None and not _is_log_level(level):
            return _error(req.id, INVALID_PARAMS, f"Invalid log level in _meta: {brief(level)}", revision=rev)
        if req.method in _LEGACY_ONLY_METHODS:
            return _error(req.id, METHOD_NOT_FOUND, f"Method not found: {req.method} (removed in {version})", revision=rev)
        if req.method == "server/discover":
            return Reply(result_message(req.id, self.discover_result(rev)))
        return self._admit(req, rev, caps, info, level)

    def discover_result(self, rev: Revision) -> dict[str, Any]:
        """``server/discover`` (M-09): versions, capabilities, instructions, serverInfo, caching hints."""
        result: dict[str, Any] = {
            "resultType": "complete",
            "supportedVersions": [*self.modern_versions, *reversed(self.legacy_versions)],
            "capabilities": _capabilities_for(self.capabilities, rev),
            "serverInfo": _server_info_for(self.server_info, rev),
            **self.discover_extra,
        }
        if self.instructions:
            result["instructions"] = self.instructions
        result.setdefault("ttlMs", 0)
        result.setdefault("cacheScope", "public")
        result["_meta"] = {META_SERVER_INFO: result["serverInfo"]}
        return result

    def _on_notification(self, note: Notification) -> Event | None:
        method = note.method
        if method == "notifications/initialized":
            if self.revision is not None:
                self.initialized = True
            return None
        if method == "notifications/cancelled":
            rid = note.params.get("requestId")
            # U-02/U-04: only a request still running; anything else is ignored silently.
            if not is_request_id(rid):
                return None
            if rid in self.inflight:
                self.inflight[rid] = True
            elif not self.shared:
                return None
            # A shared session: the request may run on another replica; the transport hands it on.
            reason = note.params.get("reason")
            return CancelRequested(rid, reason if isinstance(reason, str) else None)
        return NotificationReceived(method, note.params)

    def _on_response(self, resp: Response) -> Event | None:
        method = self.outgoing.resolve(resp.id)
        if method is None:
            return None  # late or unknown: ignore (U-05)
        return ResponseReceived(resp.id, method, resp.result, resp.error)

    # -- output ----------------------------------------------------------------------------

    def finish(self, request_id: str | int) -> bool:
        """The handler of ``request_id`` ended. False when it was cancelled: send nothing (U-04, T-STDIO-14)."""
        cancelled = self.inflight.pop(request_id, False)
        return not cancelled

    def start_request(self, method: str) -> int:
        """An id for a server->client request; refused where the revision has none (M-10)."""
        if self.revision is None or not self.revision.server_requests:
            raise LocalProtocolError(f"cannot send {method}: no legacy session on this connection")
        return self.outgoing.start(method)


def _is_log_level(value: object) -> bool:
    """One of the syslog level names (U-11); anything else, of any JSON type, is not."""
    return isinstance(value, str) and value in LOG_LEVELS


def _capabilities_for(caps: dict[str, Any], rev: Revision) -> dict[str, Any]:
    out = dict(caps)
    if not rev.annotations:
        out.pop("completions", None)
    if not rev.tasks:
        out.pop("tasks", None)
    ext = out.get("extensions")
    if isinstance(ext, dict) and TASKS_EXTENSION_ID in ext and not rev.tasks_extension:
        ext = {k: v for k, v in ext.items() if k != TASKS_EXTENSION_ID}
        if ext:
            out["extensions"] = ext
        else:
            out.pop("extensions")
    if rev.modern:
        # Subscriptions moved to subscriptions/listen; no `subscribe` flag on 2026-07-28.
        res = out.get("resources")
        if isinstance(res, dict) and "subscribe" in res:
            out["resources"] = {k: v for k, v in res.items() if k != "subscribe"}
    return out


def _server_info_for(info: dict[str, Any], rev: Revision) -> dict[str, Any]:
    out = {"name": info["name"], "version": info["version"]}
    if rev.titles and info.get("title"):
        out["title"] = info["title"]
    if rev.icons:
        for key in ("description", "icons", "websiteUrl"):
            if info.get(key):
                out[key] = info[key]
    return out


@dataclass(slots=True)
class ClientConnection:
    """Protocol state of one client-side connection (both eras)."""

    client_info: dict[str, Any]
    capabilities: dict[str, Any] = field(default_factory=dict)
    revision: Revision | None = None
    server_info: dict[str, Any] = field(default_factory=dict)
    server_capabilities: dict[str, Any] = field(default_factory=dict)
    instructions: str | None = None
    log_level: str | None = None
    outgoing: OutgoingRequests = field(default_factory=OutgoingRequests)

    def initialize_params(self, version: str) -> dict[str, Any]:
        return {"protocolVersion": version, "capabilities": self.capabilities, "clientInfo": self.client_info}

    def accept_initialize(self, result: Any, acceptable: Iterable[str] = LEGACY_VERSIONS) -> Revision:
        """Check the server's answer (L-04, L-06): a version we do not speak ends the connection."""
        if not isinstance(result, dict) or not isinstance(result.get("protocolVersion"), str):
            raise LocalProtocolError("initialize result without a protocolVersion")
        version = result["protocolVersion"]
        if version not in set(acceptable):
            raise LocalProtocolError(f"server chose protocol version {version!r}, which this client does not support")
        self.revision = REVISIONS[version]
        self._take_server(result)
        return self.revision

    def accept_discover(self, result: Any, preferred: tuple[str, ...] = MODERN_VERSIONS) -> Revision:
        if not isinstance(result, dict):
            raise LocalProtocolError("server/discover result is not an object")
        offered = result.get("supportedVersions")
        versions = [v for v in offered if isinstance(v, str)] if isinstance(offered, list) else []
        chosen = next((v for v in reversed(preferred) if v in versions), None)
        if chosen is None:
            raise LocalProtocolError(f"server supports none of our modern versions: {versions}")
        self.revision = REVISIONS[chosen]
        self._take_server(result)
        return self.revision

    def _take_server(self, result: dict[str, Any]) -> None:
        caps = result.get("capabilities")
        self.server_capabilities = caps if isinstance(caps, dict) else {}
        info = result.get("serverInfo")
        if not isinstance(info, dict):
            meta = result.get("_meta")
            info = meta.get(META_SERVER_INFO) if isinstance(meta, dict) else None
        self.server_info = info if isinstance(info, dict) else {}
        instr = result.get("instructions")
        self.instructions = instr if isinstance(instr, str) else None

    def modern_meta(self, version: str | None = None) -> dict[str, Any]:
        """The ``_meta`` every 2026-07-28 request carries (M-02, M-03)."""
        if version is None:
            version = self.revision.version if self.revision is not None else MODERN_VERSIONS[-1]
        meta: dict[str, Any] = {
            META_PROTOCOL_VERSION: version,
            META_CLIENT_CAPABILITIES: self.capabilities,
            META_CLIENT_INFO: self.client_info,
        }
        if self.log_level is not None:
            meta[META_LOG_LEVEL] = self.log_level
        return meta
