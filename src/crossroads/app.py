"""Build the gateway from Settings: the one place where the parts are wired together."""

from __future__ import annotations

from crossroads.http.asgi import GatewayApp
from crossroads.pipeline.gateway import Gateway
from crossroads.providers.registry import build_registry
from crossroads.settings import Settings, SettingsError, load_settings
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
    client = UpstreamClient(
        hosts,
        pool_size=settings.upstream_pool_size,
        connect_timeout_s=settings.connect_timeout_ms / 1000,
        idle_timeout_s=settings.stream_idle_timeout_ms / 1000,
    )
    gateway = Gateway(settings, registry, client, hosts)
    return GatewayApp(
        gateway,
        max_request_bytes=settings.max_request_bytes,
        on_startup=client.start,
        on_shutdown=client.close,
    )


def create_app_from_env() -> GatewayApp:
    """uvicorn factory for worker processes: settings come from $CROSSROADS_CONFIG and the environment."""
    return create_app(load_settings())
