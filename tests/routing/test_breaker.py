"""Circuit-breaker transitions (pure)."""

from __future__ import annotations

from crossroads.routing.breaker import HealthRecord, is_open, transition
from crossroads.routing.plan import BreakerPolicy

POLICY = BreakerPolicy(failure_threshold=3, cooldown_s=10, max_cooldown_s=25, window_s=60)


def run(
    events: list[bool], policy: BreakerPolicy = POLICY, start: float = 0.0, step: float = 1.0
) -> HealthRecord:
    record = HealthRecord()
    now = start
    for failed in events:
        record = transition(record, failed, policy, now)
        now += step
    return record


def test_consecutive_failures_open_and_a_success_resets_the_count() -> None:
    assert not is_open(run([True, True]), 2)
    assert not is_open(run([True, True, False, True, True]), 5)
    record = run([True, True, True])
    assert is_open(record, 3) and record.trips == 1 and record.open_until == 2 + 10


def test_cooldown_grows_with_trips_up_to_the_cap() -> None:
    record = run([True, True, True])
    cooldowns = []
    for _ in range(4):
        now = record.open_until  # half-open: the next failure re-opens at once
        record = transition(record, True, POLICY, now)
        cooldowns.append(record.open_until - now)
    assert cooldowns == [20, 25, 25, 25]


def test_half_open_success_closes_and_forgets_trips() -> None:
    record = run([True, True, True])
    record = transition(record, False, POLICY, record.open_until + 1)
    assert record == HealthRecord(window_start=0.0, window_requests=4, window_failures=3)


def test_failure_share_in_the_window_opens() -> None:
    policy = BreakerPolicy(failure_threshold=100, failure_percentage=50, minimum_requests=4)
    assert not is_open(run([True, False, True], policy), 3)  # too few requests
    assert (
        is_open(run([True, False, True, False], policy, step=0.1), 0.4) is False
    )  # 2/4 but last was success
    assert is_open(run([False, True, False, True], policy, step=0.1), 0.4)  # 2 of 4 failed, on a failure


def test_window_resets() -> None:
    policy = BreakerPolicy(failure_threshold=100, failure_percentage=50, minimum_requests=4, window_s=10)
    record = run([True, True, False], policy)
    record = transition(record, False, policy, 100)
    assert record.window_requests == 1 and record.window_failures == 0
