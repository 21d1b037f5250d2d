"""The architecture's rules, checked on the source (../shared/ARCHITECTURE.md §1).

Dependencies point one way: http -> pipeline -> providers/upstream/codecs; nothing below
http imports it; backends' drivers only in storage/; no code outside providers/ compares
anything with a provider's name.
"""

from __future__ import annotations

import ast
from pathlib import Path

from crossroads.providers.registry import build_registry

SRC = Path(__file__).resolve().parents[1] / "src" / "crossroads"

# package -> packages it must never import
FORBIDDEN = {
    "codecs": {"http", "pipeline", "providers", "upstream", "app", "cli"},
    "routing": {"http", "pipeline", "providers", "upstream", "storage", "config", "app", "cli"},
    "config": {"http", "pipeline", "providers", "upstream", "storage", "app", "cli"},
    "storage": {"http", "pipeline", "providers", "upstream", "config", "governance", "app", "cli", "manage"},
    "governance": {"http", "pipeline", "providers", "upstream", "routing", "config", "app", "cli", "manage"},
    "upstream": {"http", "pipeline", "providers", "app", "cli"},
    "providers": {"http", "pipeline", "app", "cli"},
    "pipeline": {"http", "app", "cli", "manage"},
    "observability": {"http", "pipeline", "providers", "upstream", "app", "cli", "manage"},
    "http": {"app", "cli", "manage"},
}
DRIVERS = {"redis", "asyncpg", "sqlite3", "psycopg", "aiosqlite"}


def modules() -> list[tuple[str, ast.Module]]:
    return [(str(path.relative_to(SRC)), ast.parse(path.read_text())) for path in sorted(SRC.rglob("*.py"))]


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_dependencies_point_one_way() -> None:
    problems = []
    for relative, tree in modules():
        package = relative.split("/")[0] if "/" in relative else relative.removesuffix(".py")
        for name in imported(tree):
            parts = name.split(".")
            if parts[0] == "crossroads" and len(parts) > 1 and parts[1] in FORBIDDEN.get(package, set()):
                problems.append(f"{relative} imports {name}")
            if parts[0] in DRIVERS and package != "storage":
                problems.append(f"{relative} imports the driver {name} outside storage/")
    assert not problems, "\n".join(problems)


def test_no_provider_name_is_compared_outside_providers() -> None:
    slugs = set(build_registry())
    problems = []
    for relative, tree in modules():
        if relative.startswith("providers/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for operand in [node.left, *node.comparators]:
                    if isinstance(operand, ast.Constant) and operand.value in slugs:
                        problems.append(f"{relative}:{node.lineno} compares with {operand.value!r}")
    assert not problems, "\n".join(problems)


def test_sql_is_built_only_with_parameters() -> None:
    """Every statement handed to a database is a constant string; values travel as parameters.
    (An f-string, `%`, `+` or `.format` building SQL would put data into the statement.)"""
    problems = []
    calls = {"execute", "fetch", "_execute", "_fetch", "_run", "executemany", "fetchrow", "fetchval"}
    for relative, tree in modules():
        if not relative.startswith("storage/"):
            continue
        constants = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant | ast.Tuple)
        }
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in calls or not node.args:
                continue
            sql = node.args[0]
            if isinstance(sql, ast.Call) and isinstance(sql.func, ast.Name) and sql.func.id == "_numbered":
                sql = sql.args[0]  # placeholders rewritten for PostgreSQL: still the same constant
            if isinstance(sql, ast.Constant) and isinstance(sql.value, str):
                continue
            if isinstance(sql, ast.Name) and (sql.id in constants or sql.id in {"sql", "statement"}):
                continue  # a parameter passed down, or a migration statement (constants above)
            problems.append(f"{relative}:{node.lineno} builds SQL: {ast.unparse(sql)}")
    assert not problems, "\n".join(problems)
