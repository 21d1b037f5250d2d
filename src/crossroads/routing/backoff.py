"""How long to wait before a retry: exponential backoff with full jitter, or what the
provider asked for in Retry-After (all its forms) when that is within the cap."""

from __future__ import annotations

import email.utils
import random
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float = 1.0  # Portkey waits 1, 2, 4, 8, 16 s; we draw uniformly below those
    cap_s: float = 16.0
    retry_after_cap_s: float = 60.0  # a longer Retry-After means: give up on this target

    def delay(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retry))."""
        return rng.uniform(0, min(self.cap_s, self.base_s * (2**retry)))


def retry_after_s(headers: Mapping[str, str], now: float) -> float | None:
    """The wait a response asks for, in seconds, or None when it asks for none.

    Reads `retry-after-ms` and `x-ms-retry-after-ms` (milliseconds, Azure/OpenAI), then
    `retry-after` as seconds or as an HTTP date (relative to `now`, a Unix time).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = lowered.get(name)
        if value is not None:
            try:
                ms = float(value)
            except ValueError:
                continue
            if ms >= 0:
                return ms / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when.timestamp() - now)
    return seconds if seconds >= 0 else None
