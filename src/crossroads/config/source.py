"""Where a request's config comes from: `x-portkey-config` (inline JSON, or the slug or id of a
saved config: from the settings file's `configs`, else from the catalog), else the gateway's
default config, else none (the headers alone name the target)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from crossroads.config.parse import parse_config
from crossroads.config.schema import ConfigNode
from crossroads.errors import ConfigError

_INLINE_CACHE = 512  # distinct inline configs kept parsed (clients resend the same one)
_STORED_CACHE = 1024


class StoredConfig(Protocol):
    """A saved config as the catalog holds it."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def config(self) -> dict[str, Any]: ...


Lookup = Callable[[str], Awaitable[StoredConfig | None]]


class ConfigSource:
    def __init__(
        self,
        saved: Mapping[str, dict[str, Any]],
        default: str | dict[str, Any] | None,
        lookup: Lookup | None = None,
    ) -> None:
        """Parses every saved config now, so a bad one stops the gateway at start-up."""
        self._lookup = lookup
        self._stored: dict[tuple[str, int], ConfigNode] = {}
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
        if saved is None and self._lookup is not None:
            saved = await self._from_catalog(text)
        if saved is None:
            raise ConfigError(
                f"Invalid config passed: no saved config has the slug or id {text!r} "
                "(send a JSON config, or the slug of a saved config)",
                param="x-portkey-config",
                code="config_not_found",
            )
        return saved

    async def _from_catalog(self, ref: str) -> ConfigNode | None:
        assert self._lookup is not None
        stored = await self._lookup(ref)
        if stored is None:
            return None
        key = (stored.id, stored.version)
        node = self._stored.get(key)
        if node is None:
            node = parse_config(stored.config, origin=f"saved config {ref}")
            if len(self._stored) >= _STORED_CACHE:
                self._stored.clear()
            self._stored[key] = node
        return node

    def saved_ids(self) -> list[str]:
        return sorted(self._saved)
