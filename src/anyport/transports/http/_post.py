"""A POST to the Streamable HTTP endpoint, after the Origin/Host check: its era, its session, its
checks in order (Accept/Content-Type -> session -> protocol version -> body, DIGEST §21), the
protocol core's verdict, and the run of its requests through the runtime (``answer_inline``, else
an ``Exchange``), answered by one writer (``_respond``).

The era is decided from the ``MCP-Protocol-Version`` header and the body
(``anyport.protocol.is_modern_post``): a request whose ``_meta`` names a protocol version (or whose
header names a 2026-07-28-era version) is served statelessly; everything else follows the legacy
session rules (T-HTTP-*).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from anyport._exceptions import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    RATE_LIMITED,
    ParseError,
)
from anyport.protocol import (
    META_PROTOCOL_VERSION,
    REVISIONS,
    IncomingRequest,
    NotificationReceived,
    Received,
    Reply,
    ServerConnection,
    carries_request,
    is_initialize,
    is_modern_post,
    loads,
    meta_version,
    metadata_mismatch,
    param_mismatch,
    readable_id,
)
from anyport.runtime import PRINCIPAL, answer_inline, hand_notification
from anyport.runtime._heap import Releaser, trim_heap
from anyport.state import Rate, RateLimiter
from anyport.transports.http._asgi import Receive, Send, error_body, reject, send_empty, send_json
from anyport.transports.http._exchange import Exchange, ExchangeOutlet, StreamOptions, resumable
from anyport.transports.http._gate import NO_SESSION_ID, UNKNOWN_SESSION, Gate, HTTPRequest, send_rejection
from anyport.transports.http._options import HTTPOptions
from anyport.transports.http._registry import LiveSessions, owns
from anyport.transports.http._respond import PostResponse, write_answer
from anyport.transports.http._sessions import HTTPSession

if TYPE_CHECKING:
    from anyport.runtime import Application

__all__ = ["ASSUMED_LEGACY_VERSION", "SESSION_HEADER", "PostHandler", "principal_key"]

log = logging.getLogger("anyport.http")

Headers = list[tuple[bytes, bytes]]

#: T-HTTP-44: without a header and without a session that knows better, assume this revision.
ASSUMED_LEGACY_VERSION = "2025-03-26"
SESSION_HEADER = b"mcp-session-id"


def principal_key() -> str | None:
    """The identity the current request's principal binds sessions to (None without auth)."""
    principal = PRINCIPAL.get()
    return None if principal is None else getattr(principal, "key", None)


class PostHandler:
    """Serves the POSTs of one app; owns the tasks of the handlers that could not run inline."""

    def __init__(
        self, server: Application, options: HTTPOptions, gate: Gate, sessions: LiveSessions, stream: StreamOptions,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.server = server
        #: Decides the rate limits of ``options`` (None: no limit is configured).
        self.limiter = limiter
        self.rate = options.request_rate
        self.tool_rates = options.tool_rates
        self.options = options
        #: Authentication (``options.auth``): scopes are checked here before a request runs.
        self.auth = options.auth
        self.gate = gate
        self.sessions = sessions
        self.stream_options = stream
        self._tasks: set[asyncio.Task[Any]] = set()
        #: After a burst of handlers ended (or the last one), their memory goes back (``anyport.runtime._heap``).
        self._releaser = Releaser(trim_heap)

    async def aclose(self) -> None:
        """Cancel every handler still running."""
        self._releaser.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def _spawn(self, coro: Coroutine[Any, Any, dict[str, Any]], context: contextvars.Context | None = None) -> asyncio.Task[dict[str, Any]]:
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._handler_done)
        return task

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._releaser.ended(last=not self._tasks)

    async def handle(self, req: HTTPRequest, receive: Receive, send: Send) -> None:
        """A POST to the endpoint that passed the Origin/Host check."""
        # 3. Accept / Content-Type (T-HTTP-06, T-H26-03).
        rejection = self.gate.media_refusal(req)
        if rejection is not None:
            await send_rejection(send, rejection)
            return
        client = self._client(req) if self.limiter is not None else ""
        if self.rate is not None and await self._limited(send, "c:" + client, self.rate, None):
            return
        body = await self.gate.read_body(req, receive)
        parsed: Any = None
        parse_error: ParseError | None = None
        if body is not None:
            try:
                parsed = loads(body)
            except ParseError as exc:
                parse_error = exc
        if self.tool_rates and await self._tool_limited(send, client, parsed):
            return
        if self.auth is not None and parsed is not None:
            refusal = self.scope_refusal(parsed)
            if refusal is not None:
                await reject(send, refusal.status, INVALID_REQUEST, refusal.message, id_=readable_id(parsed), headers=refusal.headers)
                return
        version = self.gate.version_header(req)
        if is_modern_post(version, parsed, self.server.modern_versions):
            await self._post_modern(req, receive, send, body, parsed, parse_error, version)
        else:
            await self._post_legacy(req, receive, send, body, parsed, parse_error, version)

    # -- scopes --------------------------------------------------------------------------------

    def scope_refusal(self, parsed: Any) -> Any:
        """403 ``insufficient_scope`` (A-27) when a request of the body calls a tool, reads a resource
        or gets a prompt that needs scopes the principal lacks; every scope needed is named once."""
        auth = self.auth
        if auth is None:
            return None
        needed: list[str] = []
        for message in parsed if isinstance(parsed, list) else (parsed,):
            if isinstance(message, dict) and "id" in message and isinstance(message.get("method"), str):
                params = message.get("params")
                for scope in self.server.required_scopes(message["method"], params if isinstance(params, dict) else {}):
                    if scope not in needed:
                        needed.append(scope)
        return auth.refusal_for_scopes(PRINCIPAL.get(), needed) if needed else None

    # -- rate limits ---------------------------------------------------------------------------

    async def limited(self, req: HTTPRequest, send: Send) -> bool:
        """The per-client rate for a request outside this endpoint (an HTTP+SSE message POST)."""
        if self.rate is None:
            return False
        return await self._limited(send, "c:" + self._client(req), self.rate, None)

    async def _limited(self, send: Send, key: str, rate: Rate, id_: str | int | None) -> bool:
        """Answers 429 + Retry-After + -32029 when ``rate`` refuses one more request for ``key``."""
        assert self.limiter is not None
        decision = await self.limiter.hit(key, rate)
        if decision.allowed:
            return False
        wait = max(1, math.ceil(decision.retry_after))
        await reject(
            send, 429, RATE_LIMITED, f"Too Many Requests: the limit is {rate}; retry in {decision.retry_after:.3g} s",
            id_=id_, data={"retryAfter": decision.retry_after, "limit": str(rate)},
            headers=[(b"retry-after", str(wait).encode())],
        )
        return True

    async def tools_limited(self, req: HTTPRequest, parsed: Any, send: Send) -> bool:
        """The per-tool rates for the messages of a request outside this endpoint (HTTP+SSE)."""
        return bool(self.tool_rates) and await self._tool_limited(send, self._client(req), parsed)

    def _client(self, req: HTTPRequest) -> str:
        """Whom a rate limit counts: the authenticated principal (issue 12: per principal when auth is
        on, wherever it connects from), else the client's address."""
        key = principal_key()
        return "p:" + key if key is not None else self.gate.client_key(req)

    async def _tool_limited(self, send: Send, client: str, parsed: Any) -> bool:
        """Per tool: every ``tools/call`` of the body counts against its tool's rate."""
        for message in parsed if isinstance(parsed, list) else (parsed,):
            if not isinstance(message, dict) or message.get("method") != "tools/call":
                continue
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            rate = self.tool_rates.get(name) if isinstance(name, str) else None
            if rate is not None and await self._limited(send, f"t:{client}:{name}", rate, readable_id(message)):
                return True
        return False

    # -- legacy era (2025-03-26 .. 2025-11-25) ---------------------------------------------------

    async def _post_legacy(
        self, req: HTTPRequest, receive: Receive, send: Send,
        body: bytes | None, parsed: Any, parse_error: ParseError | None, version: str | None,
    ) -> None:
        # 4. Session (T-HTTP-37..39).
        session: HTTPSession | None = None
        initialize = is_initialize(parsed)
        if not self.options.stateless:
            sid = req.get(b"mcp-session-id")
            if sid is not None:
                session = await self.sessions.get(sid.strip())
                if session is None or not owns(self.sessions, session.id, principal_key()):
                    # Another principal's session is as unknown as a made-up id (A-37, T-HTTP-34).
                    await reject(send, 404, INVALID_REQUEST, UNKNOWN_SESSION)
                    return
            elif not initialize and body is not None and parse_error is None:
                await reject(send, 400, INVALID_REQUEST, NO_SESSION_ID)
                return
        # 5. Protocol version header (T-HTTP-43..45), 6. the body.
        rejection = self.gate.legacy_version_refusal(version) or self.gate.body_refusal(body, parse_error)
        if rejection is not None:
            await send_rejection(send, rejection)
            return

        conn: ServerConnection
        if session is not None:
            conn = session.conn
        elif initialize:
            conn = self.server.open_connection()
            conn.max_inflight = self.options.limits.max_inflight  # it becomes the session's connection
        else:
            # Stateless: a throwaway connection that is already initialized (T-HTTP-44 decides the revision).
            conn = self.server.open_connection(assume_initialized=REVISIONS[version or ASSUMED_LEGACY_VERSION])
        received = conn.receive_obj(parsed)
        if session is not None:
            await self.sessions.save(session)  # log level, initialized: the record follows
        if not carries_request(parsed):
            # Only notifications and responses: 202 with no body (T-HTTP-08), or 400 for what was refused.
            exchange = self._exchange(conn, session, modern=False, batch=received.batch)
            exchange.start(received.events)
            errors = [ev.message for ev in received.events if isinstance(ev, Reply)]
            if errors:
                await send_json(send, 400, errors if received.batch else errors[0])
            else:
                await send_empty(send, 202)
            return

        headers: Headers = []
        if initialize and session is None and not self.options.stateless:
            reply = received.events[0] if received.events else None
            if isinstance(reply, Reply) and "result" in reply.message:
                session = await self.sessions.create(conn, principal_key())
                if session is None:
                    await reject(send, 503, INVALID_REQUEST, "Service Unavailable: too many sessions", headers=[(b"retry-after", b"5")])
                    return
                headers.append((SESSION_HEADER, session.id.encode()))  # T-HTTP-33: on this response only
                log.debug("session %s opened (%s)", session.id[:8], conn.revision.version if conn.revision else "?")
        await self._answer(conn, session, received, receive, send, headers, modern=False)

    async def _answer(
        self, conn: ServerConnection, session: HTTPSession | None, received: Received,
        receive: Receive, send: Send, headers: Headers, *, modern: bool,
    ) -> None:
        """Run the POST's requests and write their response."""
        events = received.events
        if len(events) == 1 and not received.batch:
            req = events[0]
            if type(req) is IncomingRequest:
                # The common case (one request, a handler that never waits): no Exchange.
                answer = answer_inline(self.server, req, ExchangeOutlet(None, session))
                if answer is not None:
                    stream = self.stream_options if resumable(session, modern=modern, json_response=self.options.json_response) else None
                    await write_answer(
                        conn, req, answer, session, send, headers, modern=modern, json_response=self.options.json_response, stream=stream,
                    )
                    return
        exchange = self._exchange(conn, session, modern=modern, batch=received.batch)
        exchange.start(events)
        await PostResponse(exchange, headers).write(receive, send)

    def _exchange(self, conn: ServerConnection, session: HTTPSession | None, *, modern: bool, batch: bool) -> Exchange:
        return Exchange(
            self.server, conn, session, modern=modern, batch=batch, json_response=self.options.json_response,
            request_timeout=self.options.request_timeout, keepalive=self.options.keepalive_interval, spawn=self._spawn,
            stream=self.stream_options, max_buffered=self.options.limits.max_buffered_events,
        )

    # -- 2026-07-28 ------------------------------------------------------------------------------

    async def _post_modern(
        self, req: HTTPRequest, receive: Receive, send: Send,
        body: bytes | None, parsed: Any, parse_error: ParseError | None, version: str | None,
    ) -> None:
        # 4. Session: none on 2026-07-28; Mcp-Session-Id is ignored (T-H26-24).
        # 5./6. The version header is compared with the body, so the body comes first here.
        rejection = self.gate.body_refusal(body, parse_error)
        if rejection is not None:
            await send_rejection(send, rejection)
            return
        if not isinstance(parsed, dict):
            await reject(send, 400, INVALID_REQUEST, "Invalid Request: 2026-07-28 takes one JSON-RPC message per POST")
            return
        conn = self.server.open_connection()
        if "method" not in parsed or "id" not in parsed:
            # A notification (202, T-H26-04); clients never send responses on 2026-07-28 (T-H26-03).
            if "method" not in parsed:
                await reject(send, 400, INVALID_REQUEST, "Invalid Request: 2026-07-28 clients do not send responses")
                return
            received = conn.receive_obj(parsed)
            errors = [ev.message for ev in received.events if isinstance(ev, Reply)]
            if errors:
                await send_json(send, 400, errors[0])
            else:
                for ev in received.events:
                    if isinstance(ev, NotificationReceived):
                        hand_notification(self.server, None, ev)
                await send_empty(send, 202)
            return
        id_ = readable_id(parsed)
        if meta_version(parsed) is None:
            # The body is not a 2026-07-28 request although the header says so: these are the core's
            # errors, not header mismatches. initialize no longer exists (404 + -32601, T-H26-13);
            # anything else lacks its required _meta (400 + -32602, M-04).
            if parsed.get("method") == "initialize":
                await send_json(send, 404, error_body(METHOD_NOT_FOUND, "Method not found: initialize (removed in 2026-07-28)", id_))
            else:
                await send_json(send, 400, error_body(INVALID_PARAMS, f"Missing required _meta field {META_PROTOCOL_VERSION!r}", id_))
            return
        mismatch = metadata_mismatch(req.get, parsed, version) or self._param_mismatch(req, parsed)
        if mismatch is not None:
            message, data = mismatch
            await send_json(send, 400, error_body(HEADER_MISMATCH, message, id_, data))
            return
        await self._answer(conn, None, conn.receive_obj(parsed), receive, send, [], modern=True)

    def _param_mismatch(self, req: HTTPRequest, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """T-H26-21 for a ``tools/call`` of a tool with ``x-mcp-header`` arguments."""
        if body.get("method") != "tools/call":
            return None
        params = body.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        decls = self.server.param_headers(name) if isinstance(name, str) else None
        if not decls or isinstance(decls, str):
            return None  # unknown tools and invalid declarations are the dispatcher's business
        return param_mismatch(req.get, params.get("arguments") if isinstance(params, dict) else None, decls)
