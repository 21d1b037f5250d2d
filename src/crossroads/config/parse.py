"""Parsing a Portkey config: JSON text or an object in, a validated ConfigNode out.

Keys are accepted in snake_case and camelCase (without Portkey's trap of renaming the
contents of `override_params`). A bad config is a ConfigError that says where and what:
`targets[1].retry.attempts: expected int, got str`, `unknown key 'retyr' at targets[0]
(valid keys: ...)`. Semantic checks (a conditional's target names, its query operators, a
strategy without targets, ...) happen here too, so a bad config fails when it is read,
not when a request happens to take the bad branch.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from crossroads.config.schema import (
    HOOK_FIELDS,
    MODES,
    CacheSpec,
    CircuitBreakerSpec,
    ConditionSpec,
    ConfigNode,
    RetrySpec,
    StrategySpec,
)
from crossroads.errors import ConfigError
from crossroads.routing.conditions import QueryError, compile_query
from crossroads.secret import CREDENTIAL_FIELDS, Secret

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Objects whose keys are ours to rename; everything else (override_params, queries,
# service-account JSON, hook definitions) is user data and kept as written.
_STRUCTS: Final[dict[str, type[msgspec.Struct]]] = {
    "strategy": StrategySpec,
    "retry": RetrySpec,
    "cache": CacheSpec,
    "cb_config": CircuitBreakerSpec,
}
_OPTIONS_KEY: Final = "(options)"


def snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower() if any(c.isupper() for c in key) else key


_BARE_KEY: Final = re.compile(r"[{,]\s*[A-Za-z_][A-Za-z0-9_]*\s*:")


def _quotes_hint(source: str | bytes) -> str:
    """What probably happened to JSON whose keys lost their double quotes: the shell ate them."""
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    if '"' in text or not _BARE_KEY.search(text):
        return ""
    return (
        "; its keys have no double quotes, which usually means the shell removed them: "
        "wrap the whole header in single quotes, e.g. -H 'x-portkey-config: {\"strategy\": ...}'"
    )


def parse_config(source: str | bytes | dict[str, Any], *, origin: str = "x-portkey-config") -> ConfigNode:
    """A validated config tree, or ConfigError naming the problem and where it is."""
    data: Any = source
    if isinstance(source, str | bytes):
        try:
            data = msgspec.json.decode(source)
        except msgspec.DecodeError as exc:
            raise ConfigError(
                f"Invalid config passed: {origin} is not valid JSON ({exc}){_quotes_hint(source)}",
                param=origin,
            ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"Invalid config passed: {origin} must be a JSON object", param=origin)
    if "options" in data and "targets" not in data:
        raise ConfigError(
            "This version of config is not supported in this route. Please migrate to the latest version "
            "(`options` became `targets` with a `strategy`)",
            param=origin,
        )
    normalized = _normalize_node(data, "")
    try:
        node = msgspec.convert(normalized, ConfigNode, dec_hook=_secret_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"Invalid config: {explain(str(exc))}", param=origin) from None
    _check(node, "", origin)
    return node


def _secret_hook(kind: type, value: Any) -> Any:
    if kind is Secret:
        if isinstance(value, str):
            return Secret(value)
        raise ValueError("expected a string")
    raise NotImplementedError


def _normalize_node(data: dict[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = snake(raw_key)
        if key in out or key in options:
            raise ConfigError(
                f"Invalid config: `{_join(path, key)}` is given twice (as snake_case and camelCase)"
            )
        if key in CREDENTIAL_FIELDS:
            options[key] = value
        elif key == "targets" and isinstance(value, list):
            out[key] = [
                _normalize_node(item, _join(path, f"targets[{i}]")) if isinstance(item, dict) else item
                for i, item in enumerate(value)
            ]
        elif key == "cache" and isinstance(value, str):
            out[key] = {"mode": value}  # the shorthand `"cache": "simple"`
        elif key == "forward_headers" and isinstance(value, str):
            out[key] = [name.strip() for name in value.split(",") if name.strip()]
        elif key in _STRUCTS and isinstance(value, dict):
            out[key] = _normalize_struct(value, _join(path, key))
        else:
            out[key] = value
    if options:
        out[_OPTIONS_KEY] = options
    return out


def _normalize_struct(data: dict[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = snake(raw_key)
        if key in out:
            raise ConfigError(f"Invalid config: `{path}.{key}` is given twice (as snake_case and camelCase)")
        if key == "cb_config" and isinstance(value, dict):
            out[key] = _normalize_struct(value, f"{path}.cb_config")
        elif key == "conditions" and isinstance(value, list):
            out[key] = [
                {snake(k): v for k, v in item.items()} if isinstance(item, dict) else item for item in value
            ]
        else:
            out[key] = value
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# -- messages -------------------------------------------------------------------------------

_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "node": tuple(f.encode_name for f in msgspec.structs.fields(ConfigNode) if f.encode_name != _OPTIONS_KEY),
    "strategy": tuple(f.encode_name for f in msgspec.structs.fields(StrategySpec)),
    "retry": tuple(f.encode_name for f in msgspec.structs.fields(RetrySpec)),
    "cache": tuple(f.encode_name for f in msgspec.structs.fields(CacheSpec)),
    "cb_config": tuple(f.encode_name for f in msgspec.structs.fields(CircuitBreakerSpec)),
    "conditions": tuple(f.encode_name for f in msgspec.structs.fields(ConditionSpec)),
}


def explain(message: str) -> str:
    """msgspec's message, rewritten to name the path first and the valid keys or values."""
    text, _, where = message.partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    if text.startswith("Object contains unknown field"):
        key = text.split("`")[1]
        valid = _FIELDS[_kind(path)]
        if _kind(path) == "node":
            valid = (*valid, "and the provider fields (aws_*, azure_*, vertex_*, openai_*, ...)")
        at = f" at `{path}`" if path else ""
        return f"unknown key `{key}`{at} (valid keys: {', '.join(valid)})"
    if text.startswith("Object missing required field"):
        key = text.split("`")[1]
        return f"`{_join(path, key)}` is required"
    if text.startswith("Invalid enum value") and path.endswith("strategy.mode"):
        return f"`{path}`: invalid mode {text.split(' ', 3)[3]}; must be one of: {', '.join(MODES)}"
    if text.startswith("Invalid enum value") and path.endswith("cache.mode"):
        return f"`{path}`: invalid mode {text.split(' ', 3)[3]}; must be one of: simple, semantic"
    return f"`{path}`: {text[0].lower()}{text[1:]}" if path else text


def _kind(path: str) -> str:
    last = re.sub(r"\[\d+\]$", "", path.rsplit(".", 1)[-1]) if path else ""
    if last in _FIELDS:
        return last
    return "node"


# -- semantic checks ---------------------------------------------------------------------------


def _check(node: ConfigNode, path: str, origin: str) -> None:
    where = path or "config"

    def fail(message: str) -> ConfigError:
        return ConfigError(f"Invalid config: {message}", param=origin)

    if node.strategy is not None and not node.targets:
        raise fail(f"`{_join(path, 'strategy')}` needs `targets` to route between")
    if node.targets and node.strategy is None:
        raise fail(f"`{_join(path, 'targets')}` needs a `strategy` (mode: {', '.join(MODES)})")
    if node.targets and (node.provider or node.api_key or node.virtual_key):
        raise fail(f"`{where}` has both `targets` and a provider: put the provider on a target")
    for header in node.forward_headers or ():
        if header.lower().startswith("x-portkey-"):
            raise fail(f"`{_join(path, 'forward_headers')}` cannot forward gateway headers ({header})")
    targets = node.targets or ()
    strategy = node.strategy
    if strategy is not None:
        names = [t.name for t in targets if t.name is not None]
        if strategy.mode == "conditional":
            _check_conditional(strategy, set(names), path, fail)
            if len(names) != len(set(names)):
                raise fail(f"`{_join(path, 'targets')}`: target names must be unique for conditional routing")
        if strategy.mode == "loadbalance" and all(
            (t.weight if t.weight is not None else 1) == 0 for t in targets
        ):
            raise fail(f"`{_join(path, 'targets')}`: every target has weight 0, so none can be chosen")
    for index, child in enumerate(targets):
        _check(child, _join(path, f"targets[{index}]"), origin)


def _check_conditional(strategy: StrategySpec, names: set[str], path: str, fail: Any) -> None:
    at = _join(path, "strategy")
    if not strategy.conditions:
        raise fail(f"`{at}.conditions`: conditional mode needs at least one condition")
    for index, condition in enumerate(strategy.conditions):
        if condition.then not in names:
            raise fail(
                f"`{at}.conditions[{index}].then`: no target is named {condition.then!r} "
                f"(named targets: {', '.join(sorted(names)) or 'none'})"
            )
        try:
            compile_query(condition.query)
        except QueryError as exc:
            raise fail(f"`{at}.conditions[{index}].query`: {exc}") from None
    if strategy.default is not None and strategy.default not in names:
        raise fail(f"`{at}.default`: no target is named {strategy.default!r}")


def hooks_of(node: ConfigNode) -> list[str]:
    """The hook/guardrail fields a node sets (the gateway refuses to run them silently)."""
    return [name for name in HOOK_FIELDS if getattr(node, name)]
