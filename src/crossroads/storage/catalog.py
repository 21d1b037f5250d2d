"""The catalog: API keys, virtual keys and saved configs, in SQLite (the embedded default) or
PostgreSQL (shared by replicas).

Records are JSON documents in one table, found by id or by a unique lookup (a slug, or a key
hash); saved configs keep every version. Every statement is parameterised. Migrations are
numbered and applied in order at start-up, so an existing database is upgraded in place;
`schema_migrations` records what has been applied.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Final, Protocol

# Each migration is a list of statements; `?` placeholders are rewritten for PostgreSQL.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE IF NOT EXISTS records (
             kind TEXT NOT NULL, id TEXT NOT NULL, lookup TEXT, data TEXT NOT NULL,
             created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
             PRIMARY KEY (kind, id))""",
        "CREATE UNIQUE INDEX IF NOT EXISTS records_lookup ON records (kind, lookup)",
    ),
    (
        """CREATE TABLE IF NOT EXISTS config_versions (
             config_id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
             created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (config_id, version))""",
    ),
)


class Conflict(Exception):
    """A record with this lookup (slug, key hash) already exists."""


class CatalogUnavailable(Exception):
    """The database cannot be opened or migrated; the message names it (without a password)."""


def shown(url: str) -> str:
    """A database URL fit for a message: any password replaced."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


class Catalog(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def insert(self, kind: str, record_id: str, lookup: str | None, data: str) -> None: ...

    async def update(self, kind: str, record_id: str, lookup: str | None, data: str) -> bool: ...

    async def get(self, kind: str, record_id: str) -> str | None: ...

    async def find(self, kind: str, lookup: str) -> str | None: ...

    async def all(self, kind: str) -> list[str]: ...

    async def entries(self, kind: str) -> list[tuple[str, str]]:
        """(id, data) of every record of a kind."""
        ...

    async def delete(self, kind: str, record_id: str) -> bool: ...

    async def count(self, kind: str) -> int: ...

    async def add_version(self, config_id: str, version: int, data: str) -> None: ...

    async def versions(self, config_id: str) -> list[tuple[int, str]]: ...


class SQLCatalog:
    """The queries, shared by both databases; subclasses run them."""

    async def _execute(self, sql: str, args: Sequence[Any]) -> int:
        raise NotImplementedError

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def insert(self, kind: str, record_id: str, lookup: str | None, data: str) -> None:
        now = time.time()
        await self._execute(
            "INSERT INTO records (kind, id, lookup, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, record_id, lookup, data, now, now),
        )

    async def update(self, kind: str, record_id: str, lookup: str | None, data: str) -> bool:
        changed = await self._execute(
            "UPDATE records SET lookup = ?, data = ?, updated_at = ? WHERE kind = ? AND id = ?",
            (lookup, data, time.time(), kind, record_id),
        )
        return changed > 0

    async def get(self, kind: str, record_id: str) -> str | None:
        rows = await self._fetch("SELECT data FROM records WHERE kind = ? AND id = ?", (kind, record_id))
        return str(rows[0][0]) if rows else None

    async def find(self, kind: str, lookup: str) -> str | None:
        rows = await self._fetch("SELECT data FROM records WHERE kind = ? AND lookup = ?", (kind, lookup))
        return str(rows[0][0]) if rows else None

    async def all(self, kind: str) -> list[str]:
        rows = await self._fetch("SELECT data FROM records WHERE kind = ? ORDER BY created_at, id", (kind,))
        return [str(row[0]) for row in rows]

    async def entries(self, kind: str) -> list[tuple[str, str]]:
        rows = await self._fetch(
            "SELECT id, data FROM records WHERE kind = ? ORDER BY created_at, id", (kind,)
        )
        return [(str(row[0]), str(row[1])) for row in rows]

    async def delete(self, kind: str, record_id: str) -> bool:
        return await self._execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id)) > 0

    async def count(self, kind: str) -> int:
        rows = await self._fetch("SELECT COUNT(*) FROM records WHERE kind = ?", (kind,))
        return int(rows[0][0])

    async def add_version(self, config_id: str, version: int, data: str) -> None:
        await self._execute(
            "INSERT INTO config_versions (config_id, version, data, created_at) VALUES (?, ?, ?, ?)",
            (config_id, version, data, time.time()),
        )

    async def versions(self, config_id: str) -> list[tuple[int, str]]:
        rows = await self._fetch(
            "SELECT version, data FROM config_versions WHERE config_id = ? ORDER BY version", (config_id,)
        )
        return [(int(row[0]), str(row[1])) for row in rows]


class SQLiteCatalog(SQLCatalog):
    """One connection, used from a worker thread (the event loop never waits on disk)."""

    def __init__(self, path: str, migrations: Sequence[Sequence[str]] = MIGRATIONS) -> None:
        self._path = path
        self._migrations = migrations
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=5000")
            return db

        try:
            self._db = await asyncio.to_thread(connect)
            await self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise CatalogUnavailable(f"cannot open the database {self._path}: {exc}") from None

    async def close(self) -> None:
        if self._db is not None:
            await asyncio.to_thread(self._db.close)
            self._db = None

    async def _migrate(self) -> None:
        await self._execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "applied_at DOUBLE PRECISION NOT NULL)",
            (),
        )
        done = {int(row[0]) for row in await self._fetch("SELECT version FROM schema_migrations", ())}
        for number, statements in enumerate(self._migrations, start=1):
            if number in done:
                continue
            for statement in statements:
                await self._execute(statement, ())
            await self._execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (number, time.time())
            )

    async def _run(self, sql: str, args: Sequence[Any], fetch: bool) -> Any:
        db = self._db
        if db is None:
            raise RuntimeError("the catalog is not started")

        def run() -> Any:
            try:
                cursor = db.execute(sql, tuple(args))
            except sqlite3.IntegrityError as exc:
                if str(exc).startswith("UNIQUE constraint failed"):
                    raise Conflict(str(exc)) from None
                raise
            return cursor.fetchall() if fetch else cursor.rowcount

        async with self._lock:
            return await asyncio.to_thread(run)

    async def _execute(self, sql: str, args: Sequence[Any]) -> int:
        result: int = await self._run(sql, args, False)
        return result

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = await self._run(sql, args, True)
        return result


def open_catalog(url: str) -> Catalog:
    """`sqlite:///path/to.db` (or a bare path) or `postgresql://...`."""
    if url.startswith(("postgresql://", "postgres://")):
        from crossroads.storage.postgres import PostgresCatalog  # noqa: PLC0415  (its driver only when used)

        return PostgresCatalog(url)
    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    return SQLiteCatalog(path or "crossroads.db")
