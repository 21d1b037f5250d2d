"""Gateway API keys: how they look, how they are stored (a hash only), their scopes.

A key is `xr-` + 43 URL-safe characters (256 random bits), shown once at creation. Only its
SHA-256 is stored; lookups are by hash, so a presented key is never compared with a stored
secret character by character (the final check is constant-time anyway). 256 random bits
need no slow hash: nothing can be guessed from a leaked table.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

PREFIX: Final = "xr-"

# Portkey's scope names (../shared/reference/portkey-sdk.md §4.5), so `scopes` means the same here.
SCOPES: Final = frozenset(
    {
        "completions.write",
        "logs.view",
        "logs.list",
        "logs.export",
        "logs.write",
        "configs.create",
        "configs.read",
        "configs.list",
        "configs.update",
        "configs.delete",
        "virtual_keys.create",
        "virtual_keys.read",
        "virtual_keys.list",
        "virtual_keys.update",
        "virtual_keys.delete",
        "virtual_keys.copy",
        "api_keys.create",
        "api_keys.read",
        "api_keys.list",
        "api_keys.update",
        "api_keys.delete",
        "cache.clear",
        "metrics.read",  # GET /metrics (not a Portkey scope: Portkey has no such endpoint)
    }
)
ADMIN_SCOPES: Final = SCOPES - {"completions.write"}
DEFAULT_SCOPES: Final = ("completions.write",)
KEY_TYPES: Final = frozenset({"organisation", "workspace"})
KEY_SUB_TYPES: Final = frozenset({"service", "user"})


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def mask(secret: str) -> str:
    """What the API shows of a secret: enough to recognise it, not to use it (at most its
    first 3 and last 4 characters, and only of a secret of 20 or more)."""
    if len(secret) < 20:
        return "*" * len(secret)
    return secret[:3] + "*" * 8 + secret[-4:]


def looks_like_key(value: str) -> bool:
    return value.startswith(PREFIX) and len(value) >= len(PREFIX) + 40
