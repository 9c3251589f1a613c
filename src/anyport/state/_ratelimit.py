"""Rate limits (issue 12): one GCRA decision per request, in memory or shared by replicas in Redis.

GCRA, the generic cell rate algorithm, keeps ONE number per key: the theoretical arrival time
(TAT) of the next request if requests came exactly at the rate. For a ``Rate(count, per)`` the
emission interval is ``T = per / count``; a request of ``cost`` moves the TAT to
``max(TAT, now) + cost * T`` and is allowed when that new TAT is at most ``per`` ahead of now.
So a fresh key allows a burst of ``count`` requests, then one every ``T`` seconds, and a key
whose TAT has passed holds nothing worth keeping (it is the same as no key at all).

- ``MemoryRateLimiter``: one process (the default). Bounded: keys whose TAT has passed are dropped
  on a sweep every ``sweep_every`` seconds, and at most ``max_keys`` keys are kept (the least
  recently allowed key is evicted first: its client gets a fresh burst, nothing grows without end).
- ``RedisRateLimiter``: every replica sharing one Redis (or Redis Cluster) shares each limit.
  One Lua script per decision (atomic, one round trip) on the key ``<prefix>:rl:{<key>}`` (a hash
  tag: one slot, so it runs unchanged on a cluster). "Now" is the Redis server's clock (``TIME``),
  so replicas with skewed clocks agree. The key is written only when a request is allowed, with a
  ``PX`` expiry at its TAT: once the TAT has passed, the key is gone (nothing leaks).

Both compute in whole microseconds (``T`` rounded up to the microsecond, so a rate is never
exceeded; a burst is exactly ``count``), with the same integer steps: no rounding drift, identical
decisions for the same sequence of requests and times, ``retry_after`` exact to the microsecond.

Decisions, for ``hit(key, rate, cost)``:

- allowed: ``Decision(True, remaining, 0.0, rate.count)``, the cost is consumed;
- refused: ``Decision(False, remaining, retry_after, rate.count)``, nothing is consumed, and
  ``retry_after > 0`` is the wait until the same request would be allowed (HTTP ``Retry-After``);
- ``remaining``: how many requests of cost 1 would be allowed right now, after this decision;
- ``cost > rate.count`` can never be allowed: it is always refused (nothing consumed) with
  ``retry_after = ((cost - count) * T) + (time until the key is full again) > 0``, the formula's
  answer; callers should treat it as a request too large for the limit;
- ``cost < 1`` raises ``ValueError``.

A key is meant to be used with one rate; callers build keys such as ``"p:<principal>"`` or
``"p:<principal>:tool:<name>"`` (any string; the limiter adds its own prefix).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from anyport.state._redis import RedisState

__all__ = ["Decision", "MemoryRateLimiter", "Rate", "RateLimiter", "RedisRateLimiter"]

_US = 1_000_000  # microseconds per second: both limiters compute in microseconds

_UNITS: dict[str, float] = {
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86_400.0, "day": 86_400.0, "days": 86_400.0,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``per`` seconds: a burst of ``count``, then one every ``per / count``."""

    count: int
    per: float

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"a rate needs a whole count of at least 1, not {self.count!r}")
        if isinstance(self.per, bool) or not isinstance(self.per, int | float) or not (0 < self.per < math.inf):
            raise ValueError(f"a rate needs a period of more than 0 seconds, not {self.per!r}")

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"100/minute"``, ``"10/s"``, ``"5/10s"``, ``"1000/2h"``, ``"3/0.5s"``.

        ``N/[k]unit`` with unit one of s, sec, second(s), m, min, minute(s), h, hr, hour(s), d, day(s).
        """
        match = _RATE.match(text) if isinstance(text, str) else None
        unit = _UNITS.get(match.group(3).lower()) if match else None
        if match is None or unit is None:
            raise ValueError(
                f"not a rate: {text!r} (expected N/unit or N/<k>unit, such as '100/minute', '10/s' or '5/10s'; "
                "units: second, minute, hour, day or s, m, h, d)"
            )
        count = int(match.group(1))
        k = float(match.group(2)) if match.group(2) is not None else 1.0
        if count < 1 or k <= 0:
            raise ValueError(f"not a rate: {text!r} (the count and the period must be more than 0)")
        return cls(count, k * unit)

    @property
    def interval(self) -> float:
        """Seconds between two requests once the burst is spent: ``per / count``."""
        return self.per / self.count

    def __str__(self) -> str:
        return f"{self.count}/{self.per:g}s"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one request: allowed or not, what is left, how long to wait (seconds)."""

    allowed: bool
    remaining: int
    retry_after: float
    limit: int


class RateLimiter(Protocol):
    """Where the limits live: ``MemoryRateLimiter`` (one process) or ``RedisRateLimiter`` (replicas)."""

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        """Count a request of ``cost`` against ``key`` at ``rate``; refused requests consume nothing."""
        ...

    async def aclose(self) -> None:
        """Release resources; the in-memory limiter forgets every key."""
        ...


def _check_cost(cost: int) -> None:
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise ValueError(f"a request costs at least 1, not {cost!r}")


def _gcra(tat: int | None, now: int, interval: int, cost: int, count: int) -> tuple[bool, int, int, int]:
    """One GCRA step in whole microseconds: (allowed, remaining, retry_after_us, new_tat).

    The Lua script ``_GCRA`` below does exactly these steps; every value is a whole number well
    below 2**53, so Lua's doubles compute them exactly as Python's ints do.
    """
    period = interval * count
    base = now if tat is None or tat < now else tat
    new_tat = base + cost * interval
    allow_at = new_tat - period
    if allow_at > now:
        return False, max(0, (period - (base - now)) // interval), allow_at - now, base
    return True, (period - (new_tat - now)) // interval, 0, new_tat


def _decision(allowed: bool, remaining: int, retry_us: int, rate: Rate) -> Decision:
    return Decision(bool(allowed), int(remaining), 0.0 if allowed else int(retry_us) / _US, rate.count)


def _interval(rate: Rate) -> int:
    """The emission interval of ``rate`` in whole microseconds, rounded up (never above the rate)."""
    return max(1, math.ceil(rate.per * _US / rate.count - 1e-6))


class MemoryRateLimiter:
    """GCRA in this process's memory: one TAT (an int, microseconds) per key, bounded (see the module doc).

    ``clock`` gives seconds (``time.monotonic`` by default; a fake one in tests).
    """

    def __init__(
        self, *, max_keys: int = 100_000, sweep_every: float = 10.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, not {max_keys!r}")
        self.max_keys = max_keys
        self.sweep_every = sweep_every
        self._clock = clock
        #: key -> TAT in microseconds; insertion order = least recently allowed first (evicted first).
        self._tats: dict[str, int] = {}
        self._last_sweep = self._now()

    def _now(self) -> int:
        return round(self._clock() * _US)

    def __len__(self) -> int:
        """Keys held now (some may have passed their TAT until the next sweep)."""
        return len(self._tats)

    def _sweep(self, now: int) -> None:
        self._last_sweep = now
        for key in [k for k, tat in self._tats.items() if tat <= now]:
            del self._tats[key]

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        _check_cost(cost)
        now = self._now()
        if now - self._last_sweep >= self.sweep_every * _US:
            self._sweep(now)
        allowed, remaining, retry_us, new_tat = _gcra(self._tats.get(key), now, _interval(rate), cost, rate.count)
        if allowed:
            self._tats.pop(key, None)  # re-inserted at the end: the most recently used key
            while len(self._tats) >= self.max_keys:
                del self._tats[next(iter(self._tats))]
            self._tats[key] = new_tat
        return _decision(allowed, remaining, retry_us, rate)

    async def aclose(self) -> None:
        self._tats.clear()


# KEYS: the limit's key. ARGV: emission interval (us), count, cost, now (us; "" = Redis TIME).
# Returns {allowed (1/0), remaining, retry_after (us)}: the same steps as _gcra above.
_GCRA = """
local interval = tonumber(ARGV[1])
local period = interval * tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[4])
end
local base = now
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if tat and tat >= now then base = tat end
local new_tat = base + cost * interval
local allow_at = new_tat - period
if allow_at > now then
  return {0, math.max(0, math.floor((period - (base - now)) / interval)), allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((period - (new_tat - now)) / interval), 0}
"""


class RedisRateLimiter:
    """GCRA shared by every replica of one ``RedisState`` (see the module doc): one script per decision.

    ``clock`` (seconds) replaces the Redis server's clock: for tests only, every replica must use
    the server's clock (the default) to agree.
    """

    def __init__(self, state: RedisState, *, clock: Callable[[], float] | None = None) -> None:
        self._state = state
        self._clock = clock
        self._script: Any = state.client.register_script(_GCRA)

    def key(self, key: str) -> str:
        """The Redis key of limit ``key``: ``<prefix>:rl:{<key>}`` (one slot)."""
        return f"{self._state.prefix}:rl:{{{key}}}"

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        _check_cost(cost)
        now = "" if self._clock is None else str(round(self._clock() * _US))
        allowed, remaining, retry_us = await self._script(keys=[self.key(key)], args=[_interval(rate), rate.count, cost, now])
        return _decision(bool(int(allowed)), int(remaining), int(retry_us), rate)

    async def aclose(self) -> None:
        return None  # the connections belong to the RedisState
