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
    "storage": {"http", "pipeline", "providers", "upstream", "config", "app", "cli"},
    "upstream": {"http", "pipeline", "providers", "app", "cli"},
    "providers": {"http", "pipeline", "app", "cli"},
    "pipeline": {"http", "app", "cli"},
    "http": {"app", "cli"},
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
