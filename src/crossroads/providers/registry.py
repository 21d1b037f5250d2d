"""Provider slug -> adapter, built once at start-up from the table and the settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from crossroads.errors import BadRequest
from crossroads.providers.anthropic import AnthropicAdapter
from crossroads.providers.azure import AzureOpenAI
from crossroads.providers.base import CHAT, MESSAGES, Adapter
from crossroads.providers.bedrock import BedrockAdapter
from crossroads.providers.cohere import CohereAdapter
from crossroads.providers.compatible import TABLE
from crossroads.providers.gemini import GeminiAdapter
from crossroads.providers.messages import MessagesBridge
from crossroads.providers.mock import MockAdapter
from crossroads.providers.openai import OpenAIFormat
from crossroads.providers.vertex import VertexAdapter


class UnknownProvider(BadRequest):
    default_code = "invalid_provider"


class Registry:
    def __init__(self, adapters: Mapping[str, Adapter]) -> None:
        self._adapters = dict(adapters)
        self._names = ", ".join(sorted(self._adapters))
        # /v1/messages for providers that speak OpenAI's chat format: through the bridge.
        self._bridged: dict[str, Adapter] = {
            slug: MessagesBridge(adapter)
            for slug, adapter in self._adapters.items()
            if MESSAGES not in adapter.endpoints and CHAT in adapter.endpoints
        }

    def for_endpoint(self, slug: str, endpoint: str) -> Adapter:
        """The adapter that serves `endpoint` for this provider (a bridge for /v1/messages)."""
        adapter = self.get(slug)
        if endpoint == MESSAGES and endpoint not in adapter.endpoints:
            return self._bridged.get(slug, adapter)
        return adapter

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
    adapters["anthropic"] = AnthropicAdapter(overrides.get("anthropic"))
    adapters["bedrock"] = BedrockAdapter(overrides.get("bedrock"))
    adapters["azure-openai"] = AzureOpenAI(overrides.get("azure-openai"))
    for slug in ("google", "gemini"):  # Portkey's slug, and the name people type
        adapters[slug] = GeminiAdapter(slug, overrides.get(slug))
    adapters["vertex-ai"] = VertexAdapter(overrides.get("vertex-ai"))
    adapters["cohere"] = CohereAdapter(overrides.get("cohere"))
    return Registry(adapters)
