"""Streamable HTTP, client side: the standalone GET stream of a legacy session (T-HTTP-19..24).

A ``StreamableHTTPClientStream`` owns one ``Listener``. Once ``notifications/initialized`` of a
legacy session was accepted, it opens one background GET (``Accept: text/event-stream``, the
session id and the negotiated version, T-HTTP-20) for what the server sends unasked; those
messages go through the stream's one inbound path (T-HTTP-22). 405 (also 404, or 400 to a GET
without ``Last-Event-ID``) means there is no such stream (T-HTTP-21): it stops without a word.
A stream that ends or breaks is reopened with ``Last-Event-ID`` (T-HTTP-30) after ``retry:``
(T-HTTP-13) or ``default_retry`` seconds, doubled per attempt that brought nothing (at most
``max_reconnects`` in a row); an event id already delivered is not delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from anyport.protocol import REVISIONS, SSEParser
from anyport.transports.http._client_httpx import load_httpx

if TYPE_CHECKING:
    from anyport.transports.http.client import StreamableHTTPClientStream

__all__ = ["LISTEN_MAX_DELAY", "LISTEN_OPEN_WAIT", "Listener"]

log = logging.getLogger("anyport.http.client")

#: Seconds ``send(notifications/initialized)`` waits for the answer to the listening GET, so what the
#: server sends unasked right after the handshake is not lost (the GET goes on in the background).
LISTEN_OPEN_WAIT = 2.0
#: Upper bound of the backoff between listening GETs that brought nothing (seconds).
LISTEN_MAX_DELAY = 30.0
#: How many event ids of the standalone stream are remembered to drop redeliveries.
_SEEN_EVENT_IDS = 1024
#: Client capabilities that let the server ask something (elicitation/create, sampling, roots/list, tasks).
_ASKABLE_CLIENT_CAPS = ("elicitation", "sampling", "roots", "tasks")


def _may_speak_unasked(server_caps: Mapping[str, Any], client_caps: Mapping[str, Any]) -> bool:
    """True when the capabilities exchanged allow server messages no request asked for.

    The server may ask the client (it declared elicitation, sampling, roots or tasks), or the server
    declared logging, tasks, or any ``listChanged`` / ``subscribe`` capability.
    """
    if any(key in client_caps for key in _ASKABLE_CLIENT_CAPS):
        return True
    if "logging" in server_caps or "tasks" in server_caps:
        return True
    return any(
        isinstance(cap, dict) and (cap.get("listChanged") is True or cap.get("subscribe") is True)
        for cap in server_caps.values()
    )


def _refusal(status: int, resumed: bool) -> Literal["stop", "again", "fresh"]:
    """What a GET answered with something else than an event stream means.

    405 is "no GET stream here" (T-HTTP-21); servers also say it with 404 or 400. A 400 to a
    ``Last-Event-ID`` is a resumption refused (an expired or unknown id): start a new stream.
    408, 429 and 5xx are passing troubles: try again later. Anything else (401, 403, 406, a
    2xx that is no event stream, ...) will not get better by asking again.
    """
    if status in (408, 429) or status >= 500:
        return "again"
    if status == 400 and resumed:
        return "fresh"
    return "stop"


class Listener:
    """The standalone GET stream of one ``StreamableHTTPClientStream`` (its url, client, queue)."""

    __slots__ = ("_seen", "_seen_order", "_sse_read_timeout", "_stream", "_timeout", "client_caps", "server_caps", "task")

    def __init__(self, stream: StreamableHTTPClientStream, timeout: float, sse_read_timeout: float | None) -> None:
        self._stream = stream
        self._timeout = timeout
        self._sse_read_timeout = sse_read_timeout
        #: The capabilities of the last ``initialize`` request and result (for ``listen="auto"``).
        self.client_caps: dict[str, Any] = {}
        self.server_caps: dict[str, Any] = {}
        self.task: asyncio.Task[None] | None = None
        self._seen_order: deque[str] = deque()
        self._seen: set[str] = set()

    @property
    def listening(self) -> bool:
        """True while the GET stream's task runs (connected or waiting to reconnect)."""
        return self.task is not None and not self.task.done()

    def wanted(self) -> bool:
        s = self._stream
        if s.listen is False or s._closed or s._failure is not None or s.protocol_version is None:
            return False
        rev = REVISIONS.get(s.protocol_version)
        if rev is not None and rev.modern:
            return False  # 2026-07-28 has no GET stream: subscriptions/listen plays that role
        return s.listen is True or _may_speak_unasked(self.server_caps, self.client_caps)

    async def start(self) -> None:
        """After ``notifications/initialized``: open the GET stream, wait (bounded) for its answer."""
        self.stop()
        if not self.wanted():
            return
        tasks = self._stream._tasks
        opened = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._listen(opened))
        self.task = task
        tasks.add(task)  # aclose() of the stream cancels it with the exchanges
        task.add_done_callback(tasks.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(opened.wait(), LISTEN_OPEN_WAIT)

    def stop(self) -> None:
        """Cancel the GET stream and forget its event ids (a new handshake, or none wanted)."""
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self._seen_order.clear()
        self._seen.clear()

    def cancel(self) -> None:
        """The session is gone: nothing more will come for it."""
        if self.task is not None:
            self.task.cancel()

    def _delay(self, retry_ms: int | None, failures: int) -> float:
        """The server's ``retry:`` (T-HTTP-13) or ``default_retry``; doubled per empty attempt, capped."""
        base = retry_ms / 1000 if retry_ms is not None else self._stream.default_retry
        if failures <= 1:
            return base
        return max(base, min(base * (1 << (failures - 1)), LISTEN_MAX_DELAY))

    def _first_time(self, event_id: str) -> bool:
        """False for an event id of the standalone stream already delivered (a replay overlap)."""
        if not event_id:
            return True
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        self._seen_order.append(event_id)
        if len(self._seen_order) > _SEEN_EVENT_IDS:
            self._seen.discard(self._seen_order.popleft())
        return True

    async def _listen(self, opened: asyncio.Event) -> None:
        """Hold the standalone GET stream until close(), a refusal, or too many empty attempts."""
        s = self._stream
        hx = load_httpx()
        last_id = ""
        retry_ms: int | None = None
        failures = 0
        try:
            while not s._closed and s._failure is None:
                parser = SSEParser(last_id)
                parser.retry = retry_ms
                progressed = False
                try:
                    async with s._client.stream(
                        "GET", s.url, headers=s._get_headers(last_id),
                        timeout=hx.Timeout(self._timeout, read=self._sse_read_timeout),
                    ) as resp:
                        opened.set()
                        ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                        if resp.status_code != 200 or ctype != "text/event-stream":
                            await resp.aread()
                            verdict = _refusal(resp.status_code, bool(last_id))
                            if verdict == "stop":
                                log.debug("no standalone GET stream (HTTP %s): not listening", resp.status_code)
                                return
                            if verdict == "fresh":
                                log.debug("resumption with Last-Event-ID refused (HTTP 400): opening a new stream")
                                parser.last_event_id = ""
                        else:
                            async for chunk in resp.aiter_bytes():
                                progressed = True  # bytes, even a keep-alive comment: the server is there
                                for ev in parser.feed(chunk):
                                    if ev.event == "message" and ev.data.strip() and self._first_time(ev.id):
                                        s._deliver(ev.data, None)  # T-HTTP-22: into the one inbound path
                except hx.HTTPError as exc:
                    log.debug("the standalone GET stream broke: %r", exc)
                opened.set()
                last_id = parser.last_event_id  # T-HTTP-30: kept even when nothing new came
                retry_ms = parser.retry
                failures = 0 if progressed else failures + 1
                if failures > s.max_reconnects:
                    log.debug("the standalone GET stream brought nothing %d times in a row: not listening", failures)
                    return
                await asyncio.sleep(self._delay(retry_ms, failures))
        except Exception:  # never let the listener take the connection down
            log.debug("the standalone GET stream failed", exc_info=True)
        finally:
            opened.set()
