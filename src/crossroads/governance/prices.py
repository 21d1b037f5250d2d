"""What tokens cost, for cost budgets: US dollars per million input and output tokens.

Prices are looked up by model name: an exact entry, else the longest entry the model name
starts with (`gpt-4o-mini-2024-07-18` -> `gpt-4o-mini`), else the default, which is
deliberately high so that an unknown model uses a budget up too fast rather than too slow.
The table is overridden and extended with the `prices` setting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

# model prefix -> (input, output) USD per 1M tokens, list prices as of 2026-06.
BUILTIN: Final[dict[str, tuple[float, float]]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "claude-opus-4": (15.00, 75.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "anthropic.claude-sonnet-4": (3.00, 15.00),
    "anthropic.claude-3-5-haiku": (0.80, 4.00),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "mistral-large": (2.00, 6.00),
    "command-r-plus": (2.50, 10.00),
    "mock-": (1.00, 2.00),  # the built-in mock provider's models, so cost budgets can be tried offline
}
DEFAULT: Final = (15.00, 75.00)


class Prices:
    def __init__(self, extra: Mapping[str, tuple[float, float]] | None = None) -> None:
        self._table = {**BUILTIN, **(extra or {})}
        self._prefixes = sorted(self._table, key=len, reverse=True)
        self._cache: dict[str, tuple[float, float]] = {}

    def of(self, model: str | None) -> tuple[float, float]:
        if not model:
            return DEFAULT
        found = self._cache.get(model)
        if found is not None:
            return found
        name = model.rsplit("/", 1)[-1].lower()  # "us.anthropic..." and "org/model" forms
        price = self._table.get(name)
        if price is None:
            price = next((self._table[p] for p in self._prefixes if name.startswith(p)), DEFAULT)
        if len(self._cache) < 4096:
            self._cache[model] = price
        return price

    def micros(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> int:
        """The cost in micro-dollars (USD per 1M tokens = micro-dollars per token; rounded up)."""
        inp, out = self.of(model)
        return math.ceil(prompt_tokens * inp + completion_tokens * out)
