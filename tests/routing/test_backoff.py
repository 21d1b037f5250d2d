"""Retry-After in all its forms, and the backoff bounds."""

from __future__ import annotations

import random

from crossroads.routing.backoff import Backoff, retry_after_s

NOW = 1_800_000_000.0


def test_forms() -> None:
    assert retry_after_s({"Retry-After": "5"}, NOW) == 5
    assert retry_after_s({"retry-after-ms": "1200"}, NOW) == 1.2
    assert retry_after_s({"x-ms-retry-after-ms": "300"}, NOW) == 0.3
    assert retry_after_s({"retry-after": "Wed, 21 Jan 2027 08:00:00 GMT"}, 1_800_518_400.0) == 0.0
    assert (
        retry_after_s({"retry-after": "Fri, 15 Jan 2027 08:00:10 GMT"}, 1_799_999_999.0 + 10 - 1) is not None
    )
    assert retry_after_s({}, NOW) is None
    assert retry_after_s({"retry-after": "soon"}, NOW) is None
    assert retry_after_s({"retry-after": "-3"}, NOW) is None
    assert retry_after_s({"retry-after-ms": "x", "retry-after": "2"}, NOW) == 2


def test_http_date_is_relative_to_now() -> None:
    assert retry_after_s({"retry-after": "Thu, 01 Jan 1970 00:00:30 GMT"}, 10.0) == 20.0


def test_full_jitter_stays_under_the_capped_exponential() -> None:
    backoff = Backoff(base_s=1, cap_s=16)
    rng = random.Random(5)
    for retry in range(10):
        for _ in range(100):
            assert 0 <= backoff.delay(retry, rng) < min(16, 2**retry)
