"""A config back out: as canonical JSON (snake_case, secrets masked) and as the tree that
`crossroads check-config` prints, with what each target inherits."""

from __future__ import annotations

from typing import Any

import msgspec

from crossroads.config.schema import DEFAULT_RETRY_STATUSES, MAX_RETRY_ATTEMPTS, SECRET_FIELDS, ConfigNode
from crossroads.secret import Secret


def to_dict(node: ConfigNode, *, reveal: bool = False) -> dict[str, Any]:
    """The config as canonical JSON-ready data (unset fields left out); api keys and secret
    options masked unless `reveal`."""

    def encode(value: Any) -> Any:
        if isinstance(value, Secret):
            return value.reveal() if reveal else "***"
        raise NotImplementedError

    data: dict[str, Any] = _clean(msgspec.to_builtins(node, enc_hook=encode), reveal)
    return data


def _clean(data: Any, reveal: bool) -> Any:
    if isinstance(data, list | tuple):
        return [_clean(item, reveal) for item in data]
    if not isinstance(data, dict):
        return data
    out = {k: v for k, v in data.items() if v is not None and k != "(options)"}
    for key in ("targets", "strategy", "retry", "cache"):
        if key in out:
            out[key] = _clean(out[key], reveal)
    if "strategy" in out and "cb_config" in out["strategy"]:
        out["strategy"]["cb_config"] = _clean(out["strategy"]["cb_config"], reveal)
    for key, value in (data.get("(options)") or {}).items():
        out[key] = value if reveal or not _secret_option(key) else "***"
    return out


def _secret_option(key: str) -> bool:
    return key in SECRET_FIELDS


def tree(node: ConfigNode) -> str:
    """A human view of the routing tree with each target's effective settings."""
    lines: list[str] = []
    _walk(node, "config", "", True, lines, {})
    return "\n".join(lines)


def _walk(
    node: ConfigNode,
    path: str,
    prefix: str,
    last: bool,
    lines: list[str],
    inherited: dict[str, Any],
) -> None:
    branch = "" if path == "config" else ("└─ " if last else "├─ ")
    effective = dict(inherited)
    if node.override_params:
        effective["override_params"] = {**effective.get("override_params", {}), **node.override_params}
    for field in (
        "retry",
        "cache",
        "custom_host",
        "forward_headers",
        "request_timeout",
        "strict_open_ai_compliance",
    ):
        value = getattr(node, field)
        if value is not None:
            effective[field] = value
    label = f"{path}"
    if node.name:
        label += f" [{node.name}]"
    if node.weight is not None:
        label += f" weight={node.weight:g}"
    if node.targets:
        strategy = node.strategy
        assert strategy is not None
        detail: str = strategy.mode
        if strategy.mode == "fallback":
            codes = strategy.on_status_codes
            after = "any failure" if codes is None else "status " + ", ".join(map(str, codes))
            detail += f" (moves on after {after})"
        if strategy.mode == "conditional":
            rules = [
                f"if {msgspec.json.encode(c.query).decode()} -> {c.then}" for c in strategy.conditions or ()
            ]
            detail += (
                " (" + "; ".join(rules) + (f"; else -> {strategy.default}" if strategy.default else "") + ")"
            )
        if strategy.cb_config is not None:
            detail += f" circuit breaker {msgspec.json.encode(strategy.cb_config).decode()}"
        lines.append(f"{prefix}{branch}{label}: {detail}")
        child_prefix = prefix + ("" if path == "config" else ("   " if last else "│  "))
        for index, child in enumerate(node.targets):
            _walk(
                child,
                f"{path}.targets[{index}]",
                child_prefix,
                index == len(node.targets) - 1,
                lines,
                effective,
            )
        return
    parts = [node.provider or "(provider from x-portkey-provider)"]
    if node.api_key is not None:
        parts.append("api_key ***")
    if node.virtual_key:
        parts.append(f"virtual_key {node.virtual_key}")
    retry = effective.get("retry")
    if retry is not None:
        statuses = retry.on_status_codes or DEFAULT_RETRY_STATUSES
        attempts = min(retry.attempts, MAX_RETRY_ATTEMPTS)
        parts.append(f"retry {attempts}x on {', '.join(map(str, statuses))}")
    if "request_timeout" in effective:
        parts.append(f"timeout {effective['request_timeout']}ms")
    if "custom_host" in effective:
        parts.append(f"custom_host {effective['custom_host']}")
    if "override_params" in effective:
        parts.append(f"override_params {msgspec.json.encode(effective['override_params']).decode()}")
    if "cache" in effective:
        cache = effective["cache"]
        parts.append(f"cache {cache.mode}" + (f" max_age {cache.max_age}s" if cache.max_age else ""))
    if "forward_headers" in effective:
        parts.append(f"forward_headers {', '.join(effective['forward_headers'])}")
    if "strict_open_ai_compliance" in effective:
        parts.append(f"strict_open_ai_compliance {str(effective['strict_open_ai_compliance']).lower()}")
    lines.append(f"{prefix}{branch}{label}: " + ", ".join(parts))
