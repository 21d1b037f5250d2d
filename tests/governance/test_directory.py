"""The request path's view of the catalog: cached for the TTL, refreshed by one read when it
expires however many requests want it at that moment, and cleared by local changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from crossroads.governance import keys as keyfmt
from crossroads.governance import records as rec
from crossroads.governance.directory import Directory
from crossroads.storage.catalog import SQLiteCatalog


class CountingCatalog(SQLiteCatalog):
    """The real SQLite catalog, counting the lookups that reach it."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.finds = 0
        self.read = asyncio.Event()  # set once a lookup has read the database
        self.answer = asyncio.Event()  # a lookup answers once this is set
        self.answer.set()

    async def find(self, kind: str, lookup: str) -> str | None:
        self.finds += 1
        found = await super().find(kind, lookup)
        self.read.set()
        await asyncio.sleep(0.01)  # a slow answer: requests pile up meanwhile
        await self.answer.wait()
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[CountingCatalog]:
    catalog = CountingCatalog(str(tmp_path / "c.db"))
    await catalog.start()
    yield catalog
    await catalog.close()


async def _key(catalog: CountingCatalog) -> str:
    secret = keyfmt.new_key()
    key = rec.ApiKey(
        id="k1",
        name="k",
        key_hash=keyfmt.key_hash(secret),
        masked="",
        type="workspace-service",
        scopes=("completions.write",),
    )
    await catalog.insert(rec.API_KEY, key.id, key.key_hash, rec.encode(key))
    return secret


async def test_many_requests_at_once_cause_one_read(catalog: CountingCatalog) -> None:
    secret = await _key(catalog)
    clock = Clock()
    directory = Directory(catalog, None, ttl_s=5, admin_key=None, require_api_key=True, clock=clock)
    found = await asyncio.gather(*(directory.principal(secret) for _ in range(100)))
    assert {p.id for p in found if p is not None} == {"k1"}
    assert catalog.finds == 1
    clock.now += 5  # expired: the next burst refreshes it once
    await asyncio.gather(*(directory.principal(secret) for _ in range(100)))
    assert catalog.finds == 2
    unknown = await asyncio.gather(*(directory.principal("xr-nope") for _ in range(50)))
    assert unknown == [None] * 50
    assert catalog.finds == 4  # the key table, then the rotated-keys table: once for all 50


async def test_a_waiter_that_goes_away_does_not_cancel_the_others(catalog: CountingCatalog) -> None:
    secret = await _key(catalog)
    directory = Directory(catalog, None, ttl_s=5, admin_key=None, require_api_key=True)
    first = asyncio.ensure_future(directory.principal(secret))
    second = asyncio.ensure_future(directory.principal(secret))
    await asyncio.sleep(0)
    first.cancel()
    principal = await second
    assert principal is not None and principal.id == "k1"


async def test_a_local_change_clears_the_cache_and_a_load_in_flight_is_not_kept(
    catalog: CountingCatalog,
) -> None:
    secret = await _key(catalog)
    directory = Directory(catalog, None, ttl_s=60, admin_key=None, require_api_key=True)
    catalog.answer.clear()
    loading = asyncio.ensure_future(directory.principal(secret))
    await catalog.read.wait()  # the lookup has read the key; its answer is held back
    await catalog.delete(rec.API_KEY, "k1")
    await directory.invalidate()  # what the admin API does after a change
    catalog.answer.set()
    stale: Any = await loading  # it read before the delete...
    assert stale is not None
    assert await directory.principal(secret) is None  # ...but was not cached past the change
