"""Fixtures: a toy authorization server and a protected anyport MCP server, each a real uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oauth._servers import Protected, ToyAS
from tests.transports._http_helpers import running


@pytest.fixture
def servers() -> Iterator[tuple[ToyAS, Protected]]:
    auth = ToyAS()
    with running(auth) as as_base:
        auth.base = as_base
        resource = Protected(auth)
        with running(resource) as rs_base:
            resource.base = rs_base
            yield auth, resource
