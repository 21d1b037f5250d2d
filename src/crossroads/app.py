"""Build the gateway from Settings: the one place where the parts are wired together."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossroads.cache.service import Cache
from crossroads.config.parse import parse_config
from crossroads.config.source import ConfigSource
from crossroads.errors import ConfigError
from crossroads.governance.admin import Admin
from crossroads.governance.directory import Directory
from crossroads.governance.ledger import Ledger
from crossroads.governance.prices import Prices
from crossroads.governance.vault import Vault, VaultError, load_master
from crossroads.http.asgi import GatewayApp
from crossroads.observability.metrics import CacheCollector, Metrics
from crossroads.observability.tracing import Tracing, TracingUnavailable
from crossroads.pipeline.access import Access
from crossroads.pipeline.caching import Caching
from crossroads.pipeline.gateway import Gateway
from crossroads.pipeline.plan import Planner
from crossroads.pipeline.tokens import Tokens
from crossroads.providers.base import ALL_ENDPOINTS
from crossroads.providers.registry import Registry, build_registry
from crossroads.routing.breaker import HealthStore, NoHealth
from crossroads.settings import SemanticCacheSettings, Settings, SettingsError, load_settings
from crossroads.storage.catalog import Catalog, open_catalog
from crossroads.storage.counters import Counter, MemoryCounter, RedisCounter
from crossroads.storage.health import MemoryHealth, RedisHealth
from crossroads.storage.redis import Redis, connect
from crossroads.storage.store import MemoryStore, RedisStore, Store
from crossroads.upstream.client import UpstreamClient
from crossroads.upstream.hosts import HostPolicy

if TYPE_CHECKING:
    from crossroads.pipeline.caching import Semantic

log = logging.getLogger("crossroads")

VAULT_PURPOSE = "virtual-keys"
MIN_ADMIN_KEY = 32
# A request allocates a few hundred container objects; the default first threshold (700)
# ran a young collection every couple of requests.
GC_THRESHOLDS = (20_000, 20, 20)


def create_app(settings: Settings) -> GatewayApp:
    registry = build_registry({slug: p.base_url for slug, p in settings.providers.items()})
    unknown = sorted(set(settings.providers) - set(registry))
    if unknown:
        raise SettingsError(
            f"invalid settings: unknown provider(s) under `providers`: {', '.join(unknown)}; "
            f"valid providers: {', '.join(registry)}"
        )
    hosts = HostPolicy(settings.trusted_custom_hosts)
    catalog = open_catalog(settings.database_url)
    vault = open_vault(settings)
    redis = connect(settings.redis_url) if settings.redis_url else None
    counters: Counter = RedisCounter(redis) if redis is not None else MemoryCounter()
    directory = Directory(
        catalog,
        vault,
        ttl_s=settings.catalog_cache_ttl_ms / 1000,
        admin_key=admin_key(settings),
        require_api_key=settings.require_api_key,
    )
    prices = Prices({model: (p.input, p.output) for model, p in settings.prices.items()})
    access = Access(directory, Ledger(counters, prices))
    try:
        configs = ConfigSource(settings.configs, settings.default_config, lookup=directory.config)
    except ConfigError as exc:
        raise SettingsError(f"invalid settings: {exc.message}") from None
    client = UpstreamClient(
        hosts,
        pool_size=settings.upstream_pool_size,
        connect_timeout_s=settings.connect_timeout_ms / 1000,
        idle_timeout_s=settings.stream_idle_timeout_ms / 1000,
    )
    health: HealthStore = RedisHealth(redis) if redis is not None else MemoryHealth()
    if not settings.circuit_breaker.enabled:
        health = NoHealth()
    planner = Planner(registry, hosts, settings.circuit_breaker)
    store: Store = (
        RedisStore(redis)
        if redis is not None
        else MemoryStore(settings.cache.max_entries, settings.cache.max_bytes)
    )
    gateway_ref: list[Gateway] = []

    def semantic_parts() -> Semantic:
        return _semantic(settings.cache.semantic, redis, gateway_ref[0], registry, directory)

    cache = Cache(store)
    caching = Caching(cache, settings.cache, semantic_parts)
    metrics = Metrics(providers=registry, endpoints=ALL_ENDPOINTS) if settings.metrics.enabled else None
    if metrics is not None:
        metrics.add(CacheCollector(cache.stats))
    try:
        tracing = Tracing(settings.tracing) if settings.tracing.otlp_endpoint else None
    except TracingUnavailable as exc:
        raise SettingsError(str(exc)) from None
    gateway = Gateway(
        settings=settings,
        registry=registry,
        client=client,
        planner=planner,
        configs=configs,
        health=health,
        access=access,
        caching=caching,
        tokens=Tokens(client, hosts),
        metrics=metrics,
        tracing=tracing,
    )
    gateway_ref.append(gateway)
    admin = _admin(catalog, vault, counters, frozenset(registry), hosts, directory.invalidate)

    async def startup() -> None:
        await catalog.start()
        await client.start()
        # Everything loaded so far lives as long as the process: keep it out of the cyclic
        # collector's scans, so a full collection walks only what requests allocated.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        if await directory.open_mode():
            log.warning(
                "OPEN MODE: no API key exists and require_api_key is off, so anyone who can reach "
                "this gateway may use it. Create a key (`crossroads keys create --name admin --scopes all`, "
                "or POST /v1/api-keys/organisation/service from this machine with a JSON body such as "
                '{"name": "admin", "scopes": ["all"]}) or set require_api_key: true before exposing it.'
            )

    async def shutdown() -> None:
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)  # exports the last spans
        await client.close()
        await catalog.close()
        if redis is not None:
            await redis.aclose()

    return GatewayApp(
        gateway,
        max_request_bytes=settings.max_request_bytes,
        on_startup=startup,
        on_shutdown=shutdown,
        admin=admin,
        metrics=metrics,
        metrics_public=settings.metrics.public,
        tracing=tracing,
    )


def _semantic(
    semantic: SemanticCacheSettings,
    redis: Redis | None,
    gateway: Gateway,
    registry: Registry,
    directory: Directory,
) -> Semantic:
    """The semantic cache's index (shared through Redis when there is one) and embedder:
    `local` (a model in process), `provider` (an embeddings API through the gateway), or
    `auto`: local when sentence-transformers is installed, else the request's own target."""
    from crossroads.cache.semantic import VectorIndex  # noqa: PLC0415  (numpy only when used)
    from crossroads.cache.similar import SimilarAnswers, local_embedder_installed  # noqa: PLC0415
    from crossroads.pipeline.embedding import LocalEmbed, ProviderEmbedder  # noqa: PLC0415
    from crossroads.storage.vectors import RedisVectorLog  # noqa: PLC0415

    log_ = RedisVectorLog(redis, semantic.max_entries) if redis is not None else None
    similar = SimilarAnswers(VectorIndex(semantic.max_entries), log_)
    embedder: LocalEmbed | ProviderEmbedder
    if semantic.embedder == "local" or (semantic.embedder == "auto" and local_embedder_installed()):
        embedder = LocalEmbed(semantic.model_path)
    else:
        use_request = semantic.embedder == "auto"
        embedder = ProviderEmbedder(
            gateway.attempt, registry, semantic, directory, use_request_target=use_request
        )
    return similar, embedder.embed, semantic.threshold or embedder.default_threshold


def open_vault(settings: Settings) -> Vault | None:
    try:
        master = load_master(settings.master_key, settings.master_key_file)
    except OSError as exc:
        raise SettingsError(f"invalid settings: cannot read master_key_file: {exc.strerror}") from None
    except VaultError as exc:
        raise SettingsError(f"invalid settings: master_key: {exc}") from None
    try:
        previous = load_master(settings.master_key_previous, None)
    except VaultError as exc:
        raise SettingsError(f"invalid settings: master_key_previous: {exc}") from None
    if master is None:
        if previous is not None:
            raise SettingsError("invalid settings: master_key_previous is set but master_key is not")
        return None
    return Vault(master, VAULT_PURPOSE, [previous] if previous is not None else [])


def admin_key(settings: Settings) -> str | None:
    value = settings.admin_key
    if settings.admin_key_file:
        try:
            value = Path(settings.admin_key_file).read_text().strip()
        except OSError as exc:
            raise SettingsError(f"invalid settings: cannot read admin_key_file: {exc.strerror}") from None
    if value is not None and len(value) < MIN_ADMIN_KEY:
        raise SettingsError(
            f"invalid settings: admin_key must be at least {MIN_ADMIN_KEY} characters "
            "(e.g. `openssl rand -base64 32`)"
        )
    return value or None


async def admin_for(settings: Settings) -> tuple[Admin, Callable[[], Awaitable[None]]]:
    """The admin operations alone, over the gateway's catalog (for the CLI), and how to close them."""
    registry = build_registry({slug: p.base_url for slug, p in settings.providers.items()})
    catalog = open_catalog(settings.database_url)
    vault = open_vault(settings)
    redis = connect(settings.redis_url) if settings.redis_url else None
    counters: Counter = RedisCounter(redis) if redis is not None else MemoryCounter()
    await catalog.start()

    async def close() -> None:
        await catalog.close()
        if redis is not None:
            await redis.aclose()

    return _admin(
        catalog, vault, counters, frozenset(registry), HostPolicy(settings.trusted_custom_hosts), _nothing
    ), close


def _admin(
    catalog: Catalog,
    vault: Vault | None,
    counters: Counter,
    providers: frozenset[str],
    hosts: HostPolicy,
    on_change: Callable[[], Awaitable[None]],
) -> Admin:
    return Admin(
        catalog=catalog,
        vault=vault,
        counters=counters,
        providers=providers,
        check_host=hosts.check_url,
        check_config=_check_config,
        on_change=on_change,
    )


async def _nothing() -> None:
    return None


def _check_config(data: dict[str, Any]) -> None:
    parse_config(data, origin="config")


def create_app_from_env() -> GatewayApp:
    """uvicorn factory for worker processes: settings come from $CROSSROADS_CONFIG and the environment."""
    return create_app(load_settings())
