"""Every limit that protects a server from its clients, in one place (docs/limits.md).

```python
from anyport import Limits
from anyport.transports.http import create_app

app = create_app(server, limits=Limits(max_sessions=500, session_idle_timeout=300))
server.run("stdio", limits=Limits(max_message_bytes=1 << 20))
```

``anyport serve`` sets each one with a flag and an environment variable (``--max-sessions`` /
``ANYPORT_MAX_SESSIONS``, ...). What a client sees when it meets a limit:

| limit | default | where | the client sees |
|---|---|---|---|
| ``max_message_bytes`` | 8 MiB | one stdio line | -32600 with the request's id (read from the line's head); the next line is served |
| ``max_body_bytes`` | 4 MiB | one HTTP POST body | HTTP 413 + -32600 |
| ``body_timeout`` | 30 s | reading one HTTP body | HTTP 408 + -32600 |
| ``max_sessions`` | 10,000 | live legacy sessions / HTTP+SSE connections of a process | HTTP 503 + ``Retry-After`` |
| ``session_idle_timeout`` | 1,800 s | a legacy session with no request and no open stream | HTTP 404 afterwards: start a new session |
| ``max_inflight`` | 1,000 | requests running at once on one stdio connection, legacy session or HTTP+SSE connection | -32000 ``Server busy`` for the request over the limit |
| ``max_buffered_events`` | 256 | notifications held for a client that reads slowly, per response stream | nothing lost but superseded progress: the handler waits |
| ``max_events_per_stream`` | 1,000 | events kept per resumable SSE stream for ``Last-Event-ID`` | older events cannot be replayed |
| ``max_streams_per_session`` | 100 | resumable SSE streams kept per session | the oldest stream cannot be resumed |

Backpressure (``max_buffered_events``): when a response stream holds that many notifications the
client has not read, a new progress notification replaces the newest queued one of the same
progressToken (the latest progress wins; values still increase), and any other message waits
until the writer made room. On stdio the output pipe is the buffer: a handler waits while more
than 1 MiB of output is unread. A stream whose client is gone drops what is sent to it (a
resumable legacy stream logs it instead, within ``max_events_per_stream``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from anyport.protocol._connection import DEFAULT_MAX_INFLIGHT

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one server (see the module docs for what each one does when it is hit)."""

    max_message_bytes: int = 8 * 1024 * 1024
    max_body_bytes: int = 4 * 1024 * 1024
    body_timeout: float = 30.0
    max_sessions: int = 10_000
    session_idle_timeout: float = 1800.0
    max_inflight: int = DEFAULT_MAX_INFLIGHT  # 1000, the core's own default
    max_buffered_events: int = 256
    max_events_per_stream: int = 1000
    max_streams_per_session: int = 100

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{f.name} must be a positive number, not {value!r}")
            if f.type == "int" and not isinstance(value, int):
                raise ValueError(f"Limits.{f.name} must be an integer, not {value!r}")
