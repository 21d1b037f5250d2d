"""One contract for every limit counter: in process (fake clock) and Redis (real, on 127.0.0.1:6379)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from crossroads.storage.counters import MemoryCounter, RedisCounter, Slot
from crossroads.storage.redis import MAX_CONNECTIONS, Redis, connect

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def single_connection() -> Redis:
    """A client with exactly one connection: its commands queue for it."""
    pool = aioredis.BlockingConnectionPool.from_url(REDIS_URL, max_connections=1, timeout=30)
    return Redis.from_pool(pool)


class Backend:
    """A counter under test, and how to look at its expiry from the outside."""

    def __init__(
        self,
        counter: MemoryCounter | RedisCounter,
        *,
        clock: FakeClock | None = None,
        client: Redis | None = None,
        prefix: str = "",
    ) -> None:
        self.counter = counter
        self.clock = clock
        self.client = client
        self.prefix = prefix

    async def value(self, key: str) -> int:
        [value] = await self.counter.values([key])
        return value

    async def redis_ttl(self, key: str) -> int:
        assert self.client is not None
        ttl: int = await self.client.ttl(self.prefix + key)
        return ttl


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        clock = FakeClock(T0)
        yield Backend(MemoryCounter(clock=clock), clock=clock)
        return
    client = connect(REDIS_URL)
    prefix = f"test:{uuid.uuid4().hex}:"
    yield Backend(RedisCounter(client, prefix=prefix), client=client, prefix=prefix)
    await _drop(client, prefix)
    await client.aclose()


async def _drop(client: Redis, prefix: str) -> None:
    async for key in client.scan_iter(match=prefix + "*"):
        await client.delete(key)


def slot(key: str, amount: int = 1, limit: int = 10, ttl_s: int = 60) -> Slot:
    return Slot(key, amount, limit, ttl_s, "requests", None)


# --- reserve ------------------------------------------------------------------------------------------


async def test_a_reservation_within_the_limit_is_counted(backend: Backend) -> None:
    counter = backend.counter
    assert await counter.reserve([slot("a", 3), slot("b", 5)]) is None
    assert await counter.values(["a", "b", "never"]) == [3, 5, 0]
    assert await counter.reserve([slot("a", 2)]) is None
    assert await counter.values(["a", "b"]) == [5, 5]


async def test_no_keys_and_no_slots(backend: Backend) -> None:
    assert await backend.counter.values([]) == []
    assert await backend.counter.reserve([]) is None


async def test_a_reservation_may_reach_the_limit_but_not_pass_it(backend: Backend) -> None:
    counter = backend.counter
    for _ in range(10):
        assert await counter.reserve([slot("a")]) is None
    assert await backend.value("a") == 10
    assert await counter.reserve([slot("a")]) == 0
    assert await backend.value("a") == 10
    assert await counter.reserve([slot("big", 11)]) == 0
    assert await counter.reserve([slot("exact", 10)]) is None
    assert await counter.values(["big", "exact"]) == [0, 10]


@pytest.mark.parametrize("refusing", [0, 1, 2])
async def test_one_refusal_reserves_nothing_anywhere(backend: Backend, refusing: int) -> None:
    counter = backend.counter
    keys = ["s0", "s1", "s2"]
    assert await counter.reserve([slot(key, 4, limit=10) for key in keys]) is None
    request = [slot(key, 4, limit=10 if index != refusing else 7) for index, key in enumerate(keys)]
    assert await counter.reserve(request) == refusing
    assert await counter.values(keys) == [4, 4, 4]
    # ... and the same request without the strict limit goes through everywhere.
    assert await counter.reserve([slot(key, 4, limit=10) for key in keys]) is None
    assert await counter.values(keys) == [8, 8, 8]


async def test_the_first_refusing_slot_is_named(backend: Backend) -> None:
    counter = backend.counter
    request = [slot("ok", 1, limit=5), slot("no1", 6, limit=5), slot("no2", 9, limit=5)]
    assert await counter.reserve(request) == 1
    assert await counter.values(["ok", "no1", "no2"]) == [0, 0, 0]


async def test_a_zero_amount_always_fits_until_the_limit_is_passed(backend: Backend) -> None:
    counter = backend.counter
    assert await counter.reserve([slot("a", 10)]) is None
    assert await counter.reserve([slot("a", 0)]) is None
    assert await backend.value("a") == 10


# --- adjust -------------------------------------------------------------------------------------------


async def test_adjust_settles_up_and_down(backend: Backend) -> None:
    counter = backend.counter
    tokens = slot("tokens", 1000, limit=5000)
    assert await counter.reserve([tokens]) is None
    await counter.adjust([(tokens, -700)])  # used 300 of the 1000 reserved
    assert await backend.value("tokens") == 300
    await counter.adjust([(tokens, 250)])  # used more than reserved
    assert await backend.value("tokens") == 550


async def test_a_refund_frees_room_for_the_next_request(backend: Backend) -> None:
    counter = backend.counter
    budget = slot("budget", 8, limit=10)
    assert await counter.reserve([budget]) is None
    assert await counter.reserve([budget]) == 0
    await counter.adjust([(budget, -8)])
    assert await backend.value("budget") == 0
    assert await counter.reserve([budget]) is None


async def test_a_refund_never_goes_below_zero(backend: Backend) -> None:
    counter = backend.counter
    a = slot("a", 5)
    assert await counter.reserve([a]) is None
    await counter.adjust([(a, -50)])
    assert await backend.value("a") == 0
    await counter.adjust([(a, 3)])
    assert await backend.value("a") == 3
    await counter.adjust([(slot("fresh"), -10)])
    assert await backend.value("fresh") == 0
    await counter.adjust([(slot("fresh"), 4)])
    assert await backend.value("fresh") == 4


async def test_adjust_applies_every_change(backend: Backend) -> None:
    counter = backend.counter
    a, b, c = slot("a", 5), slot("b", 5), slot("c", 5)
    assert await counter.reserve([a, b, c]) is None
    await counter.adjust([(a, -2), (b, 0), (c, 7)])
    assert await counter.values(["a", "b", "c"]) == [3, 5, 12]
    await counter.adjust([])
    await counter.adjust([(a, 0)])
    assert await counter.values(["a", "b", "c"]) == [3, 5, 12]


async def test_adjust_may_pass_the_limit(backend: Backend) -> None:
    """Settling records what was really used, even beyond the limit; the next reserve is refused."""
    counter = backend.counter
    a = slot("a", 5, limit=10)
    assert await counter.reserve([a]) is None
    await counter.adjust([(a, 20)])
    assert await backend.value("a") == 25
    assert await counter.reserve([slot("a", 0, limit=10)]) == 0


async def test_a_zero_adjustment_creates_nothing(backend: Backend) -> None:
    await backend.counter.adjust([(slot("zero"), 0)])
    assert await backend.value("zero") == 0
    if backend.client is not None:
        assert await backend.client.exists(backend.prefix + "zero") == 0


# --- expiry -------------------------------------------------------------------------------------------


async def test_counters_expire_after_their_ttl(backend: Backend) -> None:
    counter = backend.counter
    assert await counter.reserve([slot("w", 4, ttl_s=60)]) is None
    if backend.clock is not None:
        backend.clock.now = T0 + 59.9
        assert await backend.value("w") == 4
        backend.clock.now = T0 + 60
        assert await backend.value("w") == 0
        assert await counter.reserve([slot("w", 10, limit=10, ttl_s=60)]) is None  # a fresh window
        backend.clock.now = T0 + 119.9
        assert await backend.value("w") == 10
        backend.clock.now = T0 + 120
        assert await backend.value("w") == 0
    else:
        assert 0 < await backend.redis_ttl("w") <= 60


async def test_the_first_reservation_fixes_the_expiry(backend: Backend) -> None:
    counter = backend.counter
    assert await counter.reserve([slot("w", 1, ttl_s=60)]) is None
    if backend.clock is not None:
        backend.clock.now = T0 + 30
    assert await counter.reserve([slot("w", 1, ttl_s=3600)]) is None
    await counter.adjust([(slot("w", ttl_s=3600), 1)])
    assert await backend.value("w") == 3
    if backend.clock is not None:
        backend.clock.now = T0 + 60
        assert await backend.value("w") == 0
    else:
        assert 0 < await backend.redis_ttl("w") <= 60


async def test_a_refund_keeps_the_expiry(backend: Backend) -> None:
    counter = backend.counter
    w = slot("w", 5, ttl_s=60)
    assert await counter.reserve([w]) is None
    await counter.adjust([(w, -50)])  # clamped to 0
    await counter.adjust([(w, 2)])
    assert await backend.value("w") == 2
    if backend.clock is not None:
        backend.clock.now = T0 + 60
        assert await backend.value("w") == 0
    else:
        assert 0 < await backend.redis_ttl("w") <= 60


async def test_adjust_sets_an_expiry_on_a_new_counter(backend: Backend) -> None:
    await backend.counter.adjust([(slot("new", ttl_s=90), 7)])
    assert await backend.value("new") == 7
    if backend.clock is not None:
        backend.clock.now = T0 + 89
        assert await backend.value("new") == 7
        backend.clock.now = T0 + 90
        assert await backend.value("new") == 0
    else:
        assert 60 < await backend.redis_ttl("new") <= 90


async def test_a_zero_ttl_never_expires(backend: Backend) -> None:
    counter = backend.counter
    forever = slot("forever", 3, ttl_s=0)
    assert await counter.reserve([forever]) is None
    await counter.adjust([(forever, 2)])
    if backend.clock is not None:
        backend.clock.now = T0 + 10 * 365 * 86400
    else:
        assert await backend.redis_ttl("forever") == -1
    assert await backend.value("forever") == 5


async def test_clearing_out_expired_counters_keeps_the_live_ones() -> None:
    """Past 100,000 counters the memory counter drops expired ones; live ones must survive that."""
    clock = FakeClock(T0)
    counter = MemoryCounter(clock=clock)
    for index in range(60_000):
        assert await counter.reserve([slot(f"old{index}", ttl_s=10)]) is None
    for index in range(40_001):
        assert await counter.reserve([slot(f"live{index}", 2, ttl_s=0 if index % 2 else 3600)]) is None
    clock.now = T0 + 10
    assert await counter.reserve([slot("trigger", ttl_s=10)]) is None
    live = await counter.values([f"live{index}" for index in range(40_001)])
    assert live == [2] * 40_001
    assert await counter.values(["old0", "old59999", "trigger"]) == [0, 0, 1]


# --- concurrency --------------------------------------------------------------------------------------


async def _race(reserve: Callable[[int], Awaitable[int | None]], calls: int) -> list[int | None]:
    return list(await asyncio.gather(*(reserve(index) for index in range(calls))))


async def test_200_concurrent_reservations_for_50_places(backend: Backend) -> None:
    limited = slot("hot", 1, limit=50)
    results = await _race(lambda _: backend.counter.reserve([limited]), 200)
    assert results.count(None) == 50
    assert results.count(0) == 150
    assert await backend.value("hot") == 50


async def test_concurrent_reservations_over_several_slots_stay_all_or_nothing(backend: Backend) -> None:
    request = [slot("rpm", 1, limit=50), slot("tokens", 10, limit=300), slot("budget", 2, limit=1000)]
    results = await _race(lambda _: backend.counter.reserve(request), 200)
    assert results.count(None) == 30
    assert set(results) == {None, 1}
    assert await backend.counter.values(["rpm", "tokens", "budget"]) == [30, 300, 60]


async def test_concurrent_reserves_and_refunds_balance_out(backend: Backend) -> None:
    limited = slot("hot", 1, limit=50)

    async def reserve_then_refund(_: int) -> int | None:
        refused = await backend.counter.reserve([limited])
        if refused is None:
            await backend.counter.adjust([(limited, -1)])
        return refused

    results = await _race(reserve_then_refund, 200)
    assert results.count(None) >= 50
    assert await backend.value("hot") == 0


@pytest.mark.parametrize("connections", ["one", "pooled"])
async def test_two_redis_clients_share_one_limit(connections: str) -> None:
    """Two gateways (two clients, each with its own connections), their calls interleaved."""
    clients = (
        [single_connection(), single_connection()]
        if connections == "one"
        else [connect(REDIS_URL), connect(REDIS_URL)]
    )
    prefix = f"test:{uuid.uuid4().hex}:"
    counters = [RedisCounter(client, prefix=prefix) for client in clients]
    try:
        limited = slot("hot", 1, limit=50)
        results = await _race(lambda index: counters[index % 2].reserve([limited]), 200)
        assert results.count(None) == 50
        assert results.count(0) == 150
        assert await counters[0].values(["hot"]) == [50]
        assert await counters[1].values(["hot"]) == [50]
        await counters[1].adjust([(limited, -10)])
        assert await counters[0].values(["hot"]) == [40]
        assert await counters[0].reserve([slot("hot", 10, limit=50)]) is None
        assert await counters[1].reserve([limited]) == 0
    finally:
        await _drop(clients[0], prefix)
        for client in clients:
            await client.aclose()


async def test_the_shared_redis_client_queues_more_reservations_than_it_has_connections() -> None:
    """More requests in flight than the pool has connections wait for one; none fails."""
    client = connect(REDIS_URL)
    prefix = f"test:{uuid.uuid4().hex}:"
    calls = MAX_CONNECTIONS * 2 + 50
    try:
        counter = RedisCounter(client, prefix=prefix)
        limited = slot("hot", 1, limit=50)
        outcomes = await asyncio.gather(
            *(counter.reserve([limited]) for _ in range(calls)), return_exceptions=True
        )
        assert [outcome for outcome in outcomes if isinstance(outcome, BaseException)] == []
        assert outcomes.count(None) == 50
        assert outcomes.count(0) == calls - 50
        assert await counter.values(["hot"]) == [50]
    finally:
        await client.delete(prefix + "hot")
        await client.aclose()


async def test_redis_prefixes_keep_counters_apart() -> None:
    client = connect(REDIS_URL)
    base = f"test:{uuid.uuid4().hex}:"
    first, second = RedisCounter(client, prefix=base + "a:"), RedisCounter(client, prefix=base + "b:")
    try:
        assert await first.reserve([slot("k", 10, limit=10)]) is None
        assert await second.values(["k"]) == [0]
        assert await second.reserve([slot("k", 10, limit=10)]) is None
        assert await client.get(base + "a:k") == b"10"
    finally:
        await client.delete(base + "a:k", base + "b:k")
        await client.aclose()
