"""Provider slug -> adapter, built once at start-up from the table and the settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from crossroads.errors import BadRequest
from crossroads.providers.base import Adapter
from crossroads.providers.compatible import TABLE
from crossroads.providers.mock import MockAdapter
from crossroads.providers.openai import OpenAIFormat


class UnknownProvider(BadRequest):
    default_code = "invalid_provider"


class Registry:
    def __init__(self, adapters: Mapping[str, Adapter]) -> None:
        self._adapters = dict(adapters)
        self._names = ", ".join(sorted(self._adapters))

    def get(self, slug: str) -> Adapter:
        adapter = self._adapters.get(slug)
        if adapter is None:
            raise UnknownProvider(
                f"Invalid provider passed: {slug!r}. Valid providers: {self._names}",
                param="x-portkey-provider",
            )
        return adapter

    def __contains__(self, slug: object) -> bool:
        return slug in self._adapters

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._adapters))


def build_registry(
    base_urls: Mapping[str, str | None] | None = None, clock: Callable[[], float] | None = None
) -> Registry:
    """Every built-in provider; `base_urls` overrides a provider's public URL (from settings)."""
    overrides = base_urls or {}
    adapters: dict[str, Adapter] = {
        profile.slug: OpenAIFormat(profile, overrides.get(profile.slug)) for profile in TABLE
    }
    adapters["mock"] = MockAdapter() if clock is None else MockAdapter(clock)
    return Registry(adapters)
