"""Conditional routing queries."""

from __future__ import annotations

from typing import Any

import pytest

from crossroads.routing.conditions import QueryError, compile_query

CTX: dict[str, Any] = {
    "metadata": {"plan": "paid", "tier": "3", "region": "eu-west-1", "beta": "true"},
    "params": {
        "model": "gpt-4o",
        "temperature": 0.2,
        "messages": [{"role": "system"}, {"role": "user"}],
        "tools": [{"function": {"name": "search"}}],
    },
    "url": {"pathname": "/v1/chat/completions"},
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"metadata.plan": "paid"}, True),
        ({"metadata.plan": {"$eq": "free"}}, False),
        ({"metadata.plan": {"$ne": "free"}}, True),
        ({"metadata.tier": {"$gt": 2}}, True),
        ({"metadata.tier": {"$gte": 3, "$lt": 4}}, True),
        ({"metadata.tier": {"$lte": 2}}, False),
        ({"metadata.tier": 3}, True),
        ({"metadata.beta": True}, True),
        ({"params.temperature": {"$lt": 0.5}}, True),
        ({"params.model": {"$in": ["gpt-4o", "gpt-4.1"]}}, True),
        ({"params.model": {"$nin": ["gpt-4o"]}}, False),
        ({"metadata.region": {"$regex": "^eu-"}}, True),
        ({"params.messages.0.role": "system"}, True),
        ({"params.messages.1.role": "system"}, False),
        ({"params.tools.0.function.name": "search"}, True),
        ({"url.pathname": "/v1/chat/completions"}, True),
        ({"metadata.missing": {"$eq": "x"}}, False),
        ({"metadata.missing": {"$ne": "x"}}, True),
        ({"metadata.missing": {"$nin": ["x"]}}, True),
        ({"metadata.missing": {"$gt": 1}}, False),
        ({"$or": [{"metadata.plan": "free"}, {"params.model": "gpt-4o"}]}, True),
        ({"$and": [{"metadata.plan": "paid"}, {"params.model": "gpt-3.5"}]}, False),
        ({"metadata.plan": "paid", "params.model": "other"}, False),  # every key must hold
        (
            {
                "$and": [
                    {"$or": [{"metadata.plan": "x"}, {"metadata.tier": {"$in": ["3"]}}]},
                    {"url.pathname": {"$regex": "chat"}},
                ]
            },
            True,
        ),
    ],
)
def test_queries(query: dict[str, Any], expected: bool) -> None:
    assert compile_query(query)(CTX) is expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"metadata.a": {"$like": "x"}}, "Unsupported operator"),
        ({"$nor": []}, "Unsupported operator"),
        ({"metadata.a": {"$regex": "("}}, "invalid pattern"),
        ({"metadata.a": {"$in": "x"}}, "needs a list"),
        ({"metadata.a": {"$gt": "high"}}, "needs a number"),
        ({"$or": []}, "non-empty list"),
        ({"body.x": 1}, "not a field"),
        ({}, "non-empty object"),
    ],
)
def test_bad_queries_fail_when_compiled(query: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        compile_query(query)
