"""Fixtures: a toy authorization server and a protected anyport MCP server, each a real uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oauth._servers import Protected, ToyAS, toy_servers


@pytest.fixture
def servers() -> Iterator[tuple[ToyAS, Protected]]:
    with toy_servers() as both:
        yield both
