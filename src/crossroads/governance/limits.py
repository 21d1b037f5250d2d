"""Rate limits and budgets (Portkey's `rate_limits` and `usage_limits`), pure: which counters a
request touches, how much it reserves up front, and what it settles to afterwards.

A request reserves before any provider is called: 1 for each request-count limit, and an
estimate of its tokens (prompt size / 4 + its max_tokens, or DEFAULT_COMPLETION_ESTIMATE) or
cost for each token or cost limit. Reservations are atomic across every limit it touches
(all or none), on one gateway or many sharing Redis. Afterwards the estimate is replaced by
the real usage (refunded entirely when no provider answered). Overshoot is therefore bounded:
a budget can end above its limit by at most the amount requests in flight under-estimated
(zero when they set max_tokens; see docs/governance.md).
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Annotated, Any, Final, Literal

import msgspec

from crossroads.storage.counters import Slot

WINDOW_SECONDS: Final = {"rpm": 60, "rph": 3600, "rpd": 86400}
_UNIT_NAMES: Final = {"rpm": "minute", "rph": "hour", "rpd": "day"}
DEFAULT_COMPLETION_ESTIMATE: Final = 1024
COST_UNIT: Final = 1_000_000  # budgets in cost are counted in micro-dollars (integers)


class RateLimit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: Literal["requests", "tokens"]
    unit: Literal["rpm", "rph", "rpd"]
    value: Annotated[int, msgspec.Meta(gt=0)]


class UsageLimit(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    credit_limit: Annotated[float, msgspec.Meta(gt=0)]
    type: Literal["cost", "tokens"] = "cost"
    alert_threshold: Annotated[float, msgspec.Meta(gt=0)] | None = None
    periodic_reset: Literal["monthly", "weekly"] | None = None
    periodic_reset_days: Annotated[int, msgspec.Meta(gt=0)] | None = None
    next_usage_reset_at: str | None = None  # accepted from the API; computed, not trusted

    @property
    def limit_units(self) -> int:
        return round(self.credit_limit * COST_UNIT) if self.type == "cost" else int(self.credit_limit)


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The limits of one owner (an API key or a virtual key)."""

    owner: str  # e.g. "key:<id>" or "vk:<id>"
    rate: tuple[RateLimit, ...] = ()
    usage: UsageLimit | None = None
    created_at: float = 0.0  # for periodic_reset_days

    @property
    def empty(self) -> bool:
        return not self.rate and self.usage is None


class Usage(msgspec.Struct, frozen=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micros: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def parse_rate_limits(data: Any) -> tuple[RateLimit, ...]:
    if data in (None, []):
        return ()
    return tuple(msgspec.convert(data, list[RateLimit]))


def parse_usage_limit(data: Any) -> UsageLimit | None:
    if data in (None, {}):
        return None
    return msgspec.convert(data, UsageLimit)


def estimate(body: dict[str, Any] | None, body_size: int) -> tuple[int, int]:
    """(prompt tokens, completion tokens) a request may use, before it is sent."""
    prompt = max(1, body_size // 4)
    completion = DEFAULT_COMPLETION_ESTIMATE
    if body:
        for field in ("max_completion_tokens", "max_tokens"):
            value = body.get(field)
            if isinstance(value, int) and value > 0:
                completion = value
                break
    return prompt, completion


def slots(limits: Limits, now: float, *, prompt: int, completion: int, cost_micros: int) -> list[Slot]:
    out: list[Slot] = []
    for rule in limits.rate:
        seconds = WINDOW_SECONDS[rule.unit]
        start = int(now // seconds) * seconds
        amount = 1 if rule.type == "requests" else prompt + completion
        out.append(
            Slot(
                f"rl:{limits.owner}:{rule.type}:{rule.unit}:{start}",
                amount,
                rule.value,
                seconds + 60,
                rule.type,
                start + seconds,
                f"{rule.value} {rule.type} per {_UNIT_NAMES[rule.unit]}",
            )
        )
    usage = limits.usage
    if usage is not None:
        period, resets_at = budget_period(usage, now, limits.created_at)
        amount = cost_micros if usage.type == "cost" else prompt + completion
        ttl = int(resets_at - now) + 86400 if resets_at is not None else 0
        out.append(
            Slot(
                f"budget:{limits.owner}:{usage.type}:{period}",
                amount,
                usage.limit_units,
                ttl,
                "cost" if usage.type == "cost" else "budget-tokens",
                resets_at,
                _budget_label(usage),
            )
        )
    return out


def _budget_label(usage: UsageLimit) -> str:
    limit = f"{usage.credit_limit:g} USD" if usage.type == "cost" else f"{usage.limit_units} tokens"
    if usage.periodic_reset_days:
        return f"{limit} per {usage.periodic_reset_days} days"
    if usage.periodic_reset:
        return f"{limit} per {usage.periodic_reset.removesuffix('ly')}"
    return limit


def settled_amount(slot: Slot, usage: Usage | None) -> int:
    """What a slot should finally hold for this request (usage None: no provider answered)."""
    if slot.kind == "requests":
        return slot.amount
    if usage is None:
        return 0
    if slot.kind == "cost":
        return usage.cost_micros
    return usage.tokens


def budget_period(usage: UsageLimit, now: float, created_at: float) -> tuple[str, float | None]:
    """The budget's current period (a key) and when it ends (Unix time; None: it never resets)."""
    moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    if usage.periodic_reset_days:
        length = usage.periodic_reset_days * 86400
        index = int((now - created_at) // length)
        return f"d{usage.periodic_reset_days}:{index}", created_at + (index + 1) * length
    if usage.periodic_reset == "monthly":
        days = calendar.monthrange(moment.year, moment.month)[1]
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return f"m{moment.year:04d}{moment.month:02d}", (start + dt.timedelta(days=days)).timestamp()
    if usage.periodic_reset == "weekly":
        start = (moment - dt.timedelta(days=moment.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        year, week, _ = moment.isocalendar()
        return f"w{year:04d}{week:02d}", (start + dt.timedelta(days=7)).timestamp()
    return "all", None
