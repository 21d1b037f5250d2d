"""Shared fixtures: one fake provider and one gateway per session, reset between tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream


@pytest.fixture(scope="session", autouse=True)
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The default database lives under $XDG_DATA_HOME: a temporary one, never the real home
    (for this process and the `crossroads` processes the tests start)."""
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before


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
