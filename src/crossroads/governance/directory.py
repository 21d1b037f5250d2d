"""The catalog as the request path reads it: who a presented key is, what a virtual key
holds (decrypted), what a saved config says, with a short in-process cache.

Every answer is kept for `ttl_s` (negative answers too, in a bounded set), so a request costs
no database round trip in the steady state. A change made through this process's admin API
clears the cache at once; a change made on another replica is seen here within `ttl_s`:
that is the documented propagation bound (and how long a revoked key may still work on
other replicas).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import msgspec

from crossroads.errors import BadRequest
from crossroads.governance import keys as keyfmt
from crossroads.governance import records as rec
from crossroads.governance import slugs
from crossroads.governance.limits import Limits
from crossroads.governance.vault import MasterKeyMissing, Vault, VaultError
from crossroads.secret import Secret
from crossroads.storage.catalog import Catalog

_MAX_ENTRIES: Final = 10_000


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: a gateway API key, the bootstrap admin key, or nobody (open mode)."""

    id: str  # the key's id; "admin" for the bootstrap key; "open" for open mode
    scopes: frozenset[str]
    limits: Limits | None = None
    defaults: rec.KeyDefaults = msgspec.field(default_factory=rec.KeyDefaults)
    allowed_models: tuple[str, ...] | None = None
    expires_at: float | None = None


class VirtualKeyAccess(msgspec.Struct, frozen=True, kw_only=True):
    """A virtual key ready to use: its credentials opened, its limits."""

    id: str
    slug: str
    provider: str
    api_key: Secret | None
    options: Mapping[str, str | Secret]
    custom_host: str | None
    allowed_models: tuple[str, ...] | None
    limits: Limits | None
    expires_at: float | None


class _Missing(msgspec.Struct, frozen=True):
    """No virtual key has the slug; `hint` names keys whose name matches it."""

    hint: str


class SavedConfigBody(msgspec.Struct, frozen=True):
    id: str
    version: int
    config: dict[str, Any]


OPEN: Final = Principal(id="open", scopes=keyfmt.SCOPES)
ADMIN: Final = Principal(id="admin", scopes=keyfmt.SCOPES)


class Directory:
    def __init__(
        self,
        catalog: Catalog,
        vault: Vault | None,
        *,
        ttl_s: float,
        admin_key: str | None,
        require_api_key: bool,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._catalog = catalog
        self._vault = vault
        self._ttl = ttl_s
        self._admin_hash = keyfmt.key_hash(admin_key) if admin_key else None
        self._require = require_api_key
        self._clock = clock
        self.wall = wall
        self._cache: dict[tuple[str, str], tuple[Any, float]] = {}
        self._locked = False
        self._loading: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self._generation = 0

    async def invalidate(self) -> None:
        self._cache.clear()
        self._generation += 1

    async def open_mode(self) -> bool:
        """No key is needed: nothing requires one and no API key was ever created."""
        if self._require or self._admin_hash is not None or self._locked:
            return False

        async def load() -> bool:
            return await self._catalog.get(rec.STATE, rec.LOCKED) is not None

        locked: bool = await self._cached("locked", "", load)
        if locked:  # for good: no need to ask again
            self._locked = True
        return not locked

    async def principal(self, presented: str) -> Principal | None:
        """The key's principal, or None when it is no key of ours (unknown, revoked, rotated out)."""
        digest = keyfmt.key_hash(presented)
        if self._admin_hash is not None and keyfmt.same_hash(digest, self._admin_hash):
            return ADMIN

        async def load() -> Principal | bool:
            return await self._load_key(digest) or False

        found = await self._cached("key", digest, load)
        if found is False:
            return None
        principal: Principal = found
        return principal

    async def _load_key(self, digest: str) -> Principal | None:
        data = await self._catalog.find(rec.API_KEY, digest)
        if data is None:
            alias_data = await self._catalog.find(rec.KEY_ALIAS, digest)
            if alias_data is None:
                return None
            alias = rec.decode(alias_data, rec.KeyAlias)
            if alias.until <= self.wall():
                return None
            data = await self._catalog.get(rec.API_KEY, alias.key_id)
            if data is None:
                return None
        key = rec.decode(data, rec.ApiKey)
        limits = key.limits()
        return Principal(
            id=key.id,
            scopes=frozenset(key.scopes),
            limits=None if limits.empty else limits,
            defaults=key.defaults,
            allowed_models=key.allowed_models,
            expires_at=key.expires_at,
        )

    async def virtual_key(self, slug: str) -> VirtualKeyAccess:
        found = await self._cached("vk", slug, lambda: self._load_virtual_key(slug))
        if isinstance(found, _Missing):
            raise BadRequest(
                f"No virtual key has the slug {slug!r}{found.hint}",
                param="x-portkey-virtual-key",
                code="virtual_key_not_found",
            )
        access: VirtualKeyAccess = found
        return access

    async def _load_virtual_key(self, slug: str) -> VirtualKeyAccess | _Missing:
        data = await self._catalog.find(rec.VIRTUAL_KEY, slug)
        if data is None:
            # Cached like the answer, so an unknown slug costs one read of the list per TTL.
            named = [rec.decode(d, rec.VirtualKey) for d in await self._catalog.all(rec.VIRTUAL_KEY)]
            return _Missing(slugs.suggestion(slug, [(v.slug, v.name) for v in named], "a virtual key"))
        vk = rec.decode(data, rec.VirtualKey)
        if self._vault is None:
            raise MasterKeyMissing("used")
        try:
            credentials = msgspec.json.decode(self._vault.open(vk.sealed, vk.id), type=rec.Credentials)
        except VaultError:
            # Wrong master key, or a ciphertext moved from another row: never use it.
            raise BadRequest(
                f"the credentials of virtual key {slug!r} cannot be decrypted "
                "(was the master key changed without re-encrypting?)",
                code="virtual_key_unreadable",
            ) from None
        options: dict[str, str | Secret] = dict(vk.options)
        options.update({name: Secret(value) for name, value in credentials.secrets.items()})
        limits = vk.limits()
        return VirtualKeyAccess(
            id=vk.id,
            slug=vk.slug,
            provider=vk.provider,
            api_key=Secret(credentials.key) if credentials.key else None,
            options=options,
            custom_host=vk.custom_host,
            allowed_models=vk.allowed_models,
            limits=None if limits.empty else limits,
            expires_at=vk.expires_at,
        )

    async def config(self, ref: str) -> SavedConfigBody | None:
        async def load() -> SavedConfigBody | bool:
            data = await self._catalog.find(rec.CONFIG, ref) or await self._catalog.get(rec.CONFIG, ref)
            if data is None:
                return False
            saved = rec.decode(data, rec.SavedConfig)
            return (
                SavedConfigBody(saved.id, saved.version, saved.config) if saved.status == "active" else False
            )

        found = await self._cached("config", ref, load)
        return found or None

    # -- the cache --------------------------------------------------------------------------

    async def _cached(self, kind: str, name: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value, or one load shared by every request that wants it meanwhile: when an
        entry expires under load, one database read refreshes it, not one per request."""
        found = self._get(kind, name)
        if found is not None:
            return found
        key = (kind, name)
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(kind, name, load))
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(pending)  # a caller that goes away does not cancel the others' load

    async def _load(self, kind: str, name: str, load: Callable[[], Awaitable[Any]]) -> Any:
        generation = self._generation
        value = await load()
        if generation == self._generation:  # not invalidated meanwhile (else the value may be stale)
            self._put(kind, name, value)
        return value

    def _get(self, kind: str, name: str) -> Any:
        entry = self._cache.get((kind, name))
        if entry is None:
            return None
        value, expires = entry
        if self._clock() >= expires:
            del self._cache[(kind, name)]
            return None
        return value

    def _put(self, kind: str, name: str, value: Any) -> None:
        if len(self._cache) >= _MAX_ENTRIES:
            now = self._clock()
            for stale in [k for k, (_, e) in self._cache.items() if e <= now]:
                del self._cache[stale]
            if len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()  # a flood of unknown keys: start again rather than grow
        self._cache[(kind, name)] = (value, self._clock() + self._ttl)
