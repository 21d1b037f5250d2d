"""From a config (or the headers alone) to the routing tree of one request.

Inheritance down the tree is Portkey's: `override_params` merge (the child wins per key),
`retry`, `cache` and `cb_config` are replaced by a child's own, everything else is
inherited when the child does not set it. The request's `x-portkey-custom-host`,
`-forward-headers` and `-request-timeout` win over the config for every target. A target
without a provider uses `x-portkey-provider`; the `Authorization` key goes only to targets
of that same provider, so a client's key is never sent to another provider.

A virtual key (`x-portkey-virtual-key`, a target's `virtual_key`, or `@slug` as the provider)
supplies the provider and its credentials, which win over any the request carries. Its
credentials only ever go to the provider's own endpoint or the custom host stored with it:
a request pairing it with another host is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from crossroads.config.parse import hooks_of
from crossroads.config.schema import (
    DEFAULT_RETRY_STATUSES,
    MAX_RETRY_ATTEMPTS,
    CacheSpec,
    CircuitBreakerSpec,
    ConfigNode,
    RetrySpec,
)
from crossroads.errors import BadRequest, ConfigError, Forbidden
from crossroads.governance.directory import VirtualKeyAccess
from crossroads.pipeline.headers import RequestOptions
from crossroads.providers.base import Target
from crossroads.providers.registry import Registry
from crossroads.routing.conditions import compile_query
from crossroads.routing.plan import BreakerPolicy, Conditional, Fallback, Leaf, LoadBalance, Node, RetryPolicy
from crossroads.secret import SECRET_OPTIONS, Secret
from crossroads.settings import CircuitBreakerSettings
from crossroads.upstream.hosts import HostPolicy, HostRefused

VirtualKeys = Mapping[str, VirtualKeyAccess]
_NO_KEYS: VirtualKeys = {}


@dataclass(frozen=True, slots=True)
class Route:
    """What a leaf calls: a provider target, and the body fields to override for it."""

    target: Target
    override_params: Mapping[str, Any] | None = None
    virtual_key: VirtualKeyAccess | None = None  # whose allow-list and limits apply
    cache: CacheSpec | None = None  # the config's cache for this target (None: the request's default)


@dataclass(frozen=True, slots=True)
class _Inherited:
    override_params: Mapping[str, Any] | None = None
    retry: RetrySpec | None = None
    cache: CacheSpec | None = None
    cb_config: CircuitBreakerSpec | None = None
    custom_host: str | None = None
    forward_headers: tuple[str, ...] | None = None
    request_timeout: int | None = None
    strict: bool | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class Planner:
    def __init__(self, registry: Registry, hosts: HostPolicy, breaker: CircuitBreakerSettings) -> None:
        self._registry = registry
        self._hosts = hosts
        self._breaker = breaker

    def from_headers(self, opts: RequestOptions, vks: VirtualKeys = _NO_KEYS) -> Node[Route]:
        """No config: the headers name one target (Portkey's implicit config, index `config`)."""
        slug = _vk_slug(opts.virtual_key, opts.provider)
        if slug is not None:
            vk = _vk(vks, slug, "")
            target = _vk_target(vk, opts, opts.custom_host, "", {})
            return Leaf("config", Route(target, virtual_key=vk), vk.provider, health_key="", breaker=None)
        if not opts.provider:
            raise BadRequest(
                "Either x-portkey-config or x-portkey-provider header is required "
                "(e.g. x-portkey-provider: openai, or mock to try the gateway offline)",
                param="x-portkey-provider",
                code="missing_provider",
            )
        self._registry.get(opts.provider)  # 400 naming the valid providers
        custom_host = self._hosts.check_url(opts.custom_host) if opts.custom_host else None
        target = Target(
            provider=opts.provider,
            api_key=opts.api_key,
            custom_host=custom_host,
            forward_headers=opts.forward_headers,
            request_timeout_ms=opts.request_timeout_ms,
            strict_open_ai_compliance=opts.strict_open_ai_compliance,
            options=opts.options,
        )
        # A lone target is always tried, so its health is not consulted and not kept.
        return Leaf("config", Route(target), opts.provider, health_key="", breaker=None)

    def from_config(
        self, config: ConfigNode, opts: RequestOptions, vks: VirtualKeys = _NO_KEYS
    ) -> Node[Route]:
        return self._node(config, opts, "config", _Inherited(), vks)

    # -- compiling --------------------------------------------------------------------------

    def _node(
        self, node: ConfigNode, opts: RequestOptions, path: str, parent: _Inherited, vks: VirtualKeys
    ) -> Node[Route]:
        hooks = hooks_of(node)
        if hooks:
            raise ConfigError(
                f"{_where(path)}{hooks[0]}: guardrails and hooks are not supported by this gateway yet; "
                "remove them rather than have them silently skipped",
                code="unsupported_config_field",
            )
        inherited = _inherit(parent, node)
        if not node.targets:
            return self._leaf(node, opts, path, inherited, vks)
        children = tuple(
            self._node(child, opts, f"{path}.targets[{index}]", inherited, vks)
            for index, child in enumerate(node.targets)
        )
        strategy = node.strategy
        assert strategy is not None  # the parser requires a strategy with targets
        weight = 1.0 if node.weight is None else node.weight
        if strategy.mode == "single":
            return children[0]
        if strategy.mode == "fallback":
            codes = frozenset(strategy.on_status_codes) if strategy.on_status_codes is not None else None
            return Fallback(path, children, codes, node.name, weight)
        if strategy.mode == "loadbalance":
            return LoadBalance(path, children, node.name, weight)
        by_name = {
            child.name: built for child, built in zip(node.targets, children, strict=True) if child.name
        }
        branches = tuple((compile_query(c.query), by_name[c.then]) for c in strategy.conditions or ())
        default = by_name[strategy.default] if strategy.default is not None else None
        return Conditional(path, branches, default, node.name, weight, children)

    def _leaf(
        self, node: ConfigNode, opts: RequestOptions, path: str, inherited: _Inherited, vks: VirtualKeys
    ) -> Leaf[Route]:
        where = _where(path)
        slug = _vk_slug(node.virtual_key, node.provider)
        if slug is None and node.provider is None and node.api_key is None:
            slug = _vk_slug(opts.virtual_key, opts.provider)  # the headers' virtual key
        if slug is not None:
            return self._vk_leaf(_vk(vks, slug, where), node, opts, path, inherited)
        provider = node.provider or opts.provider
        if not provider:
            raise BadRequest(
                f"{where}provider: this target names no provider; "
                "set `provider` on it or send x-portkey-provider",
                param="x-portkey-config",
                code="missing_provider",
            )
        if provider not in self._registry:
            self._registry.get(provider)  # raises, naming the valid providers
        same_as_header = node.provider is None or node.provider == opts.provider
        api_key = node.api_key or (opts.api_key if same_as_header else None)
        raw_host = opts.custom_host or inherited.custom_host
        try:
            custom_host = self._hosts.check_url(raw_host) if raw_host else None
        except HostRefused as exc:
            where_host = "x-portkey-custom-host: " if opts.custom_host else f"{where}custom_host: "
            raise HostRefused(where_host + exc.message) from None
        options: dict[str, Any] = dict(inherited.options)
        if same_as_header:
            options.update(opts.options)
        options = {
            k: _secret(v) if k in SECRET_OPTIONS and isinstance(v, str | dict) else v
            for k, v in options.items()
        }
        target = Target(
            provider=provider,
            api_key=api_key,
            custom_host=custom_host,
            forward_headers=opts.forward_headers or inherited.forward_headers or (),
            request_timeout_ms=opts.request_timeout_ms or inherited.request_timeout,
            strict_open_ai_compliance=inherited.strict
            if inherited.strict is not None
            else opts.strict_open_ai_compliance,
            options=options,
        )
        enabled = self._breaker.enabled
        return Leaf(
            path,
            Route(target, inherited.override_params, cache=inherited.cache),
            provider,
            health_key=_health_key(target, inherited.override_params) if enabled else "",
            retry=_retry(inherited.retry),
            breaker=_policy(self._breaker, inherited.cb_config) if enabled else None,
            name=node.name,
            weight=1.0 if node.weight is None else node.weight,
        )

    def _vk_leaf(
        self, vk: VirtualKeyAccess, node: ConfigNode, opts: RequestOptions, path: str, inherited: _Inherited
    ) -> Leaf[Route]:
        where = _where(path)
        if node.provider and not node.provider.startswith("@") and node.provider != vk.provider:
            raise ConfigError(
                f"{where}provider: {node.provider!r} does not match the virtual key {vk.slug!r} "
                f"(a {vk.provider} key); leave provider out",
            )
        host = opts.custom_host or inherited.custom_host
        target = _vk_target(vk, opts, host, where, {**inherited.options, **node.options})
        target = msgspec.structs.replace(
            target,
            forward_headers=opts.forward_headers or inherited.forward_headers or (),
            request_timeout_ms=opts.request_timeout_ms or inherited.request_timeout,
            strict_open_ai_compliance=inherited.strict
            if inherited.strict is not None
            else opts.strict_open_ai_compliance,
        )
        enabled = self._breaker.enabled
        return Leaf(
            path,
            Route(target, inherited.override_params, vk, inherited.cache),
            vk.provider,
            health_key=_health_key(target, inherited.override_params) if enabled else "",
            retry=_retry(inherited.retry),
            breaker=_policy(self._breaker, inherited.cb_config) if enabled else None,
            name=node.name,
            weight=1.0 if node.weight is None else node.weight,
        )


def _vk(vks: VirtualKeys, slug: str, where: str) -> VirtualKeyAccess:
    found = vks.get(slug)
    if found is None:  # the pipeline opens every virtual key a request names before planning
        raise BadRequest(
            f"{where}virtual_key: no virtual key has the slug {slug!r}", code="virtual_key_not_found"
        )
    return found


def _vk_slug(virtual_key: str | None, provider: str | None) -> str | None:
    if virtual_key:
        return virtual_key
    if provider and provider.startswith("@"):
        return provider[1:]
    return None


def _vk_target(
    vk: VirtualKeyAccess,
    opts: RequestOptions,
    requested_host: str | None,
    where: str,
    inherited: Mapping[str, Any],
) -> Target:
    """The target a virtual key makes: its provider, credentials and host, nothing else's."""
    if requested_host and requested_host.rstrip("/") != (vk.custom_host or "").rstrip("/"):
        allowed = (
            "its provider's endpoint or the custom host stored with it"
            if vk.custom_host
            else ("its provider's own endpoint")
        )
        raise Forbidden(
            f"{where}custom_host: the virtual key {vk.slug!r} may only be sent to {allowed}; "
            "remove x-portkey-custom-host / custom_host from this request (an admin can store a "
            "custom_host on the virtual key)",
            param="x-portkey-custom-host",
            code="custom_host_not_allowed",
        )
    options: dict[str, Any] = {}
    if opts.provider in (vk.provider, "@" + vk.slug) or opts.virtual_key == vk.slug:
        options.update(opts.options)
    options.update(inherited)
    options = {k: v for k, v in options.items() if k not in SECRET_OPTIONS}  # only the vault's
    options.update(vk.options)
    return Target(
        provider=vk.provider,
        api_key=vk.api_key,
        custom_host=vk.custom_host,
        forward_headers=opts.forward_headers,
        request_timeout_ms=opts.request_timeout_ms,
        strict_open_ai_compliance=opts.strict_open_ai_compliance,
        options=options,
    )


def _inherit(parent: _Inherited, node: ConfigNode) -> _Inherited:
    overrides = parent.override_params
    if node.override_params:
        overrides = {**(overrides or {}), **node.override_params}
    cb_config = (
        node.strategy.cb_config if node.strategy is not None and node.strategy.cb_config else parent.cb_config
    )
    return replace(
        parent,
        override_params=overrides,
        retry=node.retry if node.retry is not None else parent.retry,
        cache=node.cache if node.cache is not None else parent.cache,
        cb_config=cb_config,
        custom_host=node.custom_host or parent.custom_host,
        forward_headers=tuple(h.lower() for h in node.forward_headers)
        if node.forward_headers is not None
        else parent.forward_headers,
        request_timeout=node.request_timeout or parent.request_timeout,
        strict=node.strict_open_ai_compliance
        if node.strict_open_ai_compliance is not None
        else parent.strict,
        options={**parent.options, **node.options} if node.options else parent.options,
    )


def _retry(spec: RetrySpec | None) -> RetryPolicy:
    if spec is None:
        return RetryPolicy(attempts=0)
    statuses = spec.on_status_codes if spec.on_status_codes is not None else DEFAULT_RETRY_STATUSES
    return RetryPolicy(
        attempts=min(spec.attempts, MAX_RETRY_ATTEMPTS),
        on_status=frozenset(statuses),
        honour_retry_after=spec.use_retry_after_header is not False,
    )


def _policy(settings: CircuitBreakerSettings, spec: CircuitBreakerSpec | None) -> BreakerPolicy:
    spec = spec or CircuitBreakerSpec()
    cooldown_ms = spec.cooldown_interval or settings.cooldown_ms
    return BreakerPolicy(
        failure_threshold=spec.failure_threshold or settings.failure_threshold,
        failure_percentage=spec.failure_threshold_percentage or settings.failure_percentage,
        minimum_requests=spec.minimum_requests or settings.minimum_requests,
        window_s=settings.window_ms / 1000,
        cooldown_s=cooldown_ms / 1000,
        max_cooldown_s=max(settings.max_cooldown_ms, cooldown_ms) / 1000,
        failure_statuses=frozenset(spec.failure_status_codes) if spec.failure_status_codes else None,
    )


def _health_key(target: Target, overrides: Mapping[str, Any] | None) -> str:
    """What a target's health is kept under: the same upstream, key and model share it.
    The key is in it only as a fingerprint."""
    model = (overrides or {}).get("model", "")
    key = target.api_key.fingerprint() if target.api_key else "-"
    raw = f"{target.provider}|{target.custom_host or ''}|{key}|{model}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def _where(path: str) -> str:
    return f"{path.removeprefix('config.').removeprefix('config')}." if path != "config" else ""


def _secret(value: str | dict[str, Any]) -> Secret:
    """A credential option as a Secret; an object (a service account JSON in a config) as its JSON text."""
    return Secret(value if isinstance(value, str) else msgspec.json.encode(value).decode())
