"""The routing engine: one recursive walk over the tree, with the attempt passed in (pure).

Time, sleep, randomness and health come in as arguments, so strategies, retries,
Retry-After, the deadline and circuit breaking are tested without HTTP. The attempt
function makes one try at a leaf within a time budget and returns its result, or raises
a GatewayError; for a stream it returns only once the first chunk has arrived, so every
failure seen here is still one the client has not been shown.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from crossroads.errors import BadRequest, GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from crossroads.routing.backoff import Backoff, retry_after_s
from crossroads.routing.breaker import HealthStore
from crossroads.routing.plan import Conditional, Fallback, Leaf, LoadBalance, Node

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    path: str
    label: str
    status: int  # 200 for a success
    reason: str
    retry: int  # 0 for the first try at this leaf


@dataclass(slots=True)
class Routed(Generic[R]):
    value: R
    path: str
    label: str
    retries: int  # retries made at the answering leaf
    attempts: list[AttemptRecord]


class RoutingFailed(Exception):
    """No target answered. `error` is the last failure; `retries` is -1 when the last leaf
    used up its retries (Portkey's x-portkey-retry-attempt-count convention)."""

    def __init__(self, error: GatewayError, *, path: str, label: str, retries: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.path = path
        self.label = label
        self.retries = retries


Attempt = Callable[[Leaf[T], float], Awaitable[R]]


@dataclass
class Router(Generic[T, R]):
    attempt: Attempt[T, R]
    deadline: float  # on `clock`'s scale
    clock: Callable[[], float]  # monotonic seconds, for the deadline
    wall: Callable[[], float]  # Unix seconds, for Retry-After dates and shared health records
    sleep: Callable[[float], Awaitable[None]]
    rng: random.Random
    health: HealthStore
    backoff: Backoff = field(default_factory=Backoff)
    context: Mapping[str, Any] = field(default_factory=dict)  # what conditions look at
    attempts: list[AttemptRecord] = field(default_factory=list)

    async def run(self, node: Node[T]) -> Routed[R]:
        if isinstance(node, Leaf):
            return await self._leaf(node)
        if isinstance(node, Fallback):
            return await self._fallback(node)
        if isinstance(node, LoadBalance):
            return await self.run(await self._pick(node))
        return await self.run(self._branch(node))

    # -- strategies -----------------------------------------------------------------------

    async def _fallback(self, node: Fallback[T]) -> Routed[R]:
        children = await self._healthy_first(node.children)
        failure: RoutingFailed | None = None
        for child in children:
            try:
                return await self.run(child)
            except RoutingFailed as exc:
                failure = exc
                if not _falls_back(node, exc.error) or self.clock() >= self.deadline:
                    raise
        assert failure is not None
        raise failure

    async def _pick(self, node: LoadBalance[T]) -> Node[T]:
        weighted = [c for c in node.children if c.weight > 0]
        candidates = await self._healthy_first(tuple(weighted), drop_open=True)
        total = sum(c.weight for c in candidates)
        point = self.rng.random() * total
        for child in candidates:
            point -= child.weight
            if point < 0:
                return child
        return candidates[-1]

    def _branch(self, node: Conditional[T]) -> Node[T]:
        for matches, child in node.branches:
            if matches(self.context):
                return child
        if node.default is not None:
            return node.default
        raise RoutingFailed(
            BadRequest("Query router did not resolve to any valid target", code="no_matching_target"),
            path=node.path,
            label="router",
            retries=0,
        )

    async def _healthy_first(
        self, children: tuple[Node[T], ...], *, drop_open: bool = False
    ) -> tuple[Node[T], ...]:
        """Children whose circuit is closed first (or only, with drop_open), keeping their order.
        If every one is open, all of them: trying a degraded target beats failing outright."""
        keys = [c.health_key for c in children if isinstance(c, Leaf) and c.breaker is not None]
        if not keys:
            return children
        open_keys = await self.health.open_among(keys, self.wall())
        if not open_keys:
            return children
        closed = tuple(c for c in children if not (isinstance(c, Leaf) and c.health_key in open_keys))
        if not closed:
            return children
        if drop_open:
            return closed
        return closed + tuple(c for c in children if c not in closed)

    # -- one target, with retries -----------------------------------------------------------

    async def _leaf(self, leaf: Leaf[T]) -> Routed[R]:
        policy = leaf.retry
        retry = 0
        while True:
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                raise RoutingFailed(
                    UpstreamTimeout(
                        "The request's deadline passed before this target could be tried", provider=leaf.label
                    ),
                    path=leaf.path,
                    label=leaf.label,
                    retries=retry,
                )
            try:
                value = await self.attempt(leaf, remaining)
            except GatewayError as error:
                self.attempts.append(
                    AttemptRecord(leaf.path, leaf.label, error.http_status, _reason(error), retry)
                )
                await self._record(leaf, error)
                retryable = error.http_status in policy.on_status or isinstance(error, UpstreamUnavailable)
                if retry >= policy.attempts or not retryable:
                    exhausted = retryable and policy.attempts > 0
                    raise RoutingFailed(
                        error, path=leaf.path, label=leaf.label, retries=-1 if exhausted else retry
                    ) from None
                wait = self._wait(error, retry, policy.honour_retry_after)
                if wait is None or self.clock() + wait >= self.deadline:
                    # The provider wants more time than we may wait: fall over instead.
                    raise RoutingFailed(error, path=leaf.path, label=leaf.label, retries=-1) from None
                await self.sleep(wait)
                retry += 1
                continue
            self.attempts.append(AttemptRecord(leaf.path, leaf.label, 200, "ok", retry))
            if leaf.breaker is not None:
                await self.health.record(leaf.health_key, False, leaf.breaker, self.wall())
            return Routed(value, leaf.path, leaf.label, retry, self.attempts)

    def _wait(self, error: GatewayError, retry: int, honour: bool) -> float | None:
        if honour:
            asked = retry_after_s(error.headers, self.wall())
            if asked is not None:
                return asked if asked <= self.backoff.retry_after_cap_s else None
        return self.backoff.delay(retry, self.rng)

    async def _record(self, leaf: Leaf[T], error: GatewayError) -> None:
        if leaf.breaker is None:
            return
        transport = isinstance(error, UpstreamUnavailable | UpstreamTimeout)
        if not isinstance(error, UpstreamError) and not transport:
            return  # the gateway refused to send: says nothing about the target's health
        failed = leaf.breaker.counts(error.http_status, transport)
        await self.health.record(leaf.health_key, failed, leaf.breaker, self.wall())


def _falls_back(node: Fallback[Any], error: GatewayError) -> bool:
    """Move on to the next target? Always after a timeout or a network error; after any
    failure by default; only after the listed statuses when `on_status_codes` is given."""
    if isinstance(error, UpstreamUnavailable | UpstreamTimeout):
        return True
    return node.on_status is None or error.http_status in node.on_status


def _reason(error: GatewayError) -> str:
    text = error.message
    if error.http_status == 408:
        return "timeout"
    return text if len(text) <= 120 else text[:117] + "..."
