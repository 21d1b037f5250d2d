"""The catalog in PostgreSQL (shared by replicas), through asyncpg: the queries are SQLCatalog's."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from crossroads.storage.catalog import MIGRATIONS, CatalogUnavailable, Conflict, SQLCatalog, shown


class PostgresCatalog(SQLCatalog):
    def __init__(self, dsn: str, migrations: Sequence[Sequence[str]] = MIGRATIONS) -> None:
        self._dsn = dsn
        self._migrations = migrations
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=8, timeout=10)
            await self._migrate(self._pool)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise CatalogUnavailable(f"cannot open the database {shown(self._dsn)}: {exc}") from None

    async def _migrate(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as connection, connection.transaction():
            # One replica migrates at a time: the others wait on the advisory lock.
            await connection.execute("SELECT pg_advisory_xact_lock(727271)")
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = {row[0] for row in await connection.fetch("SELECT version FROM schema_migrations")}
            for number, statements in enumerate(self._migrations, start=1):
                if number in done:
                    continue
                for statement in statements:
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", number, time.time()
                )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _pool_or_fail(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the catalog is not started")
        return self._pool

    async def _execute(self, sql: str, args: Sequence[Any]) -> int:
        try:
            status = await self._pool_or_fail().execute(_numbered(sql), *args)
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(str(exc)) from None
        parts = str(status).split()
        return int(parts[-1]) if parts and parts[-1].isdigit() else 0

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows = await self._pool_or_fail().fetch(_numbered(sql), *args)
        return [tuple(row) for row in rows]


def _numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...` (the queries hold no literal `?`)."""
    parts = sql.split("?")
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, start=1))
