"""Shared fixtures: one fake provider and one gateway per session, reset between tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def fake(upstream_server: FakeUpstream) -> FakeUpstream:
    upstream_server.reset()
    return upstream_server


@pytest.fixture(scope="session")
def gateway() -> Iterator[GatewayServer]:
    server = GatewayServer().start()
    yield server
    server.stop()
