"""Build the gateway from Settings: the one place where the parts are wired together."""

from __future__ import annotations

from crossroads.config.source import ConfigSource
from crossroads.errors import ConfigError
from crossroads.http.asgi import GatewayApp
from crossroads.pipeline.gateway import Gateway
from crossroads.pipeline.plan import Planner
from crossroads.providers.registry import build_registry
from crossroads.routing.breaker import HealthStore, NoHealth
from crossroads.settings import Settings, SettingsError, load_settings
from crossroads.storage.health import MemoryHealth, RedisHealth
from crossroads.storage.redis import connect
from crossroads.upstream.client import UpstreamClient
from crossroads.upstream.hosts import HostPolicy


def create_app(settings: Settings) -> GatewayApp:
    registry = build_registry({slug: p.base_url for slug, p in settings.providers.items()})
    unknown = sorted(set(settings.providers) - set(registry))
    if unknown:
        raise SettingsError(
            f"invalid settings: unknown provider(s) under `providers`: {', '.join(unknown)}; "
            f"valid providers: {', '.join(registry)}"
        )
    hosts = HostPolicy(settings.trusted_custom_hosts)
    try:
        configs = ConfigSource(settings.configs, settings.default_config)
    except ConfigError as exc:
        raise SettingsError(f"invalid settings: {exc.message}") from None
    client = UpstreamClient(
        hosts,
        pool_size=settings.upstream_pool_size,
        connect_timeout_s=settings.connect_timeout_ms / 1000,
        idle_timeout_s=settings.stream_idle_timeout_ms / 1000,
    )
    redis = connect(settings.redis_url) if settings.redis_url else None
    health: HealthStore = RedisHealth(redis) if redis is not None else MemoryHealth()
    if not settings.circuit_breaker.enabled:
        health = NoHealth()
    planner = Planner(registry, hosts, settings.circuit_breaker)
    gateway = Gateway(
        settings=settings, registry=registry, client=client, planner=planner, configs=configs, health=health
    )

    async def shutdown() -> None:
        await client.close()
        if redis is not None:
            await redis.aclose()

    return GatewayApp(
        gateway,
        max_request_bytes=settings.max_request_bytes,
        on_startup=client.start,
        on_shutdown=shutdown,
    )


def create_app_from_env() -> GatewayApp:
    """uvicorn factory for worker processes: settings come from $CROSSROADS_CONFIG and the environment."""
    return create_app(load_settings())
