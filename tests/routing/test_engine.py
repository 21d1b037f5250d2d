"""The routing engine without HTTP: a scripted attempt function, a fake clock and a seeded rng."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossroads.errors import BadRequest, GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from crossroads.routing.backoff import Backoff
from crossroads.routing.breaker import HealthStore, NoHealth
from crossroads.routing.conditions import compile_query
from crossroads.routing.engine import Router, RoutingFailed
from crossroads.routing.plan import BreakerPolicy, Conditional, Fallback, Leaf, LoadBalance, RetryPolicy
from crossroads.storage.health import MemoryHealth

Outcome = str | GatewayError


class World:
    """A fake clock and sleep, and a scripted answer per leaf path."""

    def __init__(self, script: dict[str, Sequence[Outcome]], *, latency: float = 0.0) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.calls: list[str] = []
        self.budgets: list[float] = []
        self.script = {k: list(v) for k, v in script.items()}
        self.latency = latency

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def attempt(self, leaf: Leaf[str], remaining: float) -> str:
        self.calls.append(leaf.path)
        self.budgets.append(remaining)
        self.now += self.latency
        answers = self.script[leaf.path]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, GatewayError):
            raise answer
        return answer

    def router(
        self,
        *,
        deadline: float = 600,
        health: HealthStore | None = None,
        seed: int = 1,
        context: Mapping[str, Any] | None = None,
        backoff: Backoff | None = None,
    ) -> Router[str, str]:
        return Router(
            attempt=self.attempt,
            deadline=self.now + deadline,
            clock=self.clock,
            wall=self.clock,
            sleep=self.sleep,
            rng=random.Random(seed),
            health=health or NoHealth(),
            backoff=backoff or Backoff(base_s=1, cap_s=16, retry_after_cap_s=60),
            context=context or {},
        )


def leaf(
    path: str,
    *,
    attempts: int = 0,
    breaker: BreakerPolicy | None = None,
    weight: float = 1.0,
    name: str | None = None,
    honour: bool = True,
    on_status: frozenset[int] | None = None,
) -> Leaf[str]:
    retry = RetryPolicy(
        attempts=attempts,
        honour_retry_after=honour,
        **({"on_status": on_status} if on_status is not None else {}),
    )
    return Leaf(
        path,
        path,
        path.rsplit(".", maxsplit=1)[-1],
        health_key=path,
        retry=retry,
        breaker=breaker,
        name=name,
        weight=weight,
    )


def fail(status: int, **headers: str) -> UpstreamError:
    return UpstreamError(f"failed with {status}", provider="p", status=status, headers=dict(headers))


async def test_fallback_moves_on_in_order_and_reports_the_answering_path() -> None:
    world = World({"a": [fail(503)], "b": [fail(500)], "c": ["ok-c"]})
    routed = await world.router().run(Fallback("config", (leaf("a"), leaf("b"), leaf("c"))))
    assert (routed.value, routed.path, routed.retries) == ("ok-c", "c", 0)
    assert world.calls == ["a", "b", "c"]
    assert [(a.path, a.status) for a in routed.attempts] == [("a", 503), ("b", 500), ("c", 200)]


async def test_fallback_stops_on_a_status_not_listed() -> None:
    world = World({"a": [fail(400)], "b": ["ok"]})
    node = Fallback("config", (leaf("a"), leaf("b")), on_status=frozenset({429, 503}))
    with pytest.raises(RoutingFailed) as caught:
        await world.router().run(node)
    assert caught.value.error.http_status == 400 and world.calls == ["a"]


@pytest.mark.parametrize("error", [UpstreamUnavailable("reset"), UpstreamTimeout("slow")])
async def test_network_errors_and_timeouts_always_fall_back(error: GatewayError) -> None:
    world = World({"a": [error], "b": ["ok"]})
    node = Fallback("config", (leaf("a"), leaf("b")), on_status=frozenset({429}))
    assert (await world.router().run(node)).value == "ok"


async def test_all_failing_raises_the_last_failure() -> None:
    world = World({"a": [fail(503)], "b": [fail(429)]})
    with pytest.raises(RoutingFailed) as caught:
        await world.router().run(Fallback("config", (leaf("a"), leaf("b"))))
    assert caught.value.error.http_status == 429 and caught.value.path == "b"


async def test_retries_with_full_jitter_backoff() -> None:
    world = World({"a": [fail(503), fail(502), fail(500), "ok"]})
    routed = await world.router(seed=7).run(leaf("a", attempts=3))
    assert routed.retries == 3 and world.calls == ["a"] * 4
    expected_rng = random.Random(7)
    assert world.sleeps == [pytest.approx(expected_rng.uniform(0, min(16, 2**n))) for n in range(3)]
    assert all(0 <= s < 2**n for n, s in enumerate(world.sleeps))


async def test_retry_count_is_minus_one_when_retries_are_exhausted() -> None:
    world = World({"a": [fail(503)]})
    with pytest.raises(RoutingFailed) as caught:
        await world.router().run(leaf("a", attempts=2))
    assert caught.value.retries == -1 and len(world.calls) == 3


async def test_statuses_outside_the_retry_list_are_not_retried() -> None:
    world = World({"a": [fail(400)]})
    with pytest.raises(RoutingFailed) as caught:
        await world.router().run(leaf("a", attempts=3))
    assert caught.value.retries == 0 and world.calls == ["a"]
    world = World({"a": [fail(503), "ok"]})
    with pytest.raises(RoutingFailed):
        await world.router().run(leaf("a", attempts=3, on_status=frozenset({429})))


async def test_network_errors_are_retried_even_when_not_listed() -> None:
    world = World({"a": [UpstreamUnavailable("reset"), "ok"]})
    routed = await world.router().run(leaf("a", attempts=1, on_status=frozenset({429})))
    assert routed.retries == 1


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"x-ms-retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "2.5"}, 2.5),
    ],
)
async def test_retry_after_forms_are_honoured(headers: dict[str, str], wait: float) -> None:
    world = World({"a": [fail(429, **headers), "ok"]})
    await world.router().run(leaf("a", attempts=1))
    assert world.sleeps == [pytest.approx(wait)]


async def test_retry_after_as_an_http_date() -> None:
    world = World({"a": ["x"]})
    world.now = 1_800_000_000.0
    when = format_datetime(datetime.fromtimestamp(world.now + 7, tz=UTC), usegmt=True)
    world.script["a"] = [fail(503, **{"retry-after": when}), "ok"]
    await world.router().run(leaf("a", attempts=1))
    assert world.sleeps == [pytest.approx(7, abs=1)]


async def test_retry_after_over_the_cap_falls_over_instead_of_sleeping() -> None:
    world = World({"a": [fail(429, **{"retry-after": "120"})], "b": ["ok"]})
    routed = await world.router().run(Fallback("config", (leaf("a", attempts=3), leaf("b"))))
    assert world.sleeps == [] and routed.path == "b"
    world = World({"a": [fail(429, **{"retry-after": "120"})]})
    with pytest.raises(RoutingFailed) as caught:
        await world.router().run(leaf("a", attempts=3))
    assert caught.value.retries == -1


async def test_retry_after_ignored_when_not_honoured() -> None:
    world = World({"a": [fail(429, **{"retry-after": "30"}), "ok"]})
    await world.router(seed=3).run(leaf("a", attempts=1, honour=False))
    assert world.sleeps[0] < 1


async def test_one_deadline_covers_every_attempt_and_fallback() -> None:
    world = World({"a": [fail(503)], "b": [fail(503)], "c": ["ok"]}, latency=4.0)
    node = Fallback("config", (leaf("a", attempts=5), leaf("b"), leaf("c")))
    with pytest.raises(RoutingFailed):
        await world.router(deadline=10, backoff=Backoff(base_s=0.5, cap_s=0.5)).run(node)
    assert world.now - 1000.0 <= 10 + 4.0  # no attempt starts after the deadline
    assert all(budget <= 10 for budget in world.budgets)
    assert world.budgets == sorted(world.budgets, reverse=True)  # each attempt gets what is left


async def test_loadbalance_never_picks_weight_zero_and_only_tries_one() -> None:
    world = World({"a": ["a"], "b": ["b"]})
    node = LoadBalance("config", (leaf("a", weight=0), leaf("b", weight=1)))
    for seed in range(50):
        assert (await world.router(seed=seed).run(node)).value == "b"
    world = World({"a": [fail(503)], "b": ["b"]})
    with pytest.raises(RoutingFailed):
        await world.router(seed=0).run(LoadBalance("config", (leaf("a", weight=1), leaf("b", weight=0))))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=2, max_size=4))
def test_loadbalance_frequencies_follow_the_weights(weights: list[int]) -> None:
    import asyncio

    world = World({f"t{i}": [f"t{i}"] for i in range(len(weights))})
    node = LoadBalance("config", tuple(leaf(f"t{i}", weight=w) for i, w in enumerate(weights)))
    router = world.router(seed=sum(weights))
    draws = 4000
    counts: Counter[str] = Counter()

    async def run_all() -> None:
        for _ in range(draws):
            counts[(await router.run(node)).value] += 1

    asyncio.run(run_all())
    total = sum(weights)
    for i, weight in enumerate(weights):
        expected = draws * weight / total
        # within 5 standard deviations of the binomial
        spread = 5 * (draws * (weight / total) * (1 - weight / total)) ** 0.5
        assert abs(counts[f"t{i}"] - expected) <= spread, (weights, counts)


async def test_conditional_first_match_then_default() -> None:
    world = World({"paid": ["paid"], "free": ["free"]})
    node = Conditional(
        "config",
        (
            (compile_query({"metadata.plan": {"$eq": "paid"}}), leaf("paid", name="paid")),
            (compile_query({"params.model": {"$in": ["x", "y"]}}), leaf("free", name="free")),
        ),
        default=leaf("free", name="free"),
    )
    ctx = {"metadata": {"plan": "paid"}, "params": {"model": "x"}}
    assert (await world.router(context=ctx).run(node)).value == "paid"
    assert (await world.router(context={"metadata": {}, "params": {"model": "y"}}).run(node)).value == "free"
    assert (await world.router(context={"metadata": {}, "params": {}}).run(node)).value == "free"
    no_default = Conditional("config", node.branches)
    with pytest.raises(RoutingFailed) as caught:
        await world.router(context={}).run(no_default)
    assert isinstance(caught.value.error, BadRequest)


async def test_strategies_nest() -> None:
    world = World({"a": [fail(503)], "b1": [fail(503)], "b2": ["ok-b2"]})
    inner = LoadBalance("config.targets[1]", (leaf("b1", weight=1), leaf("b2", weight=0)))
    outer = Fallback("config", (leaf("a"), Fallback("config.targets[1]", (inner, leaf("b2")))))
    routed = await world.router().run(outer)
    assert routed.value == "ok-b2" and world.calls == ["a", "b1", "b2"]


BREAKER = BreakerPolicy(failure_threshold=2, cooldown_s=30, max_cooldown_s=100)


async def test_breaker_opens_skips_and_probes_half_open() -> None:
    health = MemoryHealth()
    world = World({"a": [fail(503)], "b": ["ok-b"]})
    node = Fallback("config", (leaf("a", breaker=BREAKER), leaf("b", breaker=BREAKER)))
    for _ in range(2):
        await world.router(health=health).run(node)
    assert world.calls == ["a", "b", "a", "b"]
    world.calls.clear()
    await world.router(health=health).run(node)
    assert world.calls == ["b"]  # a is open: skipped
    world.now += 31  # cooldown over: half-open, a is tried again
    world.script["a"] = [fail(503)]
    await world.router(health=health).run(node)
    assert world.calls == ["b", "a", "b"]
    world.calls.clear()
    world.now += 31  # the second trip doubled the cooldown: still open
    await world.router(health=health).run(node)
    assert world.calls == ["b"]
    world.now += 30
    world.script["a"] = ["ok-a"]
    assert (await world.router(health=health).run(node)).value == "ok-a"  # probe succeeds: closed


async def test_open_targets_go_last_and_all_open_means_try_anyway() -> None:
    health = MemoryHealth()
    for key in ("a", "b"):
        for _ in range(2):
            await health.record(key, True, BREAKER, 1000.0)
    world = World({"a": [fail(503)], "b": ["ok-b"]})
    node = Fallback("config", (leaf("a", breaker=BREAKER), leaf("b", breaker=BREAKER)))
    assert (await world.router(health=health).run(node)).value == "ok-b"
    assert world.calls == ["a", "b"]
    lb = LoadBalance("config", (leaf("a", breaker=BREAKER), leaf("b", breaker=BREAKER)))
    await health.record("b", False, BREAKER, world.now + 40)  # b's probe succeeded: closed
    for seed in range(20):
        assert (await world.router(health=health, seed=seed).run(lb)).value == "ok-b"


async def test_client_errors_do_not_hurt_health() -> None:
    health = MemoryHealth()
    world = World({"a": [fail(400)]})
    for _ in range(5):
        with pytest.raises(RoutingFailed):
            await world.router(health=health).run(leaf("a", breaker=BREAKER))
    assert await health.open_among(["a"], world.now) == set()
