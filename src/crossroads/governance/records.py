"""What the catalog stores: API keys, virtual keys and saved configs, as msgspec records.

Records hold no secret in the clear: an API key is kept as its SHA-256, a virtual key's
credentials as one AES-GCM sealed value (see vault.py); everything else is plain JSON.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeVar

import msgspec

from crossroads.governance.limits import Limits, RateLimit, UsageLimit

# Catalog kinds.
API_KEY: Final = "api_key"
KEY_ALIAS: Final = "api_key_alias"  # a rotated key's previous hash, valid until its transition ends
VIRTUAL_KEY: Final = "virtual_key"
CONFIG: Final = "config"
STATE: Final = "state"  # gateway-wide facts, e.g. LOCKED
LOCKED: Final = "locked"  # present once the first API key was created: open mode is over for good

T = TypeVar("T")


class KeyDefaults(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Applied to every request made with a key."""

    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    config_id: str | None = None  # a saved config's slug or id
    allow_config_override: bool = True  # may a request send its own x-portkey-config?


class ApiKey(msgspec.Struct, kw_only=True):
    id: str
    name: str
    key_hash: str
    masked: str
    type: str  # Portkey's "<type>-<sub_type>", e.g. "workspace-service"
    scopes: tuple[str, ...]
    defaults: KeyDefaults = msgspec.field(default_factory=KeyDefaults)
    description: str | None = None
    rate_limits: tuple[RateLimit, ...] = ()
    usage_limits: UsageLimit | None = None
    allowed_models: tuple[str, ...] | None = None
    expires_at: float | None = None  # Unix seconds
    workspace_id: str | None = None
    user_id: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def limits(self) -> Limits:
        return Limits(
            owner=f"key:{self.id}", rate=self.rate_limits, usage=self.usage_limits, created_at=self.created_at
        )


class KeyAlias(msgspec.Struct, kw_only=True):
    """The hash of a rotated-out key, accepted until `until`."""

    key_id: str
    until: float


class VirtualKey(msgspec.Struct, kw_only=True):
    id: str
    slug: str
    name: str
    provider: str
    sealed: str  # the credentials: {"key": ..., "secrets": {option: value}} sealed with the record id
    masked_api_key: str
    note: str | None = None
    model_config: dict[str, Any] = msgspec.field(default_factory=dict)  # as given (camelCase), secrets masked
    options: dict[str, str] = msgspec.field(default_factory=dict)  # non-secret target options (snake_case)
    custom_host: str | None = None
    allowed_models: tuple[str, ...] | None = None
    rate_limits: tuple[RateLimit, ...] = ()
    usage_limits: UsageLimit | None = None
    expires_at: float | None = None
    workspace_id: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def limits(self) -> Limits:
        return Limits(
            owner=f"vk:{self.id}", rate=self.rate_limits, usage=self.usage_limits, created_at=self.created_at
        )


class Credentials(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The sealed part of a virtual key."""

    key: str | None = None
    secrets: dict[str, str] = msgspec.field(default_factory=dict)  # secret target options (snake_case)


class SavedConfig(msgspec.Struct, kw_only=True):
    id: str
    slug: str
    name: str
    config: dict[str, Any]
    version: int
    version_id: str
    is_default: int = 0
    status: Literal["active", "archived"] = "active"
    workspace_id: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


class ConfigVersion(msgspec.Struct, kw_only=True):
    version_id: str
    config: dict[str, Any]
    name: str


def encode(record: msgspec.Struct) -> str:
    return msgspec.json.encode(record).decode()


def decode(data: str, kind: type[T]) -> T:
    return msgspec.json.decode(data, type=kind)
