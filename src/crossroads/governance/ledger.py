"""Rate limits and budgets at request time: reserve before the provider is called, settle after.

`reserve` takes an estimate on every counter of an owner at once (all or nothing, atomic in
the counter backend) or refuses with the error the client gets: 429 with `Retry-After` for
a rate limit, 412 for an exhausted budget. The Reservation it returns is settled exactly once
with the real usage (or refunded when no provider answered).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable

from crossroads.errors import BudgetExceeded, GatewayError, RateLimited
from crossroads.governance.limits import COST_UNIT, Limits, Usage, settled_amount, slots
from crossroads.governance.prices import Prices
from crossroads.storage.counters import Counter, Slot

log = logging.getLogger("crossroads.limits")

_MAX_PLANS = 10_000


class Reservation:
    __slots__ = ("_counter", "_model", "_prices", "_settled", "_slots", "owner")

    def __init__(
        self, counter: Counter, owner: str, reserved: list[Slot], model: str | None, prices: Prices
    ) -> None:
        self._counter = counter
        self.owner = owner
        self._slots = reserved
        self._model = model
        self._prices = prices
        self._settled = False

    async def settle(self, tokens: tuple[int, int] | None) -> None:
        """Replace the estimate with (prompt, completion) tokens used; None: nothing was used."""
        if self._settled:
            return
        self._settled = True
        usage = None
        if tokens is not None:
            prompt, completion = tokens
            usage = Usage(prompt, completion, self._prices.micros(self._model, prompt, completion))
        changes = [(slot, settled_amount(slot, usage) - slot.amount) for slot in self._slots]
        try:
            await self._counter.adjust(changes)
        except Exception:  # a settlement must never fail the response that was already sent
            log.exception("could not settle the usage of %s", self.owner)


class Ledger:
    def __init__(self, counter: Counter, prices: Prices, clock: Callable[[], float] = time.time) -> None:
        self.counter = counter
        self.prices = prices
        self._clock = clock
        # owner -> (its limits, until when, its counters with amount 0): the counter keys of an
        # owner change only when a window or period turns over, so they are worked out once.
        self._plans: dict[str, tuple[Limits, float, list[Slot]]] = {}

    def _plan(self, limits: Limits, now: float) -> list[Slot]:
        plan = self._plans.get(limits.owner)
        if plan is not None and plan[0] is limits and now < plan[1]:
            return plan[2]
        template = slots(limits, now, prompt=0, completion=0, cost_micros=0)
        until = min((s.resets_at for s in template if s.resets_at is not None), default=math.inf)
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[limits.owner] = (limits, until, template)
        return template

    async def reserve(
        self, limits: Limits, *, who: str, model: str | None, prompt: int, completion: int
    ) -> Reservation:
        now = self._clock()
        tokens = prompt + completion
        wanted = []
        for s in self._plan(limits, now):
            kind = s.kind
            if kind == "requests":
                amount = 1
            elif kind == "cost":
                amount = self.prices.micros(model, prompt, completion)
            else:
                amount = tokens
            wanted.append(Slot(s.key, amount, s.limit, s.ttl_s, kind, s.resets_at, s.label))
        refused = await self.counter.reserve(wanted)
        if refused is not None:
            slot = wanted[refused]
            used = None
            if slot.kind != "requests" and slot.amount <= slot.limit:
                try:  # what is left, for the message (a refusal only: not on the request path)
                    (used,) = await self.counter.values([slot.key])
                except Exception:  # the message loses its numbers, the refusal stands
                    log.exception("could not read the counter of %s", limits.owner)
            raise _refusal(slot, who, now, used)
        return Reservation(self.counter, limits.owner, wanted, model, self.prices)


def _refusal(slot: Slot, who: str, now: float, used: int | None = None) -> GatewayError:
    """The error for a refused reservation: which limit, what is left of it (from `used`, the
    counter's value) and what this request would have needed."""
    left = max(0, slot.limit - used) if used is not None else None
    if slot.kind in ("requests", "tokens"):
        wait = max(1, math.ceil((slot.resets_at or now) - now))
        if slot.amount > slot.limit:
            message = (
                f"This request alone ({slot.amount} tokens estimated) exceeds the rate limit of {who} "
                f"({slot.label}): lower max_tokens"
            )
        elif slot.kind == "tokens" and left:
            message = (
                f"Rate limit of {who} ({slot.label}): {left} tokens left in this window, this request "
                f"needs an estimated {slot.amount} (lower max_tokens, or retry after {wait}s)"
            )
        else:
            message = f"Rate limit of {who} exceeded ({slot.label}); retry after {wait}s"
        return RateLimited(message, headers={"retry-after": str(wait)})
    resets = (
        "; it resets at " + dt.datetime.fromtimestamp(slot.resets_at, tz=dt.UTC).isoformat(timespec="seconds")
        if slot.resets_at
        else ""
    )
    if slot.amount > slot.limit:
        return BudgetExceeded(
            f"This request alone (estimated at {_amount(slot, slot.amount)}) exceeds the budget of {who} "
            f"({slot.label}): lower max_tokens"
        )
    if left:  # some is left, not enough for this request's estimate
        return BudgetExceeded(
            f"The budget of {who} ({slot.label}) has {_amount(slot, left)} left, and this request needs "
            f"an estimated {_amount(slot, slot.amount)}: lower max_tokens{resets}"
        )
    return BudgetExceeded(f"The budget of {who} is exhausted ({slot.label}){resets}")


def _amount(slot: Slot, units: int) -> str:
    """A budget amount as people read it: tokens, or US dollars (counted in micro-dollars)."""
    if slot.kind == "cost":
        return f"{units / COST_UNIT:.6f}".rstrip("0").rstrip(".") + " USD"
    return f"{units} tokens"
