"""Embedders for the semantic cache that call an embeddings API through the gateway itself.

`ProviderEmbedder` asks a provider (OpenAI's `text-embedding-3-small` by default) for the
vector of a question, with the credentials of a virtual key named in the settings, or else
with the target the request is about to call (its host and key), so the request's own
provider embeds its questions. The call goes through the same adapters as any request.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

import msgspec
import numpy as np

from crossroads.cache.semantic import Vector
from crossroads.cache.similar import EmbedderUnavailable, LocalEmbedder
from crossroads.governance.directory import Directory
from crossroads.ids import new_id
from crossroads.pipeline.outcome import JsonOutcome, Outcome
from crossroads.providers.base import EMBEDDINGS, Adapter, Call, Target
from crossroads.providers.registry import Registry
from crossroads.settings import SemanticCacheSettings

Attempt = Callable[[Adapter, Call, Target], Awaitable[Outcome]]


class ProviderEmbedder:
    name = "provider"
    default_threshold = 0.95  # Portkey's documented default; not measurable offline here

    def __init__(
        self,
        attempt: Attempt,
        registry: Registry,
        settings: SemanticCacheSettings,
        directory: Directory | None,
        *,
        use_request_target: bool,
    ) -> None:
        self._attempt = attempt
        self._registry = registry
        self._settings = settings
        self._directory = directory
        self._use_request_target = use_request_target

    async def embed(self, text: str, target: Target) -> Vector:
        chosen = await self._target(target)
        body = {"model": self._settings.model, "input": text}
        call = Call(
            endpoint=EMBEDDINGS,
            method="POST",
            path="/embeddings",
            query="",
            body=msgspec.json.encode(body),
            json=body,
            content_type="application/json",
            stream=False,
            headers={},
            request_id=new_id(),
            trace_id=new_id(),
            metadata={},
        )
        adapter = self._registry.for_endpoint(chosen.provider, EMBEDDINGS)
        outcome = await self._attempt(adapter, call, chosen)
        if not isinstance(outcome, JsonOutcome):
            raise EmbedderUnavailable(f"{chosen.provider} did not answer the embeddings request with JSON")
        return _vector(outcome.body)

    async def _target(self, request_target: Target) -> Target:
        settings = self._settings
        if settings.virtual_key is not None and self._directory is not None:
            vk = await self._directory.virtual_key(settings.virtual_key)
            return Target(
                provider=vk.provider, api_key=vk.api_key, custom_host=vk.custom_host, options=vk.options
            )
        if self._use_request_target or request_target.provider == settings.provider:
            return Target(
                provider=request_target.provider,
                api_key=request_target.api_key,
                custom_host=request_target.custom_host,
                options=request_target.options,
            )
        raise EmbedderUnavailable(
            f"no credentials for the {settings.provider} embedder: set cache.semantic.virtual_key"
        )


def _vector(body: bytes) -> Vector:
    data = msgspec.json.decode(body)
    try:
        embedding = data["data"][0]["embedding"]
    except (KeyError, IndexError, TypeError):
        raise EmbedderUnavailable("the embeddings answer holds no embedding") from None
    if isinstance(embedding, str):  # base64 float32
        return np.frombuffer(base64.b64decode(embedding), dtype=np.float32).copy()
    return np.asarray(embedding, dtype=np.float32)


class LocalEmbed:
    """The local model behind the same call shape as ProviderEmbedder (the target is unused)."""

    name = "local"

    def __init__(self, model_path: str | None) -> None:
        self._local = LocalEmbedder(model_path)
        self.default_threshold = LocalEmbedder.default_threshold

    async def embed(self, text: str, target: Target) -> Vector:
        return await self._local.embed(text)
