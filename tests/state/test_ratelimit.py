"""Rate limits (issue 12): ``Rate.parse``, the in-memory GCRA with a fake clock, and the Redis GCRA
against a real redis-server and a real 3-master Redis Cluster (shared by replicas, keys expire,
concurrent hits never exceed the limit, the same decisions as in memory)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from anyport.state import Decision, MemoryRateLimiter, Rate, RateLimiter, RedisRateLimiter, RedisState
from tests.redis_servers import RedisServer, redis_keys


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- Rate ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "count", "per"), [
    ("100/minute", 100, 60.0),
    ("10/second", 10, 1.0),
    ("5/hour", 5, 3600.0),
    ("1/day", 1, 86_400.0),
    ("10/s", 10, 1.0),
    ("2/m", 2, 60.0),
    ("7/h", 7, 3600.0),
    ("3/d", 3, 86_400.0),
    ("5/10s", 5, 10.0),
    ("1000/2h", 1000, 7200.0),
    ("30/15min", 30, 900.0),
    ("3/0.5s", 3, 0.5),
    (" 20 / 3 Minutes ", 20, 180.0),
    ("4/SECONDS", 4, 1.0),
])
def test_rate_parse(text: str, count: int, per: float) -> None:
    assert Rate.parse(text) == Rate(count, per)


@pytest.mark.parametrize("text", [
    "", "100", "/minute", "100/", "abc/minute", "1.5/s", "-1/s", "0/s", "5/0s", "5/-2s", "5/fortnight",
    "5/10", "5/s/s", "5 per minute", "5/1e3s",
])
def test_rate_parse_refuses_what_is_not_a_rate(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate.parse(text)


def test_rate_checks_its_fields() -> None:
    for count, per in ((0, 1.0), (-1, 1.0), (1.5, 1.0), (True, 1.0), (1, 0.0), (1, -1.0), (1, float("inf")), (1, float("nan"))):
        with pytest.raises(ValueError):
            Rate(count, per)  # type: ignore[arg-type]
    rate = Rate.parse("100/minute")
    assert rate.interval == pytest.approx(0.6)
    assert str(rate) == "100/60s"
    assert Rate.parse(str(Rate(3, 0.5))) == Rate(3, 0.5)


# -- MemoryRateLimiter ---------------------------------------------------------------------------


async def test_memory_burst_then_one_per_interval() -> None:
    clock = FakeClock()
    limiter: RateLimiter = MemoryRateLimiter(clock=clock)
    rate = Rate(4, 1.0)  # a burst of 4, then one every 0.25 s
    assert [await limiter.hit("k", rate) for _ in range(4)] == [Decision(True, n, 0.0, 4) for n in (3, 2, 1, 0)]
    assert await limiter.hit("k", rate) == Decision(False, 0, 0.25, 4)
    clock.t += 0.1
    assert await limiter.hit("k", rate) == Decision(False, 0, 0.15, 4)  # refusals consume nothing
    clock.t += 0.15
    assert await limiter.hit("k", rate) == Decision(True, 0, 0.0, 4)
    clock.t += 0.249
    assert await limiter.hit("k", rate) == Decision(False, 0, 0.001, 4)  # exact to the millisecond
    clock.t += 0.001
    assert await limiter.hit("k", rate) == Decision(True, 0, 0.0, 4)
    clock.t += 0.5  # two cells back
    assert await limiter.hit("k", rate) == Decision(True, 1, 0.0, 4)
    clock.t += 60  # idle: a full burst again
    assert [(await limiter.hit("k", rate)).allowed for _ in range(5)] == [True] * 4 + [False]


async def test_memory_cost_above_one() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    rate = Rate(10, 1.0)
    assert await limiter.hit("k", rate, cost=4) == Decision(True, 6, 0.0, 10)
    assert await limiter.hit("k", rate, cost=7) == Decision(False, 6, 0.1, 10)  # one cell short
    assert await limiter.hit("k", rate, cost=6) == Decision(True, 0, 0.0, 10)
    clock.t += 0.3
    assert await limiter.hit("k", rate, cost=3) == Decision(True, 0, 0.0, 10)


async def test_memory_cost_above_the_limit_is_always_refused() -> None:
    """It could never fit: refused, nothing consumed, retry_after > 0 (the formula's wait)."""
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    rate = Rate(3, 1.0)
    assert await limiter.hit("k", rate, cost=5) == Decision(False, 3, 0.666668, 3)  # 2 intervals of 333 334 us
    assert await limiter.hit("k", rate) == Decision(True, 2, 0.0, 3)
    clock.t += 100
    refused = await limiter.hit("k", rate, cost=4)
    assert not refused.allowed and refused.retry_after > 0 and refused.remaining == 3
    for cost in (0, -1):
        with pytest.raises(ValueError, match="costs at least 1"):
            await limiter.hit("k", rate, cost=cost)


async def test_memory_keys_are_independent() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    rate = Rate(2, 1.0)
    assert [(await limiter.hit("a", rate)).allowed for _ in range(3)] == [True, True, False]
    assert [(await limiter.hit("b", rate)).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.hit("a:tool:x", Rate(1, 1.0))).allowed
    assert not (await limiter.hit("a", rate)).allowed


async def test_memory_is_bounded() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(max_keys=3, sweep_every=1.0, clock=clock)
    rate = Rate(1, 60.0)
    for i in range(10):
        assert (await limiter.hit(f"k{i}", rate)).allowed
        assert len(limiter) <= 3
    assert not (await limiter.hit("k9", rate)).allowed  # the newest keys are kept
    assert (await limiter.hit("k0", rate)).allowed  # the oldest was evicted: a fresh burst
    # A sweep drops every key whose TAT has passed.
    limiter = MemoryRateLimiter(sweep_every=1.0, clock=clock)
    for i in range(100):
        await limiter.hit(f"k{i}", Rate(5, 0.5))
    assert len(limiter) == 100
    clock.t += 0.9
    await limiter.hit("x", Rate(1, 60.0))
    assert len(limiter) == 101  # no sweep yet
    clock.t += 0.2
    await limiter.hit("y", Rate(5, 0.5))
    assert len(limiter) == 2  # "x" (TAT still ahead) and "y"
    await limiter.aclose()
    assert len(limiter) == 0


async def test_memory_never_exceeds_the_rate() -> None:
    """Over any stretch of L seconds at most count + L / interval requests are allowed."""
    rng = random.Random(7)
    clock = FakeClock(0.0)
    limiter = MemoryRateLimiter(clock=clock)
    rate = Rate(5, 1.0)
    allowed: list[float] = []
    for _ in range(2000):
        clock.t += rng.choice((0.0, 0.0, 0.01, 0.05, 0.2, 0.5))
        if (await limiter.hit("k", rate)).allowed:
            allowed.append(clock.t)
    for i, start in enumerate(allowed):
        for j in range(i, len(allowed)):
            span = allowed[j] - start
            assert j - i + 1 <= rate.count + span / rate.interval + 1e-6


# -- RedisRateLimiter ------------------------------------------------------------------------------




@pytest.fixture(params=["single", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    """A single redis-server, then a real 3-master cluster."""
    if request.param == "single":
        return str(request.getfixturevalue("server").url)
    nodes: list[RedisServer] = request.getfixturevalue("cluster")
    return f"{nodes[0].url}?cluster=1"


@pytest.fixture
async def state(url: str, request: pytest.FixtureRequest) -> AsyncIterator[RedisState]:
    st = RedisState.from_url(url, prefix=f"rl{abs(hash(request.node.name)) % 10**8}")
    try:
        yield st
    finally:
        await st.aclose()




async def test_redis_state_has_a_limiter(state: RedisState) -> None:
    assert isinstance(state.limiter, RedisRateLimiter)
    assert state.limiter.key("p:alice:tool:x") == f"{state.prefix}:rl:{{p:alice:tool:x}}"
    if state.cluster:  # the hash tag is the whole limit key: one slot
        assert state.client.keyslot(state.limiter.key("p:alice")) == state.client.keyslot("{p:alice}")


async def test_redis_burst_refill_and_retry_after(state: RedisState) -> None:
    """Redis server time: a burst, then refused with a retry_after that is right to the millisecond."""
    limiter = state.limiter
    burst = Rate(5, 50.0)
    assert [await limiter.hit("b", burst) for _ in range(5)] == [Decision(True, n, 0.0, 5) for n in (4, 3, 2, 1, 0)]
    refused = await limiter.hit("b", burst)
    assert not refused.allowed and refused.remaining == 0 and 9.9 < refused.retry_after <= 10.0
    rate = Rate(2, 1.0)  # one every 0.5 s after a burst of 2
    assert (await limiter.hit("r", rate)).allowed and (await limiter.hit("r", rate)).allowed
    first = await limiter.hit("r", rate)
    assert not first.allowed and 0.4 < first.retry_after <= 0.5
    await asyncio.sleep(first.retry_after - 0.1)
    early = await limiter.hit("r", rate)
    assert not early.allowed and 0 < early.retry_after <= 0.1
    await asyncio.sleep(early.retry_after)
    assert await limiter.hit("r", rate) == Decision(True, 0, 0.0, 2)
    with pytest.raises(ValueError):
        await limiter.hit("r", rate, cost=0)


async def test_redis_and_memory_make_the_same_decisions(state: RedisState) -> None:
    """The same sequence of (time, key, cost) gives identical decisions, retry_after included."""
    clock = FakeClock(1_700_000_000.0)
    memory = MemoryRateLimiter(clock=clock)
    redis = RedisRateLimiter(state, clock=clock)
    rng = random.Random(12)
    rates = {"a": Rate(5, 10.0), "b": Rate(3, 7.0), "c": Rate(1, 3.0)}  # intervals 2 s, 2.333... s, 3 s
    seen: set[bool] = set()
    for _ in range(300):
        clock.t += rng.choice((0.0, 0.0, 0.001, 0.37, 1.0, 2.5, 4.0))
        key = rng.choice("abc")
        cost = rng.choice((1, 1, 1, 2, 4, 6))
        expected = await memory.hit(key, rates[key], cost)
        assert await redis.hit(key, rates[key], cost) == expected
        seen.add(expected.allowed)
    assert seen == {True, False}


async def test_two_replicas_share_one_limit(url: str) -> None:
    a, b = RedisState.from_url(url, prefix="shared-rl"), RedisState.from_url(url, prefix="shared-rl")
    try:
        rate = Rate(6, 60.0)
        decisions = [await (a if i % 2 else b).limiter.hit("p:alice", rate) for i in range(8)]
        assert [d.allowed for d in decisions] == [True] * 6 + [False] * 2
        assert [d.remaining for d in decisions[:6]] == [5, 4, 3, 2, 1, 0]
        assert (await a.limiter.hit("p:bob", rate)).allowed  # another key, another limit
    finally:
        await a.aclose()
        await b.aclose()


async def test_redis_keys_expire_once_their_tat_has_passed(state: RedisState) -> None:
    rate = Rate(3, 0.5)
    for key in ("x", "y", "z"):
        for _ in range(4):
            await state.limiter.hit(key, rate)
    keys = await redis_keys(state)
    assert sorted(keys) == sorted(state.limiter.key(k).encode() for k in "xyz")
    for raw in keys:
        assert 0 < await state.client.pttl(raw) <= 500
    await asyncio.sleep(0.6)
    assert await redis_keys(state) == []
    assert (await state.limiter.hit("x", rate)).remaining == 2  # a fresh burst


async def test_concurrent_hits_never_exceed_the_limit(url: str, request: pytest.FixtureRequest) -> None:
    """50 hits at once, from one replica and then from two: exactly the limit is allowed."""
    prefix = f"conc{abs(hash(request.node.name)) % 10**8}"
    a, b = RedisState.from_url(url, prefix=prefix), RedisState.from_url(url, prefix=prefix)
    try:
        # As at a replica's start (create_app checks Redis): redis-py's asyncio cluster client must be
        # initialized before a burst of concurrent commands, or some fail in its connection setup.
        await a.ping()
        await b.ping()
        rate = Rate(10, 60.0)
        decisions = await asyncio.gather(*(a.limiter.hit("one", rate) for _ in range(50)))
        assert sum(d.allowed for d in decisions) == 10
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))
        assert all(d.retry_after > 0 for d in decisions if not d.allowed)
        decisions = await asyncio.gather(*((a if i % 2 else b).limiter.hit("two", rate, cost=2) for i in range(50)))
        assert sum(d.allowed for d in decisions) == 5
    finally:
        await a.aclose()
        await b.aclose()
