"""Real Redis for the state tests: a redis-server and a 3-master cluster per test module, started on
free loopback ports (tests/redis_servers.py) and stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_servers import RedisServer, redis_cluster, redis_server


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as s:
        yield s


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    with redis_cluster(3) as nodes:
        yield nodes
