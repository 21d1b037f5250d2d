"""Rate limits and budgets, pure: parsing, estimates, the counters a request touches, and settling.

Every moment is a fixed timestamp passed in as `now`; nothing reads the real clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from crossroads.governance.limits import (
    COST_UNIT,
    DEFAULT_COMPLETION_ESTIMATE,
    WINDOW_SECONDS,
    Limits,
    RateLimit,
    Usage,
    UsageLimit,
    budget_period,
    estimate,
    parse_rate_limits,
    parse_usage_limit,
    settled_amount,
    slots,
)
from crossroads.storage.counters import Slot


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: float = 0) -> float:
    whole = int(second)
    micro = round((second - whole) * 1_000_000)
    return dt.datetime(year, month, day, hour, minute, whole, micro, tzinfo=dt.UTC).timestamp()


NOW = at(2024, 3, 15, 10, 37, 42.5)  # a Friday


# --- parsing ----------------------------------------------------------------------------------------


def test_parse_rate_limits() -> None:
    parsed = parse_rate_limits(
        [
            {"type": "requests", "unit": "rpm", "value": 10},
            {"type": "tokens", "unit": "rph", "value": 50_000},
            {"type": "requests", "unit": "rpd", "value": 1},
        ]
    )
    assert parsed == (
        RateLimit(type="requests", unit="rpm", value=10),
        RateLimit(type="tokens", unit="rph", value=50_000),
        RateLimit(type="requests", unit="rpd", value=1),
    )
    assert isinstance(parsed, tuple)


@pytest.mark.parametrize("data", [None, []])
def test_no_rate_limits(data: Any) -> None:
    assert parse_rate_limits(data) == ()


@pytest.mark.parametrize(
    "data",
    [
        [{"type": "requests", "unit": "rps", "value": 10}],
        [{"type": "requests", "unit": "RPM", "value": 10}],
        [{"type": "cost", "unit": "rpm", "value": 10}],
        [{"type": "requests", "unit": "rpm", "value": 0}],
        [{"type": "requests", "unit": "rpm", "value": -5}],
        [{"type": "requests", "unit": "rpm", "value": "10"}],
        [{"type": "requests", "unit": "rpm", "value": 1.5}],
        [{"type": "requests", "unit": "rpm", "value": True}],
        [{"type": "requests", "unit": "rpm"}],
        [{"unit": "rpm", "value": 10}],
        [{"type": "requests", "unit": "rpm", "value": 10, "burst": 5}],
        [{"type": "requests", "unit": "rpm", "value": 10}, "rpm"],
        {"type": "requests", "unit": "rpm", "value": 10},
        "10 rpm",
        {},
    ],
)
def test_invalid_rate_limits_are_refused(data: Any) -> None:
    with pytest.raises(msgspec.ValidationError):
        parse_rate_limits(data)


def test_parse_usage_limit() -> None:
    parsed = parse_usage_limit(
        {
            "credit_limit": 25,
            "type": "tokens",
            "alert_threshold": 20,
            "periodic_reset": "weekly",
            "next_usage_reset_at": "2024-03-18T00:00:00Z",
        }
    )
    assert parsed == UsageLimit(
        credit_limit=25.0,
        type="tokens",
        alert_threshold=20.0,
        periodic_reset="weekly",
        next_usage_reset_at="2024-03-18T00:00:00Z",
    )
    assert parsed is not None
    assert isinstance(parsed.credit_limit, float)


def test_a_usage_limit_is_in_cost_by_default() -> None:
    parsed = parse_usage_limit({"credit_limit": 12.5})
    assert parsed == UsageLimit(credit_limit=12.5)
    assert parsed is not None
    assert (parsed.type, parsed.periodic_reset, parsed.periodic_reset_days) == ("cost", None, None)
    days = parse_usage_limit({"credit_limit": 1, "periodic_reset_days": 30})
    assert days is not None
    assert days.periodic_reset_days == 30


@pytest.mark.parametrize("data", [None, {}])
def test_no_usage_limit(data: Any) -> None:
    assert parse_usage_limit(data) is None


@pytest.mark.parametrize(
    "data",
    [
        {"credit_limit": 0},
        {"credit_limit": -1},
        {"credit_limit": "10"},
        {"type": "cost"},
        {"credit_limit": 10, "type": "requests"},
        {"credit_limit": 10, "periodic_reset": "daily"},
        {"credit_limit": 10, "periodic_reset": "Monthly"},
        {"credit_limit": 10, "periodic_reset_days": 0},
        {"credit_limit": 10, "periodic_reset_days": -7},
        {"credit_limit": 10, "periodic_reset_days": 1.5},
        {"credit_limit": 10, "alert_threshold": 0},
        {"credit_limit": 10, "alert_threshold": -3},
        {"credit_limit": 10, "limit": 5},
        [{"credit_limit": 10}],
        [],
        "10",
    ],
)
def test_invalid_usage_limits_are_refused(data: Any) -> None:
    with pytest.raises(msgspec.ValidationError):
        parse_usage_limit(data)


def test_limit_units() -> None:
    assert COST_UNIT == 1_000_000
    assert UsageLimit(credit_limit=10.5).limit_units == 10_500_000
    assert UsageLimit(credit_limit=0.25).limit_units == 250_000
    assert UsageLimit(credit_limit=5000, type="tokens").limit_units == 5000


def test_limit_units_of_a_cents_amount_are_exact() -> None:
    """2.01 * 1e6 is 2009999.9999999998 in floating point: the budget must still be $2.01."""
    assert UsageLimit(credit_limit=2.01).limit_units == 2_010_000
    for cents in range(1, 100_000):
        assert UsageLimit(credit_limit=cents / 100).limit_units == cents * 10_000, cents


def test_limits_empty() -> None:
    assert Limits(owner="key:1").empty
    assert not Limits(owner="key:1", rate=(RateLimit("requests", "rpm", 1),)).empty
    assert not Limits(owner="key:1", usage=UsageLimit(credit_limit=1)).empty


def test_usage_tokens() -> None:
    assert Usage(prompt_tokens=12, completion_tokens=30, cost_micros=7).tokens == 42
    assert Usage().tokens == 0


# --- estimate ---------------------------------------------------------------------------------------


def test_estimate_uses_max_completion_tokens_first() -> None:
    assert estimate({"max_completion_tokens": 300, "max_tokens": 100}, 400) == (100, 300)


def test_estimate_uses_max_tokens_next() -> None:
    assert estimate({"max_tokens": 100}, 400) == (100, 100)
    assert estimate({"max_completion_tokens": None, "max_tokens": 77}, 400) == (100, 77)


@pytest.mark.parametrize("bad", [0, -1, "300", 300.0, None, [300]])
def test_estimate_skips_unusable_values(bad: Any) -> None:
    assert estimate({"max_completion_tokens": bad, "max_tokens": 50}, 8) == (2, 50)
    assert estimate({"max_completion_tokens": bad}, 8) == (2, DEFAULT_COMPLETION_ESTIMATE)
    assert estimate({"max_tokens": bad}, 8) == (2, DEFAULT_COMPLETION_ESTIMATE)


@pytest.mark.parametrize("body", [None, {}, {"model": "gpt-4o", "messages": []}])
def test_estimate_defaults_the_completion(body: dict[str, Any] | None) -> None:
    assert DEFAULT_COMPLETION_ESTIMATE == 1024
    assert estimate(body, 4096) == (1024, 1024)


@pytest.mark.parametrize(("size", "prompt"), [(0, 1), (1, 1), (3, 1), (4, 1), (7, 1), (8, 2), (4001, 1000)])
def test_estimate_takes_the_prompt_from_the_body_size(size: int, prompt: int) -> None:
    assert estimate({"max_tokens": 10}, size) == (prompt, 10)


# --- slots: rate limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "start", "label"),
    [
        ("rpm", at(2024, 3, 15, 10, 37), "10 requests per minute"),
        ("rph", at(2024, 3, 15, 10), "10 requests per hour"),
        ("rpd", at(2024, 3, 15), "10 requests per day"),
    ],
)
def test_a_request_limit_slot_per_window(unit: str, start: float, label: str) -> None:
    rule = msgspec.convert({"type": "requests", "unit": unit, "value": 10}, RateLimit)
    limits = Limits(owner="key:abc", rate=(rule,))
    [slot] = slots(limits, NOW, prompt=100, completion=200, cost_micros=5)
    seconds = WINDOW_SECONDS[unit]
    assert slot == Slot(
        key=f"rl:key:abc:requests:{unit}:{int(start)}",
        amount=1,
        limit=10,
        ttl_s=seconds + 60,
        kind="requests",
        resets_at=start + seconds,
        label=label,
    )
    assert slot.key.endswith(f":{int(start)}")


def test_window_lengths() -> None:
    assert WINDOW_SECONDS == {"rpm": 60, "rph": 3600, "rpd": 86400}


def test_a_token_limit_slot_reserves_prompt_and_completion() -> None:
    limits = Limits(owner="vk:v1", rate=(RateLimit("tokens", "rpm", 10_000),))
    [slot] = slots(limits, NOW, prompt=100, completion=250, cost_micros=5)
    assert slot == Slot(
        f"rl:vk:v1:tokens:rpm:{int(at(2024, 3, 15, 10, 37))}",
        350,
        10_000,
        120,
        "tokens",
        at(2024, 3, 15, 10, 38),
        "10000 tokens per minute",
    )


def test_windows_are_aligned_to_the_clock_not_to_the_first_request() -> None:
    limits = Limits(owner="key:a", rate=(RateLimit("requests", "rpm", 5),))
    start = at(2024, 3, 15, 10, 37)

    def key(now: float) -> str:
        return slots(limits, now, prompt=1, completion=1, cost_micros=0)[0].key

    assert key(start) == key(start + 30) == key(start + 59.999)
    assert key(start + 60) != key(start)
    assert key(start + 60).endswith(f":{int(start) + 60}")
    assert key(start - 0.001).endswith(f":{int(start) - 60}")
    assert slots(limits, start, prompt=1, completion=1, cost_micros=0)[0].resets_at == start + 60


def test_owners_and_rules_get_separate_counters() -> None:
    rules = (RateLimit("requests", "rpm", 5), RateLimit("tokens", "rpm", 5), RateLimit("requests", "rph", 5))
    a = slots(Limits(owner="key:a", rate=rules), NOW, prompt=1, completion=1, cost_micros=0)
    b = slots(Limits(owner="key:b", rate=rules), NOW, prompt=1, completion=1, cost_micros=0)
    keys = [slot.key for slot in a + b]
    assert len(set(keys)) == 6
    assert [slot.kind for slot in a] == ["requests", "tokens", "requests"]


@pytest.mark.parametrize(
    ("usage", "label"),
    [
        (UsageLimit(credit_limit=0.25), "0.25 USD"),
        (UsageLimit(credit_limit=100, periodic_reset="weekly"), "100 USD per week"),
        (UsageLimit(credit_limit=2e6, type="tokens", periodic_reset="monthly"), "2000000 tokens per month"),
        (UsageLimit(credit_limit=5, type="tokens", periodic_reset_days=30), "5 tokens per 30 days"),
    ],
)
def test_budget_slots_say_what_the_rule_is(usage: UsageLimit, label: str) -> None:
    [slot] = slots(Limits(owner="key:a", usage=usage), NOW, prompt=1, completion=1, cost_micros=1)
    assert slot.label == label


def test_rate_slots_say_what_the_rule_is() -> None:
    rules = (RateLimit("tokens", "rph", 50_000), RateLimit("requests", "rpd", 1))
    labels = [
        s.label for s in slots(Limits(owner="k", rate=rules), NOW, prompt=1, completion=1, cost_micros=0)
    ]
    assert labels == ["50000 tokens per hour", "1 requests per day"]


def test_no_limits_no_slots() -> None:
    assert slots(Limits(owner="key:a"), NOW, prompt=1, completion=1, cost_micros=1) == []


# --- slots: budgets ---------------------------------------------------------------------------------


def test_a_cost_budget_slot_counts_micro_dollars() -> None:
    usage = UsageLimit(credit_limit=10.5, periodic_reset="monthly")
    [slot] = slots(Limits(owner="key:a", usage=usage), NOW, prompt=100, completion=200, cost_micros=1234)
    resets = at(2024, 4, 1)
    assert slot == Slot(
        "budget:key:a:cost:m202403",
        1234,
        10_500_000,
        int(resets - NOW) + 86400,
        "cost",
        resets,
        "10.5 USD per month",
    )


def test_a_token_budget_slot_counts_tokens() -> None:
    usage = UsageLimit(credit_limit=5000, type="tokens", periodic_reset="weekly")
    [slot] = slots(Limits(owner="vk:v", usage=usage), NOW, prompt=100, completion=200, cost_micros=1234)
    resets = at(2024, 3, 18)
    assert slot == Slot(
        "budget:vk:v:tokens:w202411",
        300,
        5000,
        int(resets - NOW) + 86400,
        "budget-tokens",
        resets,
        "5000 tokens per week",
    )


def test_a_budget_that_never_resets_lives_forever() -> None:
    [slot] = slots(
        Limits(owner="key:a", usage=UsageLimit(credit_limit=3)), NOW, prompt=1, completion=1, cost_micros=9
    )
    assert slot == Slot("budget:key:a:cost:all", 9, 3_000_000, 0, "cost", None, "3 USD")


def test_rate_slots_come_before_the_budget_slot() -> None:
    limits = Limits(
        owner="key:a",
        rate=(RateLimit("requests", "rpm", 5), RateLimit("tokens", "rpd", 100)),
        usage=UsageLimit(credit_limit=1),
    )
    kinds = [slot.kind for slot in slots(limits, NOW, prompt=1, completion=1, cost_micros=1)]
    assert kinds == ["requests", "tokens", "cost"]


# --- budget periods ---------------------------------------------------------------------------------


def _monthly() -> UsageLimit:
    return UsageLimit(credit_limit=1, periodic_reset="monthly")


def _weekly() -> UsageLimit:
    return UsageLimit(credit_limit=1, periodic_reset="weekly")


@pytest.mark.parametrize(
    ("now", "period", "resets"),
    [
        (at(2024, 3, 15, 10, 37, 42.5), "m202403", at(2024, 4, 1)),
        (at(2024, 3, 1), "m202403", at(2024, 4, 1)),
        (at(2024, 3, 31, 23, 59, 59.999), "m202403", at(2024, 4, 1)),
        (at(2024, 4, 30, 12), "m202404", at(2024, 5, 1)),
        (at(2024, 1, 31, 23), "m202401", at(2024, 2, 1)),
        (at(2024, 12, 1), "m202412", at(2025, 1, 1)),
        (at(2024, 12, 31, 23, 59, 59), "m202412", at(2025, 1, 1)),
        (at(2025, 1, 1), "m202501", at(2025, 2, 1)),
        (at(2024, 2, 10), "m202402", at(2024, 3, 1)),  # leap year: 29 days
        (at(2024, 2, 29, 23, 59, 59), "m202402", at(2024, 3, 1)),
        (at(2023, 2, 28, 23, 59, 59), "m202302", at(2023, 3, 1)),
        (at(2000, 2, 29), "m200002", at(2000, 3, 1)),
    ],
)
def test_monthly_periods(now: float, period: str, resets: float) -> None:
    assert budget_period(_monthly(), now, 0.0) == (period, resets)


def test_a_leap_february_is_29_days_long() -> None:
    _, resets = budget_period(_monthly(), at(2024, 2, 1), 0.0)
    assert resets is not None
    assert resets - at(2024, 2, 1) == 29 * 86400
    _, resets = budget_period(_monthly(), at(2023, 2, 1), 0.0)
    assert resets is not None
    assert resets - at(2023, 2, 1) == 28 * 86400


@pytest.mark.parametrize(
    ("now", "period", "resets"),
    [
        (at(2024, 5, 15, 13), "w202420", at(2024, 5, 20)),  # Wednesday
        (at(2024, 5, 13), "w202420", at(2024, 5, 20)),  # Monday 00:00: the week starts
        (at(2024, 5, 19, 23, 59, 59.5), "w202420", at(2024, 5, 20)),  # Sunday night
        (at(2024, 5, 20), "w202421", at(2024, 5, 27)),
        (at(2024, 12, 31, 8), "w202501", at(2025, 1, 6)),  # ISO week 1 of 2025 starts on 30 Dec 2024
        (at(2025, 1, 2), "w202501", at(2025, 1, 6)),
        (at(2021, 1, 1), "w202053", at(2021, 1, 4)),  # ISO week 53 of 2020
        (at(2024, 2, 29), "w202409", at(2024, 3, 4)),
    ],
)
def test_weekly_periods(now: float, period: str, resets: float) -> None:
    assert budget_period(_weekly(), now, 0.0) == (period, resets)
    moment = dt.datetime.fromtimestamp(resets, tz=dt.UTC)
    assert moment.weekday() == 0
    assert (moment.hour, moment.minute, moment.second) == (0, 0, 0)
    assert 0 < resets - now <= 7 * 86400


def test_every_moment_of_a_week_shares_one_period() -> None:
    monday = at(2024, 12, 30)
    periods = {budget_period(_weekly(), monday + hour * 3600, 0.0) for hour in range(7 * 24)}
    assert periods == {("w202501", at(2025, 1, 6))}


def test_periodic_reset_days_count_from_creation() -> None:
    created = at(2024, 3, 10, 15, 30)
    usage = UsageLimit(credit_limit=1, periodic_reset_days=7)
    day = 86400
    assert budget_period(usage, created, created) == ("d7:0", created + 7 * day)
    assert budget_period(usage, created + 3 * day, created) == ("d7:0", created + 7 * day)
    assert budget_period(usage, created + 7 * day - 0.5, created) == ("d7:0", created + 7 * day)
    assert budget_period(usage, created + 7 * day, created) == ("d7:1", created + 14 * day)
    assert budget_period(usage, created + 20 * day, created) == ("d7:2", created + 21 * day)


def test_periodic_reset_days_win_over_a_calendar_reset() -> None:
    created = at(2024, 3, 10)
    usage = UsageLimit(credit_limit=1, periodic_reset="monthly", periodic_reset_days=30)
    assert budget_period(usage, at(2024, 3, 15), created) == ("d30:0", created + 30 * 86400)


def test_periodic_reset_days_through_slots_use_the_owners_creation() -> None:
    created = at(2024, 3, 1, 12)
    limits = Limits(
        owner="key:a", usage=UsageLimit(credit_limit=1, periodic_reset_days=10), created_at=created
    )
    [slot] = slots(limits, NOW, prompt=1, completion=1, cost_micros=5)
    assert slot.key == "budget:key:a:cost:d10:1"
    assert slot.resets_at == created + 20 * 86400
    assert slot.ttl_s == int(created + 20 * 86400 - NOW) + 86400
    assert slot.label == "1 USD per 10 days"


def test_no_reset() -> None:
    usage = UsageLimit(credit_limit=1)
    assert budget_period(usage, NOW, 0.0) == ("all", None)
    assert budget_period(usage, at(2031, 7, 4), at(2020, 1, 1)) == ("all", None)


# --- settling -----------------------------------------------------------------------------------------

USED = Usage(prompt_tokens=120, completion_tokens=80, cost_micros=4321)


def _slot(kind: str, amount: int = 999) -> Slot:
    return Slot(f"k:{kind}", amount, 10_000, 60, kind, None)


def test_a_request_counts_once_whatever_happened() -> None:
    assert settled_amount(_slot("requests", 1), USED) == 1
    assert settled_amount(_slot("requests", 1), None) == 1


@pytest.mark.parametrize("kind", ["tokens", "budget-tokens"])
def test_token_slots_settle_to_the_real_tokens(kind: str) -> None:
    assert settled_amount(_slot(kind), USED) == 200
    assert settled_amount(_slot(kind), Usage()) == 0


def test_cost_slots_settle_to_the_real_cost() -> None:
    assert settled_amount(_slot("cost"), USED) == 4321


@pytest.mark.parametrize("kind", ["tokens", "budget-tokens", "cost"])
def test_no_answer_refunds_the_whole_estimate(kind: str) -> None:
    assert settled_amount(_slot(kind), None) == 0


def test_settling_the_slots_of_a_request() -> None:
    limits = Limits(
        owner="key:a",
        rate=(RateLimit("requests", "rpm", 5), RateLimit("tokens", "rpm", 10_000)),
        usage=UsageLimit(credit_limit=100, type="tokens"),
    )
    prompt, completion = estimate({"max_tokens": 500}, 2000)
    reserved = slots(limits, NOW, prompt=prompt, completion=completion, cost_micros=0)
    assert [slot.amount for slot in reserved] == [1, 1000, 1000]
    assert [settled_amount(slot, USED) for slot in reserved] == [1, 200, 200]
    assert [settled_amount(slot, None) for slot in reserved] == [1, 0, 0]
