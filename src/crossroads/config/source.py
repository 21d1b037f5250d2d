"""Where a request's config comes from: `x-portkey-config` (inline JSON or a saved config's
id), else the gateway's default config, else none (the headers alone name the target)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from crossroads.config.parse import parse_config
from crossroads.config.schema import ConfigNode
from crossroads.errors import ConfigError

_INLINE_CACHE = 512  # distinct inline configs kept parsed (clients resend the same one)


class ConfigSource:
    def __init__(self, saved: Mapping[str, dict[str, Any]], default: str | dict[str, Any] | None) -> None:
        """Parses every saved config now, so a bad one stops the gateway at start-up."""
        self._saved: dict[str, ConfigNode] = {}
        for config_id, body in saved.items():
            try:
                self._saved[config_id] = parse_config(body, origin=f"configs.{config_id}")
            except ConfigError as exc:
                raise ConfigError(f"configs.{config_id}: {exc.message}") from None
        self._default: ConfigNode | None = None
        if isinstance(default, str):
            if default not in self._saved:
                raise ConfigError(f"default_config names {default!r}, which is not in `configs`")
            self._default = self._saved[default]
        elif default is not None:
            try:
                self._default = parse_config(default, origin="default_config")
            except ConfigError as exc:
                raise ConfigError(f"default_config: {exc.message}") from None
        self._inline = functools.lru_cache(maxsize=_INLINE_CACHE)(parse_config)

    async def resolve(self, header: str | None) -> ConfigNode | None:
        if header is None:
            return self._default
        text = header.strip()
        if text.startswith("{"):
            return self._inline(text)
        saved = self._saved.get(text)
        if saved is None:
            raise ConfigError(
                f"Invalid config passed: no saved config is named {text!r} "
                "(send a JSON config, or the id of one in the gateway's `configs`)",
                param="x-portkey-config",
                code="config_not_found",
            )
        return saved

    def saved_ids(self) -> list[str]:
        return sorted(self._saved)
