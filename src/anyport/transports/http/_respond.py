"""Writing the response to a POST that carried requests: one writer, which decides once.

``write_answer`` writes the common case, one request already answered inline, in one piece.
``PostResponse`` writes what an ``Exchange`` produces. It picks the response's shape once, when
it is made:

======================  =====================================================================
``JSON``                ``json_response``, or a body with no request (only refusals): the final
                        answers as one JSON document (a batch as an array, T-HTTP-10)
``SSE``                 an event stream carrying the handlers' notifications, then the answers
                        (T-HTTP-14, T-HTTP-15, T-H26-05..07); an early error with an HTTP status of
                        its own goes as JSON with that status instead (T-H26-13)
``RESUMABLE``           a legacy session's SSE stream: event ids, priming event, every event
                        logged and published for a resuming GET (T-HTTP-11..13, T-HTTP-27..31)
======================  =====================================================================

and whether it is written ``whole`` (every handler already finished: no watcher, no relay, no
task) or as the handlers produce. It reads the exchange's queue and tells the exchange only that
the client went away (``Exchange.disconnected``); it calls nothing of the app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from anyport.protocol import (
    SSE_HEADERS,
    IncomingRequest,
    ServerConnection,
    comment,
    dumps,
    message_event,
    priming_event,
    retry_field,
    status_for,
)
from anyport.state import Subscription
from anyport.transports.http._asgi import Receive, Send, send_body, send_json, send_sse_whole
from anyport.transports.http._exchange import (
    DISCONNECTED,
    POLL,
    POST_STREAM,
    TAKEOVER,
    Exchange,
    Item,
    StreamOptions,
    control_key,
    stream_key,
)
from anyport.transports.http._sessions import HTTPSession

__all__ = ["JSON", "RESUMABLE", "SSE", "PostResponse", "write_answer"]

Headers = list[tuple[bytes, bytes]]

log = logging.getLogger("anyport.http")

JSON = "json"
SSE = "sse"
RESUMABLE = "resumable"


async def write_answer(
    conn: ServerConnection, req: IncomingRequest, answer: dict[str, Any], session: HTTPSession | None,
    send: Send, headers: Headers, *, modern: bool, json_response: bool, stream: StreamOptions | None = None,
) -> None:
    """The common POST, without an ``Exchange``: one request already answered inline
    (``anyport.runtime.answer_inline``), written in one piece. With ``stream`` (a legacy session's
    resumable SSE response) its events are logged first, as ``PostResponse`` logs them."""
    msg = answer if conn.finish(req.id) else None
    try:
        if stream is not None and session is not None and msg is not None:
            store_behind = getattr(stream.events, "store_behind", None)
            if store_behind is not None:
                # A log that stores streams in batches behind their answers (Redis): the ids are
                # known now, the stream is stored within a millisecond or two. A client that loses
                # this one-piece response resumes after reconnecting, by when it is stored.
                body, waited = _written_behind(stream, session.id, conn, msg, store_behind)
                if waited is not None:
                    await waited  # too many streams wait to be stored: this answer waits for them
            else:
                _, body = await _logged_stream(stream, session.id, conn, [msg])
            await send_sse_whole(send, body, headers)
            return
        await _write_one(send, msg, headers, modern=modern, json_response=json_response)
    except OSError:
        pass  # the client went away; a logged stream can still be resumed


def _written_behind(
    stream: StreamOptions, sid: str, conn: ServerConnection, msg: dict[str, Any], store_behind: Any,
) -> tuple[bytes, Any]:
    """The SSE bytes of a one-answer resumable stream whose ids ``plan_stream`` gives, and what
    ``store_behind`` returned for it (a future to await first, or None)."""
    rev = conn.revision
    priming = rev is not None and rev.priming_event
    name, priming_id, ids = stream.events.plan_stream(1, prefix=POST_STREAM, priming=priming)  # type: ignore[attr-defined]
    waited = store_behind(sid, name, [msg], priming=priming)
    head = priming_event(priming_id, retry_ms=stream.retry_ms) if priming_id is not None else b""
    return head + message_event(msg, event_id=ids[0]), waited


async def _write_one(send: Send, msg: dict[str, Any] | None, headers: Headers, *, modern: bool, json_response: bool) -> None:
    """The response to a POST of one request: JSON, or SSE that carries only the answer (an error
    that has an HTTP status of its own goes as JSON with it, T-H26-13), or 202 when the request was
    cancelled (U-04)."""
    if msg is None:
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    status = status_for(msg, modern=modern)
    if json_response or status != 200:
        await send_body(send, status, dumps(msg), b"application/json", headers)
        return
    await send_sse_whole(send, message_event(msg), headers)


async def _logged_stream(
    stream: StreamOptions, sid: str, conn: ServerConnection, messages: Iterable[dict[str, Any]]
) -> tuple[str, bytes]:
    """A complete resumable stream: a new stream in the event log, its priming event (T-HTTP-11)
    and every message logged (T-HTTP-27..31), the stream ended; its id and its SSE bytes. A log
    that can store a whole stream at once (``log_stream``: Redis, one round trip) is asked to."""
    rev = conn.revision
    log_stream = getattr(stream.events, "log_stream", None)
    if log_stream is not None:
        messages = list(messages)
        stream_id, priming_id, ids = await log_stream(
            sid, messages, prefix=POST_STREAM, priming=rev is not None and rev.priming_event,
        )
        head = [priming_event(priming_id, retry_ms=stream.retry_ms)] if priming_id is not None else []
        return stream_id, b"".join([*head, *(message_event(m, event_id=i) for m, i in zip(messages, ids, strict=True))])
    stream_id = await stream.events.new_stream(sid, prefix=POST_STREAM)
    parts: list[bytes] = []
    if rev is not None and rev.priming_event:
        event_id = await _append(stream, sid, stream_id, None)
        if event_id is not None:
            parts.append(priming_event(event_id, retry_ms=stream.retry_ms))
    for message in messages:
        event_id = await _append(stream, sid, stream_id, message)
        parts.append(message_event(message, event_id=event_id))
    await stream.events.end_stream(sid, stream_id)
    return stream_id, b"".join(parts)


async def _append(stream: StreamOptions, sid: str, stream_id: str, message: dict[str, Any] | None) -> str | None:
    """The event's id once logged; None when it cannot be: the session's events were dropped
    (DELETE), or the log failed (Redis down). The event still goes to the client, without an id:
    once a response has begun, losing resumability is better than cutting the answer off."""
    try:
        return await stream.events.append(sid, stream_id, message)
    except KeyError:
        return None
    except Exception as exc:
        log.warning("stream %s of session %s: an event could not be logged (%s); sent without an id", stream_id, sid[:8], exc)
        return None


async def _quietly(what: str, coro: Any) -> None:
    """A write to shared state after the response began: a failure is logged, not raised."""
    try:
        await coro
    except Exception as exc:
        log.warning("%s failed: %s", what, exc)


def _hold(stream: StreamOptions, sid: str, stream_id: str, request_ids: list[str | int]) -> asyncio.Task[None] | None:
    """With an event log that keeps leases (Redis): claim the stream for this replica and renew the
    claim every third of ``stream.lease`` until cancelled; None otherwise."""
    claim = getattr(stream.events, "claim_stream", None)
    if claim is None:
        return None

    async def renew() -> None:
        ids: list[str | int] | None = list(request_ids)
        while True:
            try:
                await claim(sid, stream_id, stream.lease, ids)
                ids = None
            except Exception:
                log.warning("could not renew the lease of stream %s", stream_id, exc_info=True)
            await asyncio.sleep(stream.lease / 3)

    return asyncio.get_running_loop().create_task(renew())


async def _end_body(send: Send, *, retry_ms: int | None = None) -> None:
    try:
        if retry_ms is not None:
            await send({"type": "http.response.body", "body": retry_field(retry_ms), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        pass


class PostResponse:
    """The response to one ``Exchange``: its shape decided once (see the module docstring)."""

    __slots__ = ("ex", "headers", "shape", "whole")

    def __init__(self, ex: Exchange, headers: Headers) -> None:
        self.ex = ex
        self.headers = headers
        self.shape = JSON if ex.json_response or not ex.has_handlers else RESUMABLE if ex.stream is not None else SSE
        #: Every handler already finished (inline): the whole response is written at once.
        self.whole = not ex.running

    async def write(self, receive: Receive, send: Send) -> None:
        if self.whole:
            if self.shape == RESUMABLE:
                await self._whole_resumable(send)
            else:
                await self._whole(send)
            return
        ex = self.ex
        watcher = asyncio.get_running_loop().create_task(self._watch(receive))
        session = ex.session if self.shape != RESUMABLE else None  # a resumable stream attaches by itself
        if session is not None:
            session.attach()
        try:
            if self.shape == JSON:
                await self._json(send)
            elif self.shape == RESUMABLE:
                assert ex.stream is not None
                await self._resumable(send, ex.stream)
            else:
                await self._sse(send)
        except OSError:
            ex.disconnected()  # the client went away while we wrote
        finally:
            ex.close()
            watcher.cancel()
            if session is not None:
                session.detach()

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                self.ex.disconnected()
                self.ex.signal(DISCONNECTED)
                return

    # -- every handler already finished ------------------------------------------------------------

    async def _whole(self, send: Send) -> None:
        """Write the whole response at once, no tasks."""
        ex = self.ex
        items = ex.drain()
        try:
            if self.shape == JSON:
                await self._send_finals([i.message for i in items if i.final and i.message is not None], send)
                return
            first = items[0] if items else None
            if first is not None and not ex.batch and first.final and first.message is not None:
                status = status_for(first.message, modern=ex.modern)
                if status != 200:
                    await send_json(send, status, first.message, self.headers)  # T-H26-13
                    return
            body = b"".join(message_event(i.message) for i in items if i.message is not None)
            await send_sse_whole(send, body, self.headers)
        except OSError:
            pass  # the client went away; nothing is running that could notice

    async def _whole_resumable(self, send: Send) -> None:
        """A legacy session's SSE stream whose handlers all finished inline: log every event (a client
        that loses the connection can still resume, T-HTTP-27..31), end the stream, and write it in
        one piece. No control subscription, relay or watcher: the stream is complete before anyone
        could ask to take it over."""
        ex = self.ex
        assert ex.session is not None and ex.stream is not None
        messages = [i.message for i in ex.drain() if i.message is not None]
        ex.stream_id, body = await _logged_stream(ex.stream, ex.session.id, ex.conn, messages)
        try:
            await send_sse_whole(send, body, self.headers)
        except OSError:
            pass  # the client went away: it can resume from the log

    async def _send_finals(self, finals: list[dict[str, Any]], send: Send) -> None:
        if self.ex.batch and finals:
            await send_body(send, 200, dumps(finals), b"application/json", self.headers)
        else:
            # One answer, or none when every request was cancelled (U-04).
            await _write_one(send, finals[0] if finals else None, self.headers, modern=self.ex.modern, json_response=True)

    # -- as the handlers produce -------------------------------------------------------------------

    async def _json(self, send: Send) -> None:
        ex = self.ex
        finals: list[dict[str, Any]] = []
        while ex.outstanding > 0:
            item = await ex.next(forever=True)
            if item is DISCONNECTED:
                return
            assert isinstance(item, Item)
            if item.final:
                ex.outstanding -= 1
                if item.message is not None:
                    finals.append(item.message)
        await self._send_finals(finals, send)

    async def _sse(self, send: Send) -> None:
        ex, headers = self.ex, self.headers
        # Hold the headers back briefly: an early error gets its own HTTP status (T-H26-13).
        item = await ex.next()
        if item is DISCONNECTED:
            return
        if isinstance(item, Item) and not ex.batch and item.final and item.message is not None:
            status = status_for(item.message, modern=ex.modern)
            if status != 200:
                ex.outstanding -= 1
                await send_json(send, status, item.message, headers)
                return
        await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
        while True:
            if item is DISCONNECTED:
                return
            if isinstance(item, Item):
                if item.final:
                    ex.outstanding -= 1
                if item.message is not None:
                    await send({"type": "http.response.body", "body": message_event(item.message), "more_body": True})
            else:
                # Nothing for a while: a comment keeps proxies from closing the connection.
                await send({"type": "http.response.body", "body": comment(), "more_body": True})
            if ex.outstanding <= 0:
                break
            item = await ex.next()
        await send({"type": "http.response.body", "body": b"", "more_body": False})  # T-HTTP-17

    async def _resumable(self, send: Send, stream: StreamOptions) -> None:
        """A legacy session's SSE stream: ids, priming, event log, polling, hand-over to a resuming GET."""
        ex = self.ex
        session = ex.session
        assert session is not None
        sid = session.id
        rev = ex.conn.revision
        priming = rev is not None and rev.priming_event
        loop = asyncio.get_running_loop()
        ex.stream_id = stream_id = await stream.events.new_stream(sid, prefix=POST_STREAM)
        key = stream_key(sid, stream_id)
        lease = _hold(stream, sid, stream_id, ex.request_ids)
        control = await stream.bus.subscribe(control_key(sid, stream_id))
        relay = loop.create_task(self._relay_control(control))
        poll: asyncio.TimerHandle | None = None
        attached = True
        session.attach()

        def detach() -> None:
            nonlocal attached
            if attached:
                attached = False
                session.detach()

        try:
            try:
                await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *self.headers]})
                if priming:
                    event_id = await _append(stream, sid, stream_id, None)
                    if event_id is not None:
                        body = priming_event(event_id, retry_ms=stream.retry_ms)
                        await send({"type": "http.response.body", "body": body, "more_body": True})  # T-HTTP-11
                        if stream.poll_after is not None:
                            poll = loop.call_later(max(0.0, stream.poll_after), ex.signal, POLL)
            except OSError:
                detach()
            while ex.outstanding > 0:
                item = await ex.next()
                if item is DISCONNECTED or item is TAKEOVER or item is POLL:
                    if attached:
                        detach()
                        if item is not DISCONNECTED:
                            # T-HTTP-12/13: the stream stays open; the client resumes it with GET.
                            await _end_body(send, retry_ms=stream.retry_ms if item is POLL else None)
                    continue
                if isinstance(item, Item):
                    if item.final:
                        ex.outstanding -= 1
                    if item.message is None:
                        continue
                    event_id = await _append(stream, sid, stream_id, item.message)
                    if event_id is not None:
                        await _quietly("publishing an event", stream.bus.publish(key, {"id": event_id, "message": item.message}))
                    if attached:
                        try:
                            event = message_event(item.message, event_id=event_id)
                            await send({"type": "http.response.body", "body": event, "more_body": True})
                        except OSError:
                            detach()
                elif attached:
                    try:
                        await send({"type": "http.response.body", "body": comment(), "more_body": True})
                    except OSError:
                        detach()
            await _quietly("ending a stream", stream.events.end_stream(sid, stream_id))
            await _quietly("publishing a stream's end", stream.bus.publish(key, {"control": "end"}))
            if attached:
                await _end_body(send)  # T-HTTP-17
        finally:
            detach()
            if poll is not None:
                poll.cancel()
            relay.cancel()
            if lease is not None:
                lease.cancel()
            await control.aclose()

    async def _relay_control(self, control: Subscription) -> None:
        """A GET that resumed this stream asks for it: stop writing to our own connection."""
        try:
            while True:
                _key, message = await control.get()
                if message.get("control") == "takeover":
                    self.ex.signal(TAKEOVER)
        except EOFError:
            return
