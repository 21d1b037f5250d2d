"""The routing tree the engine walks: strategies as nodes, targets as leaves.

Built per request by the pipeline from a parsed config (or from the headers alone); the
leaves carry an opaque payload (what to call) that the engine hands back to its attempt
function. `path` is Portkey's JSON-path of the node (`config`, `config.targets[1]`, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 0  # retries after the first try
    on_status: frozenset[int] = frozenset({429, 500, 502, 503, 504, 529})
    honour_retry_after: bool = True


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5  # consecutive failures that open the circuit
    failure_percentage: float | None = None  # or this share of failures in the window ...
    minimum_requests: int = 10  # ... once the window has this many requests
    window_s: float = 60.0
    cooldown_s: float = 30.0  # the first open period; trips multiply it
    max_cooldown_s: float = 300.0
    failure_statuses: frozenset[int] | None = None  # None: 5xx (plus timeouts and network errors)

    def counts(self, status: int, transport: bool) -> bool:
        """Does this outcome count against the target's health?"""
        if transport:
            return True
        if self.failure_statuses is None:
            return status >= 500
        return status in self.failure_statuses


@dataclass(frozen=True, slots=True)
class Leaf(Generic[T]):
    path: str
    payload: T
    label: str  # for messages: the provider slug
    health_key: str
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy | None = None
    name: str | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Fallback(Generic[T]):
    path: str
    children: tuple[Node[T], ...]
    on_status: frozenset[int] | None = None  # None: any failure moves on
    name: str | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class LoadBalance(Generic[T]):
    path: str
    children: tuple[Node[T], ...]
    name: str | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Conditional(Generic[T]):
    path: str
    branches: tuple[tuple[Predicate, Node[T]], ...]
    default: Node[T] | None = None
    name: str | None = None
    weight: float = 1.0
    children: tuple[Node[T], ...] = field(default=())


Node = Leaf[T] | Fallback[T] | LoadBalance[T] | Conditional[T]
