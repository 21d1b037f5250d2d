"""Catalog databases for tests: a fresh SQLite file, or a fresh schema in the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


async def _execute(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose tables live in a new schema, dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:16]
    asyncio.run(_execute(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{POSTGRES}?search_path={name}"
    finally:
        asyncio.run(_execute(f'DROP SCHEMA "{name}" CASCADE'))


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "postgres":
        with postgres_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
