"""Circuit breaking: each target's health record and the rules that open and close it (pure).

A target trips after `failure_threshold` consecutive failures, or when failures reach
`failure_percentage` of at least `minimum_requests` in the current window. It is then
skipped for a cooldown of `cooldown_s * trips` (capped at `max_cooldown_s`), so a target
that keeps failing is left alone longer. When the cooldown is over it takes traffic again
(half-open): its first failure re-opens it with a longer cooldown, its first success closes
it and forgets the trips. If every target of a strategy is open, the engine tries them
anyway. The record lives in a HealthStore: in process, or in Redis to share it between
replicas (storage/health.py); both apply `transition` below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from crossroads.routing.plan import BreakerPolicy


@dataclass(frozen=True, slots=True)
class HealthRecord:
    consecutive: int = 0  # failures since the last success
    trips: int = 0  # times opened since the last success after a cooldown
    open_until: float = 0.0  # Unix time; 0 once closed by a success
    window_start: float = 0.0
    window_requests: int = 0
    window_failures: int = 0


def transition(record: HealthRecord, failed: bool, policy: BreakerPolicy, now: float) -> HealthRecord:
    if now - record.window_start >= policy.window_s:
        record = replace(record, window_start=now, window_requests=0, window_failures=0)
    record = replace(
        record,
        window_requests=record.window_requests + 1,
        window_failures=record.window_failures + (1 if failed else 0),
    )
    if not failed:
        if record.open_until and now >= record.open_until:  # a half-open probe succeeded
            return replace(record, consecutive=0, trips=0, open_until=0.0)
        return replace(record, consecutive=0)
    record = replace(record, consecutive=record.consecutive + 1)
    if now < record.open_until:
        return record  # already open
    half_open = record.open_until > 0
    by_count = record.consecutive >= policy.failure_threshold
    by_share = (
        policy.failure_percentage is not None
        and record.window_requests >= policy.minimum_requests
        and record.window_failures * 100 >= policy.failure_percentage * record.window_requests
    )
    if half_open or by_count or by_share:
        trips = record.trips + 1
        return replace(
            record, trips=trips, open_until=now + min(policy.cooldown_s * trips, policy.max_cooldown_s)
        )
    return record


def is_open(record: HealthRecord, now: float) -> bool:
    return record.open_until > now


class HealthStore(Protocol):
    async def open_among(self, keys: Sequence[str], now: float) -> set[str]:
        """The keys whose circuit is open now."""
        ...

    async def record(self, key: str, failed: bool, policy: BreakerPolicy, now: float) -> None: ...


class NoHealth:
    """Circuit breaking turned off."""

    async def open_among(self, keys: Sequence[str], now: float) -> set[str]:
        return set()

    async def record(self, key: str, failed: bool, policy: BreakerPolicy, now: float) -> None:
        return None
