"""The redis-server every scale-out test module shares: started on a free loopback port (never 6379)
by tests/redis_servers.py and stopped after the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_servers import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server
