"""The Redis deployment an app shares with its replicas (``HTTPOptions.redis``): made, checked and
closed by the app, its backends handed to the session registry, the event log, the bus and the
rate limiter (docs/scaling.md)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from anyport.limits import Limits
from anyport.state import RedisState
from anyport.transports.http._options import HTTPOptions

__all__ = ["redacted", "redis_of", "redis_failure", "close_redis"]


def redis_of(options: HTTPOptions, limits: Limits) -> RedisState | None:
    """The ``RedisState`` of ``options.redis``, or None. A stream of a session idle past its timeout
    cannot be resumed (the session is gone): its events expire with it, so Redis holds nothing of
    expired sessions for long."""
    if options.redis is None:
        return None
    idle = limits.session_idle_timeout
    return RedisState.from_url(
        options.redis, prefix=options.redis_prefix, session_ttl=idle, max_events=limits.max_events_per_stream,
        max_streams=limits.max_streams_per_session, event_ttl=min(600.0, idle), open_ttl=idle + 60.0,
    )


async def redis_failure(redis: RedisState | None) -> str | None:
    """Why the shared state cannot be used (one line), or None when it answers (or there is none)."""
    if redis is None:
        return None
    try:
        async with asyncio.timeout(2.0):
            await redis.ping()
    except Exception as exc:
        return f"Redis at {redacted(redis.url)} is unreachable: {type(exc).__name__}: {exc}".splitlines()[0]
    return None


async def close_redis(redis: RedisState | None) -> None:
    if redis is not None:
        with contextlib.suppress(Exception):
            await redis.aclose()


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
    return parts._replace(netloc=netloc).geturl()
