"""One contract for every catalog: SQLite (a file per test) and PostgreSQL (real, on 127.0.0.1:5432;
a schema per test)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from crossroads.storage.catalog import MIGRATIONS, Conflict, SQLiteCatalog, open_catalog
from crossroads.storage.postgres import PostgresCatalog

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

AnyCatalog = SQLiteCatalog | PostgresCatalog


class Database:
    """One empty database (a SQLite file or a PostgreSQL schema) and every catalog opened on it."""

    def __init__(self, kind: str, target: str) -> None:
        self.kind = kind
        self.target = target  # the SQLite path or the PostgreSQL schema
        self.catalogs: list[AnyCatalog] = []

    @property
    def url(self) -> str:
        if self.kind == "sqlite":
            return self.target
        return f"{PG_URL}?search_path={self.target}"

    def catalog(self, migrations: Sequence[Sequence[str]] = MIGRATIONS) -> AnyCatalog:
        catalog: AnyCatalog = (
            SQLiteCatalog(self.url, migrations)
            if self.kind == "sqlite"
            else PostgresCatalog(self.url, migrations)
        )
        self.catalogs.append(catalog)
        return catalog

    async def open(self, migrations: Sequence[Sequence[str]] = MIGRATIONS) -> AnyCatalog:
        catalog = self.catalog(migrations)
        await catalog.start()
        return catalog

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Straight to the database, past the catalog."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.target) as db:
                return [tuple(row) for row in db.execute(sql.replace("$1", "?"), args).fetchall()]
        connection = await asyncpg.connect(self.url)
        try:
            return [tuple(row) for row in await connection.fetch(sql, *args)]
        finally:
            await connection.close()

    async def tables(self) -> set[str]:
        if self.kind == "sqlite":
            rows = await self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = await self.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", self.target
            )
        return {str(row[0]) for row in rows}

    async def applied(self) -> list[int]:
        return [int(row[0]) for row in await self.query("SELECT version FROM schema_migrations ORDER BY 1")]

    async def close(self) -> None:
        for catalog in self.catalogs:
            await catalog.close()


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(PG_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database("sqlite", str(tmp_path / "catalog.db"))
        yield db
        await db.close()
        return
    schema = f"t_{uuid.uuid4().hex}"
    await _admin(f'CREATE SCHEMA "{schema}"')
    db = Database("postgres", schema)
    try:
        yield db
    finally:
        await db.close()
        await _admin(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def catalog(database: Database) -> AnyCatalog:
    return await database.open()


@pytest.fixture
async def postgres() -> AsyncIterator[Database]:
    schema = f"t_{uuid.uuid4().hex}"
    await _admin(f'CREATE SCHEMA "{schema}"')
    db = Database("postgres", schema)
    try:
        yield db
    finally:
        await db.close()
        await _admin(f'DROP SCHEMA "{schema}" CASCADE')


# --- records ----------------------------------------------------------------------------------------


async def test_insert_then_get(catalog: AnyCatalog) -> None:
    await catalog.insert("api_key", "k1", "hash1", '{"name": "one"}')
    assert await catalog.get("api_key", "k1") == '{"name": "one"}'
    assert await catalog.find("api_key", "hash1") == '{"name": "one"}'
    assert await catalog.count("api_key") == 1


async def test_unknown_records_are_none(catalog: AnyCatalog) -> None:
    assert await catalog.get("api_key", "nope") is None
    assert await catalog.find("api_key", "nope") is None
    assert await catalog.all("api_key") == []
    assert await catalog.count("api_key") == 0
    assert await catalog.delete("api_key", "nope") is False
    assert await catalog.update("api_key", "nope", None, "{}") is False
    assert await catalog.get("api_key", "nope") is None


async def test_kinds_are_kept_apart(catalog: AnyCatalog) -> None:
    await catalog.insert("api_key", "same", "slug", "key")
    await catalog.insert("virtual_key", "same", "slug", "vk")
    assert await catalog.get("api_key", "same") == "key"
    assert await catalog.get("virtual_key", "same") == "vk"
    assert await catalog.find("api_key", "slug") == "key"
    assert await catalog.find("virtual_key", "slug") == "vk"
    assert await catalog.find("config", "slug") is None
    assert await catalog.count("api_key") == await catalog.count("virtual_key") == 1
    assert await catalog.delete("api_key", "same")
    assert await catalog.get("virtual_key", "same") == "vk"


async def test_a_taken_lookup_is_a_conflict(catalog: AnyCatalog) -> None:
    await catalog.insert("virtual_key", "v1", "openai-prod", "first")
    with pytest.raises(Conflict):
        await catalog.insert("virtual_key", "v2", "openai-prod", "second")
    assert await catalog.find("virtual_key", "openai-prod") == "first"
    assert await catalog.get("virtual_key", "v2") is None
    assert await catalog.count("virtual_key") == 1
    # The catalog is still usable after a conflict.
    await catalog.insert("virtual_key", "v2", "openai-dev", "second")
    assert await catalog.count("virtual_key") == 2


async def test_a_taken_id_is_a_conflict(catalog: AnyCatalog) -> None:
    await catalog.insert("config", "c1", None, "first")
    with pytest.raises(Conflict):
        await catalog.insert("config", "c1", "other", "second")
    assert await catalog.get("config", "c1") == "first"
    assert await catalog.find("config", "other") is None


async def test_records_without_a_lookup_do_not_conflict(catalog: AnyCatalog) -> None:
    for index in range(5):
        await catalog.insert("config", f"c{index}", None, f"data{index}")
    assert await catalog.count("config") == 5


async def test_all_is_in_creation_order(catalog: AnyCatalog) -> None:
    ids = ["m", "z", "a", "k", "b"]
    for record_id in ids:
        await catalog.insert("config", record_id, f"slug-{record_id}", f"data-{record_id}")
    assert await catalog.all("config") == [f"data-{record_id}" for record_id in ids]
    # An update changes the data but not the place.
    assert await catalog.update("config", "m", "slug-m", "data-m2")
    assert await catalog.all("config") == ["data-m2"] + [f"data-{record_id}" for record_id in ids[1:]]
    await catalog.delete("config", "a")
    await catalog.insert("config", "a", "slug-a", "data-a-again")
    assert (await catalog.all("config"))[-1] == "data-a-again"


async def test_update(catalog: AnyCatalog) -> None:
    await catalog.insert("virtual_key", "v1", "old-slug", "v1 data")
    await catalog.insert("virtual_key", "v2", "other-slug", "v2 data")
    assert await catalog.update("virtual_key", "v1", "new-slug", "v1 data 2") is True
    assert await catalog.get("virtual_key", "v1") == "v1 data 2"
    assert await catalog.find("virtual_key", "new-slug") == "v1 data 2"
    assert await catalog.find("virtual_key", "old-slug") is None
    assert await catalog.update("virtual_key", "v1", "new-slug", "v1 data 3") is True  # its own lookup
    assert await catalog.find("virtual_key", "new-slug") == "v1 data 3"
    assert await catalog.update("virtual_key", "v1", None, "v1 data 4") is True
    assert await catalog.find("virtual_key", "new-slug") is None
    assert await catalog.get("virtual_key", "v1") == "v1 data 4"
    assert await catalog.get("virtual_key", "v2") == "v2 data"
    assert await catalog.update("api_key", "v1", None, "wrong kind") is False
    assert await catalog.get("virtual_key", "v1") == "v1 data 4"


async def test_an_update_to_a_taken_lookup_is_a_conflict(catalog: AnyCatalog) -> None:
    await catalog.insert("virtual_key", "v1", "one", "v1 data")
    await catalog.insert("virtual_key", "v2", "two", "v2 data")
    with pytest.raises(Conflict):
        await catalog.update("virtual_key", "v2", "one", "v2 stolen")
    assert await catalog.get("virtual_key", "v2") == "v2 data"
    assert await catalog.find("virtual_key", "one") == "v1 data"
    assert await catalog.find("virtual_key", "two") == "v2 data"


async def test_delete(catalog: AnyCatalog) -> None:
    await catalog.insert("api_key", "k1", "h1", "one")
    await catalog.insert("api_key", "k2", "h2", "two")
    assert await catalog.delete("api_key", "k1") is True
    assert await catalog.get("api_key", "k1") is None
    assert await catalog.find("api_key", "h1") is None
    assert await catalog.delete("api_key", "k1") is False
    assert await catalog.count("api_key") == 1
    assert await catalog.all("api_key") == ["two"]
    await catalog.insert("api_key", "k3", "h1", "three")  # a deleted record's lookup is free again
    assert await catalog.find("api_key", "h1") == "three"


async def test_count(catalog: AnyCatalog) -> None:
    for index in range(7):
        await catalog.insert("api_key", f"k{index}", f"h{index}", "{}")
    for index in range(3):
        await catalog.insert("config", f"c{index}", None, "{}")
    assert await catalog.count("api_key") == 7
    assert await catalog.count("config") == 3
    assert await catalog.count("virtual_key") == 0


async def test_concurrent_inserts_all_land(catalog: AnyCatalog) -> None:
    await asyncio.gather(*(catalog.insert("api_key", f"k{i:03d}", f"h{i}", str(i)) for i in range(50)))
    assert await catalog.count("api_key") == 50
    assert sorted(int(data) for data in await catalog.all("api_key")) == list(range(50))


async def test_concurrent_inserts_of_one_lookup_let_exactly_one_win(catalog: AnyCatalog) -> None:
    outcomes = await asyncio.gather(
        *(catalog.insert("virtual_key", f"v{i}", "the-slug", str(i)) for i in range(20)),
        return_exceptions=True,
    )
    assert sum(outcome is None for outcome in outcomes) == 1
    assert all(isinstance(outcome, Conflict) for outcome in outcomes if outcome is not None)
    assert await catalog.count("virtual_key") == 1


# --- config versions --------------------------------------------------------------------------------


async def test_versions_come_back_in_order(catalog: AnyCatalog) -> None:
    for version in (3, 1, 10, 2):
        await catalog.add_version("cfg1", version, f"v{version}")
    await catalog.add_version("cfg2", 1, "other")
    assert await catalog.versions("cfg1") == [(1, "v1"), (2, "v2"), (3, "v3"), (10, "v10")]
    assert await catalog.versions("cfg2") == [(1, "other")]
    assert await catalog.versions("cfg3") == []


async def test_a_version_is_written_once(catalog: AnyCatalog) -> None:
    await catalog.add_version("cfg1", 1, "first")
    with pytest.raises(Conflict):
        await catalog.add_version("cfg1", 1, "again")
    assert await catalog.versions("cfg1") == [(1, "first")]


# --- hostile data -------------------------------------------------------------------------------------

HOSTILE = [
    "'; DROP TABLE records; --",
    '"; DROP TABLE config_versions; --',
    "x' OR '1'='1",
    "1); DELETE FROM records WHERE (1=1",
    "?",
    "? ? ?",
    "$1 $2",
    "%s %(name)s {0}",
    "back\\slash \\' \\\"",
    "quotes ' \" ` \u2019 \u201c \u201d",
    "ünïcødé — 日本語 — עברית — 🚀🔑",
    "new\nline\ttab\r\n",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_strings_round_trip_unchanged(
    catalog: AnyCatalog, database: Database, value: str
) -> None:
    await catalog.insert("api_key", "bystander", "bystander", "still here")
    await catalog.insert("api_key", value, value, value)
    await catalog.insert(value, "id", None, value)
    assert await catalog.get("api_key", value) == value
    assert await catalog.find("api_key", value) == value
    assert await catalog.get(value, "id") == value
    assert await catalog.count(value) == 1
    assert await catalog.all(value) == [value]
    assert await catalog.update("api_key", value, value, value + value) is True
    assert await catalog.get("api_key", value) == value + value
    await catalog.add_version(value, 1, value)
    assert await catalog.versions(value) == [(1, value)]
    assert await catalog.delete(value, "id") is True
    # Nothing was dropped or rewritten.
    assert {"records", "config_versions", "schema_migrations"} <= await database.tables()
    assert await catalog.get("api_key", "bystander") == "still here"
    assert await catalog.count("api_key") == 2


async def test_a_large_document_round_trips(catalog: AnyCatalog) -> None:
    data = '{"note": "' + "é'?" * 200_000 + '"}'
    await catalog.insert("config", "big", None, data)
    assert await catalog.get("config", "big") == data


# --- life cycle -------------------------------------------------------------------------------------


async def test_a_catalog_that_is_not_started_refuses_work(database: Database) -> None:
    catalog = database.catalog()
    with pytest.raises(RuntimeError, match="not started"):
        await catalog.get("api_key", "k")
    await catalog.start()
    await catalog.insert("api_key", "k", None, "data")
    await catalog.close()
    with pytest.raises(RuntimeError, match="not started"):
        await catalog.get("api_key", "k")
    await catalog.close()  # closing twice is harmless


# --- migrations -------------------------------------------------------------------------------------


async def test_starting_twice_on_one_database_is_idempotent(database: Database) -> None:
    first = await database.open()
    await first.insert("api_key", "k1", "h1", "kept")
    await first.add_version("cfg", 1, "v1")
    await first.close()
    second = await database.open()
    assert await database.applied() == [1, 2]
    assert await second.get("api_key", "k1") == "kept"
    assert await second.versions("cfg") == [(1, "v1")]
    await second.insert("api_key", "k2", "h2", "new")
    third = await database.open()  # while another catalog is open on it
    assert await third.count("api_key") == 2
    assert await database.applied() == [1, 2]


async def test_an_older_database_is_upgraded_in_place(database: Database) -> None:
    assert len(MIGRATIONS) == 2
    old = await database.open(MIGRATIONS[:1])
    await old.insert("virtual_key", "v1", "slug", "from before")
    assert await database.applied() == [1]
    tables = await database.tables()
    assert "records" in tables
    assert "config_versions" not in tables
    await old.close()

    new = await database.open(MIGRATIONS)
    assert await database.applied() == [1, 2]
    assert {"records", "config_versions", "schema_migrations"} <= await database.tables()
    assert await new.find("virtual_key", "slug") == "from before"
    await new.add_version("cfg", 1, "now possible")
    assert await new.versions("cfg") == [(1, "now possible")]


async def test_applied_migrations_are_not_run_again(database: Database) -> None:
    """A migration already recorded is skipped, even if running it again would fail."""
    await (await database.open()).close()
    failing = (*MIGRATIONS, ("CREATE TABLE third (id TEXT)",))
    catalog = await database.open(failing)
    assert await database.applied() == [1, 2, 3]
    await catalog.close()
    await (await database.open(failing)).close()  # "third" exists: CREATE TABLE would fail if rerun
    assert await database.applied() == [1, 2, 3]


async def test_postgres_catalogs_starting_together_all_succeed(postgres: Database) -> None:
    catalogs = [postgres.catalog() for _ in range(4)]
    await asyncio.gather(*(catalog.start() for catalog in catalogs))
    assert await postgres.applied() == [1, 2]
    await catalogs[0].insert("api_key", "k", "h", "shared")
    for catalog in catalogs:
        assert await catalog.get("api_key", "k") == "shared"


# --- open_catalog -----------------------------------------------------------------------------------


async def test_open_catalog_with_a_sqlite_url(tmp_path: Path) -> None:
    path = tmp_path / "from-url.db"
    catalog = open_catalog(f"sqlite:///{path}")
    assert isinstance(catalog, SQLiteCatalog)
    await catalog.start()
    try:
        await catalog.insert("api_key", "k", None, "data")
    finally:
        await catalog.close()
    assert path.exists()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT data FROM records").fetchall() == [("data",)]


async def test_open_catalog_with_a_relative_sqlite_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    catalog = open_catalog("sqlite:///relative.db")
    assert isinstance(catalog, SQLiteCatalog)
    await catalog.start()
    await catalog.close()
    assert (tmp_path / "relative.db").exists()


async def test_open_catalog_with_a_bare_path(tmp_path: Path) -> None:
    path = tmp_path / "bare.db"
    catalog = open_catalog(str(path))
    assert isinstance(catalog, SQLiteCatalog)
    await catalog.start()
    await catalog.close()
    assert path.exists()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_open_catalog_with_a_postgres_url(scheme: str) -> None:
    assert isinstance(open_catalog(f"{scheme}://postgres@127.0.0.1:5432/test"), PostgresCatalog)


async def test_open_catalog_with_a_postgres_url_connects(postgres: Database) -> None:
    catalog = open_catalog(postgres.url)
    assert isinstance(catalog, PostgresCatalog)
    postgres.catalogs.append(catalog)
    await catalog.start()
    await catalog.insert("api_key", "k", None, "in postgres")
    assert await postgres.query("SELECT data FROM records") == [("in postgres",)]
