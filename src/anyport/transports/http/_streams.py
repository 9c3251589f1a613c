"""GET on the MCP endpoint (legacy sessions): the standalone stream and resumption (T-HTTP-19..32).

- ``GET`` without ``Last-Event-ID`` opens the session's **standalone stream**: it carries what
  server code sends with ``HTTPSession.notify`` (or ``StreamableHTTPApp.notify`` / ``broadcast``),
  delivered over the Bus key ``session:<id>``, never a response (T-HTTP-22, T-HTTP-23). One per
  session: a new GET **replaces** the previous one, which is ended (a client that lost its
  connection without the server noticing can always come back; no 409).
- ``GET`` with ``Last-Event-ID: <stream-id>:<seq>`` **resumes that stream** (T-HTTP-30/31): the
  events after the id are replayed from the ``EventLog``, then the stream continues live. For a
  POST's stream that means the rest of its events, the response included, after which the GET
  ends; the POST's own connection, if still open, is told to let go (Bus key
  ``control:<session>:<stream>``), so each message is written to exactly one connection
  (T-HTTP-26). For a standalone stream it means taking that stream over.
- An id that does not name a stream of *this* session (another session's, a forged or an expired
  one) replays nothing and is answered ``400`` (T-HTTP-32): not 404, which would tell the client
  its session is gone (T-HTTP-40).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

from anyport.state import Replay, Subscription, parse_event_id
from anyport.transports.http._exchange import (
    GET_STREAM,
    POST_STREAM,
    Receive,
    Send,
    StreamOptions,
    control_key,
    stream_key,
)
from anyport.transports.http._sessions import BROADCAST_KEY, HTTPSession, session_key
from anyport.transports.http._sse import SSE_HEADERS, comment, message_event, priming_event

__all__ = ["GetStreams"]


class _Done(Exception):
    """The stream is over (ended, taken over, session closed, shutdown)."""


class GetStreams:
    """Serves GET streams of legacy sessions; ``close_all`` ends them (shutdown)."""

    def __init__(self, options: StreamOptions, *, keepalive_interval: float = 15.0) -> None:
        self.options = options
        self.keepalive_interval = keepalive_interval
        self._stops: set[asyncio.Event] = set()

    def __len__(self) -> int:
        """GET streams open in this process."""
        return len(self._stops)

    def close_all(self) -> None:
        for stop in list(self._stops):
            stop.set()

    async def serve(self, session: HTTPSession, last_event_id: str | None, receive: Receive, send: Send) -> bool:
        """Hold one GET stream until it ends; False (nothing sent) when ``last_event_id`` is not ours."""
        bus, events = self.options.bus, self.options.events
        sid = session.id
        token = secrets.token_hex(8)
        takeover = {"control": "takeover", "token": token}
        replay: Replay | None = None
        if last_event_id is not None:
            parsed = parse_event_id(last_event_id)
            if parsed is None:
                return False
            stream_id = parsed[0]
            if stream_id.startswith(POST_STREAM):
                # Listen first, then take over and read the log: nothing falls between the two.
                sub = await bus.subscribe(stream_key(sid, stream_id), control_key(sid, stream_id))
                await bus.publish(control_key(sid, stream_id), takeover)
            elif stream_id.startswith(GET_STREAM):
                await bus.publish(session_key(sid), takeover)
                sub = await bus.subscribe(session_key(sid), BROADCAST_KEY)
            else:
                return False
            replay = await events.replay(sid, last_event_id)
            if replay is None:
                await sub.aclose()
                return False
        else:
            stream_id = await events.new_stream(sid, prefix=GET_STREAM)
            await bus.publish(session_key(sid), takeover)
            sub = await bus.subscribe(session_key(sid), BROADCAST_KEY)
        standalone = stream_id.startswith(GET_STREAM)
        stop = asyncio.Event()
        self._stops.add(stop)
        try:
            await self._run(session, stream_id, standalone, replay, sub, token, stop, receive, send)
        finally:
            self._stops.discard(stop)
            await sub.aclose()
        return True

    async def _run(
        self, session: HTTPSession, stream_id: str, standalone: bool, replay: Replay | None,
        sub: Subscription, token: str, stop: asyncio.Event, receive: Receive, send: Send,
    ) -> None:
        sid = session.id
        loop = asyncio.get_running_loop()
        gone = loop.create_task(_disconnected(receive))
        stopped = loop.create_task(stop.wait())
        getter: asyncio.Task[tuple[str, dict[str, Any]]] | None = None
        last_seq = -1

        async def write(body: bytes) -> None:
            await send({"type": "http.response.body", "body": body, "more_body": True})

        try:
            await send({"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)})
            if replay is not None:
                for ev in replay.events:
                    last_seq = ev.seq
                    if ev.message is not None:
                        await write(message_event(ev.message, event_id=ev.id))  # T-HTTP-31
                if replay.ended:
                    raise _Done
            else:
                rev = session.conn.revision
                if rev is not None and rev.priming_event:
                    event_id = await _append(self.options, sid, stream_id, None)
                    if event_id is not None:
                        await write(priming_event(event_id, retry_ms=self.options.retry_ms))
            while True:
                if getter is None:
                    getter = loop.create_task(sub.get())
                done, _ = await asyncio.wait(
                    {getter, gone, stopped}, timeout=self.keepalive_interval, return_when=asyncio.FIRST_COMPLETED
                )
                if gone in done:
                    return
                if stopped in done:
                    raise _Done  # shutdown
                if getter not in done:
                    await write(comment())
                    continue
                try:
                    _key, msg = getter.result()
                except EOFError:
                    raise _Done from None
                getter = None
                control = msg.get("control")
                if control == "takeover":
                    if msg.get("token") != token:
                        raise _Done  # a newer GET holds this stream now
                    continue
                if control in ("closed", "end"):
                    raise _Done  # session deleted / the POST's stream is complete (T-HTTP-17)
                message = msg.get("message")
                if not isinstance(message, dict):
                    continue
                if standalone:
                    event_id = await _append(self.options, sid, stream_id, message)
                    await write(message_event(message, event_id=event_id))
                else:
                    event_id = msg.get("id")
                    parsed = parse_event_id(event_id) if isinstance(event_id, str) else None
                    if parsed is None or parsed[1] <= last_seq:
                        continue  # already replayed from the log: exactly once
                    last_seq = parsed[1]
                    await write(message_event(message, event_id=event_id))
        except _Done:
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # the client went away while we wrote
        finally:
            for task in (getter, gone, stopped):
                if task is not None:
                    task.cancel()


async def _append(options: StreamOptions, sid: str, stream_id: str, message: dict[str, Any] | None) -> str | None:
    try:
        return await options.events.append(sid, stream_id, message)
    except KeyError:
        return None


async def _disconnected(receive: Receive) -> None:
    with contextlib.suppress(OSError):
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                return
