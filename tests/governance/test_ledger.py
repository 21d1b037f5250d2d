"""Reserve and settle against real counters (memory and Redis), with an injected clock: limits
refuse with the right error, settle to real usage, refund on failure, and reset at the
window or period boundary."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest

from crossroads.errors import BudgetExceeded, RateLimited
from crossroads.governance.ledger import Ledger
from crossroads.governance.limits import Limits, RateLimit, UsageLimit, slots
from crossroads.governance.prices import Prices
from crossroads.storage.counters import MemoryCounter, RedisCounter, Slot
from crossroads.storage.redis import connect


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now

    def to(self, moment: dt.datetime) -> None:
        self.now = moment.timestamp()


START = dt.datetime(2026, 3, 31, 23, 59, 58, tzinfo=dt.UTC)  # two seconds before a new minute, day and month


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture(params=["memory", "redis"])
async def ledger(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[Ledger]:
    prices = Prices({"priced": (1.0, 2.0)})  # 1 and 2 micro-dollars per token
    if request.param == "memory":
        yield Ledger(MemoryCounter(clock), prices, clock)
        return
    client = connect("redis://127.0.0.1:6379/0")
    yield Ledger(RedisCounter(client, prefix=f"test:{uuid.uuid4().hex}:"), prices, clock)
    await client.aclose()


async def test_a_request_limit_refuses_with_retry_after_until_the_next_window(
    ledger: Ledger, clock: Clock
) -> None:
    limits = Limits(owner="key:1", rate=(RateLimit("requests", "rpm", 2),))
    for _ in range(2):
        await ledger.reserve(limits, who="this key", model=None, prompt=10, completion=10)
    with pytest.raises(RateLimited) as refused:
        await ledger.reserve(limits, who="this key", model=None, prompt=10, completion=10)
    assert refused.value.headers["retry-after"] == "2"  # the minute ends in two seconds
    assert "2 requests per minute" in refused.value.message
    clock.to(START + dt.timedelta(seconds=2))
    await ledger.reserve(limits, who="this key", model=None, prompt=10, completion=10)


async def test_a_refused_reservation_takes_nothing_from_the_other_limits(ledger: Ledger) -> None:
    limits = Limits(
        owner="key:2",
        rate=(RateLimit("requests", "rpd", 100), RateLimit("tokens", "rpd", 50)),
    )
    with pytest.raises(RateLimited, match="alone"):
        await ledger.reserve(limits, who="k", model=None, prompt=40, completion=40)
    (request_slot,) = [s for s in _slots(limits, ledger) if s.kind == "requests"]
    assert await ledger.counter.values([request_slot.key]) == [0]


def _slots(limits: Limits, ledger: Ledger) -> list[Slot]:
    return slots(limits, START.timestamp(), prompt=0, completion=0, cost_micros=0)


async def test_tokens_settle_to_the_real_usage_and_are_refunded_on_failure(ledger: Ledger) -> None:
    limits = Limits(owner="key:3", rate=(RateLimit("tokens", "rpd", 1000),))
    first = await ledger.reserve(limits, who="k", model=None, prompt=100, completion=400)
    second = await ledger.reserve(limits, who="k", model=None, prompt=100, completion=400)
    with pytest.raises(RateLimited):  # 1000 reserved: nothing more fits
        await ledger.reserve(limits, who="k", model=None, prompt=1, completion=1)
    await first.settle((90, 10))
    await second.settle(None)  # no provider answered
    await first.settle((1000, 1000))  # settling twice changes nothing
    (slot,) = _slots(limits, ledger)
    assert await ledger.counter.values([slot.key]) == [100]
    await ledger.reserve(limits, who="k", model=None, prompt=400, completion=500)


async def test_a_cost_budget_is_counted_in_micro_dollars_and_resets_monthly(
    ledger: Ledger, clock: Clock
) -> None:
    limits = Limits(owner="vk:4", usage=UsageLimit(credit_limit=0.001, type="cost", periodic_reset="monthly"))
    # 0.001 USD = 1000 micro-dollars; 200 prompt + 300 completion tokens of "priced" cost 200 + 600.
    reservation = await ledger.reserve(
        limits, who="this virtual key", model="priced", prompt=200, completion=300
    )
    await reservation.settle((200, 300))
    with pytest.raises(BudgetExceeded) as refused:
        await ledger.reserve(limits, who="this virtual key", model="priced", prompt=100, completion=100)
    assert "0.001 USD per month" in refused.value.message
    assert "2026-04-01T00:00:00+00:00" in refused.value.message
    assert refused.value.http_status == 412
    clock.to(dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    await ledger.reserve(limits, who="this virtual key", model="priced", prompt=100, completion=100)


async def test_a_weekly_token_budget_resets_on_monday(ledger: Ledger, clock: Clock) -> None:
    limits = Limits(owner="key:5", usage=UsageLimit(credit_limit=100, type="tokens", periodic_reset="weekly"))
    clock.to(dt.datetime(2026, 4, 5, 23, 0, tzinfo=dt.UTC))  # a Sunday
    spent = await ledger.reserve(limits, who="k", model=None, prompt=50, completion=50)
    await spent.settle((50, 50))
    with pytest.raises(BudgetExceeded, match="per week"):
        await ledger.reserve(limits, who="k", model=None, prompt=1, completion=1)
    clock.to(dt.datetime(2026, 4, 6, 0, 0, 1, tzinfo=dt.UTC))  # Monday
    await ledger.reserve(limits, who="k", model=None, prompt=1, completion=1)


async def test_a_budget_without_reset_never_resets(ledger: Ledger, clock: Clock) -> None:
    limits = Limits(owner="key:6", usage=UsageLimit(credit_limit=10, type="tokens"))
    spent = await ledger.reserve(limits, who="k", model=None, prompt=5, completion=5)
    await spent.settle((5, 5))
    clock.to(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(BudgetExceeded, match="exhausted"):
        await ledger.reserve(limits, who="k", model=None, prompt=1, completion=1)


async def test_a_budget_refusal_says_what_is_left_and_what_the_request_needs(ledger: Ledger) -> None:
    limits = Limits(owner="key:7", usage=UsageLimit(credit_limit=30, type="tokens"))
    spent = await ledger.reserve(limits, who="key 'app'", model=None, prompt=5, completion=10)
    await spent.settle((5, 10))  # 15 of 30 used
    with pytest.raises(BudgetExceeded) as refused:
        await ledger.reserve(limits, who="key 'app'", model=None, prompt=10, completion=10)
    message = refused.value.message
    assert "budget of key 'app' (30 tokens) has 15 tokens left" in message, message
    assert "this request needs an estimated 20 tokens" in message and "exhausted" not in message
    await spent.settle((15, 15))  # settling again changes nothing: 15 are still left
    fits = await ledger.reserve(limits, who="k", model=None, prompt=5, completion=10)
    await fits.settle((5, 10))
    with pytest.raises(BudgetExceeded, match=r"is exhausted \(30 tokens\)"):
        await ledger.reserve(limits, who="k", model=None, prompt=1, completion=1)


async def test_a_cost_refusal_says_what_is_left_in_dollars(ledger: Ledger) -> None:
    limits = Limits(owner="vk:8", usage=UsageLimit(credit_limit=0.001, type="cost"))
    spent = await ledger.reserve(limits, who="k", model="priced", prompt=100, completion=100)
    await spent.settle((100, 100))  # 300 of 1000 micro-dollars
    with pytest.raises(BudgetExceeded) as refused:
        await ledger.reserve(limits, who="k", model="priced", prompt=200, completion=300)  # 800
    assert "has 0.0007 USD left" in refused.value.message
    assert "needs an estimated 0.0008 USD" in refused.value.message


async def test_a_token_rate_limit_refusal_says_what_is_left_in_the_window(ledger: Ledger) -> None:
    limits = Limits(owner="key:9", rate=(RateLimit("tokens", "rpm", 100),))
    await ledger.reserve(limits, who="k", model=None, prompt=30, completion=30)
    with pytest.raises(RateLimited) as refused:
        await ledger.reserve(limits, who="k", model=None, prompt=25, completion=25)
    assert "40 tokens left in this window, this request needs an estimated 50" in refused.value.message
    assert refused.value.headers["retry-after"] == "2"
