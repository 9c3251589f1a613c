from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth._issuer import Issuer


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    try:
        yield server
    finally:
        server.close()
