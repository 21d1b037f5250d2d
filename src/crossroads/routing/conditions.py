"""Conditional routing queries: compiled once, evaluated per request (pure).

A query is an object whose keys must all hold: a field path (`metadata.tier`,
`params.messages.0.role`, `url.pathname`) mapped to a value (equality) or to operators
(`$eq $ne $gt $gte $lt $lte $in $nin $regex`), or a logical `$and` / `$or` over a list of
queries. Comparisons with `$gt`-style operators are numeric when both sides read as
numbers (metadata values are strings), else they are false.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

Predicate = Callable[[Mapping[str, Any]], bool]

OPERATORS: Final = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex")
_MISSING: Final = object()
_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


class QueryError(ValueError):
    pass


def compile_query(query: Any) -> Predicate:
    if not isinstance(query, dict) or not query:
        raise QueryError("a query must be a non-empty object")
    parts = [_compile_key(key, value) for key, value in query.items()]
    if len(parts) == 1:
        return parts[0]
    return lambda ctx: all(part(ctx) for part in parts)


def _compile_key(key: str, value: Any) -> Predicate:
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            raise QueryError(f"{key} needs a non-empty list of queries")
        subs = [compile_query(item) for item in value]
        if key == "$and":
            return lambda ctx: all(sub(ctx) for sub in subs)
        return lambda ctx: any(sub(ctx) for sub in subs)
    if key.startswith("$"):
        raise QueryError(f"Unsupported operator used in the query router: {key}")
    path = _path(key)
    if isinstance(value, dict) and value and all(isinstance(k, str) and k.startswith("$") for k in value):
        tests = [_operator(op, operand, key) for op, operand in value.items()]
        return lambda ctx: _all_hold(tests, resolve(ctx, path))
    return lambda ctx: _equal(resolve(ctx, path), value)


def _all_hold(tests: list[Callable[[Any], bool]], actual: Any) -> bool:
    return all(test(actual) for test in tests)


def _path(key: str) -> tuple[str, ...]:
    parts = tuple(key.split("."))
    if not all(parts) or parts[0] not in ("metadata", "params", "url"):
        raise QueryError(f"{key!r} is not a field: start with metadata., params. or url.pathname")
    return parts


def _operator(op: str, operand: Any, key: str) -> Callable[[Any], bool]:
    if op == "$eq":
        return lambda actual: _equal(actual, operand)
    if op == "$ne":
        return lambda actual: not _equal(actual, operand)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        bound = _number(operand)
        if bound is None:
            raise QueryError(f"{op} on {key} needs a number, got {operand!r}")
        compare: Callable[[float, float], bool] = _COMPARE[op]
        return lambda actual: (n := _number(actual)) is not None and compare(n, bound)
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise QueryError(f"{op} on {key} needs a list")
        if op == "$in":
            return lambda actual: any(_equal(actual, item) for item in operand)
        return lambda actual: not any(_equal(actual, item) for item in operand)
    if op == "$regex":
        if not isinstance(operand, str):
            raise QueryError(f"$regex on {key} needs a string pattern")
        try:
            pattern = re.compile(operand)
        except re.error as exc:
            raise QueryError(f"$regex on {key}: invalid pattern ({exc})") from None
        return lambda actual: isinstance(actual, str) and pattern.search(actual) is not None
    raise QueryError(
        f"Unsupported operator used in the query router: {op} (supported: {', '.join(OPERATORS)})"
    )


def resolve(ctx: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a dotted path, through objects and (by index) lists; _MISSING if absent."""
    node: Any = ctx
    for part in path:
        if isinstance(node, Mapping):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def _equal(actual: Any, expected: Any) -> bool:
    if actual is _MISSING:
        return False
    if actual == expected:
        return True
    # Metadata values are strings: "3" equals 3, "true" equals true.
    if isinstance(actual, str) and isinstance(expected, bool):
        return actual == ("true" if expected else "false")
    if isinstance(actual, str) and isinstance(expected, int | float):
        return _number(actual) == expected
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
