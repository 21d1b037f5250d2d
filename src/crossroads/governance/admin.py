"""The admin operations behind Portkey's control-plane API and the CLI: API keys, virtual keys
and saved configs, created, read, listed, updated, rotated and deleted.

Inputs are Portkey's bodies (snake_case, with the camelCase spellings the SDK and Terraform
send), validated field by field (inputs.py): an unknown field is a 400 naming it and the valid
ones. Outputs are Portkey's shapes: top-level objects with string ids and ISO timestamps,
`{object: "list", total, data}` lists, `{}` for deletes. Secrets go in once and never come
back out: API keys are shown once at creation, provider credentials only masked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from crossroads.errors import BadRequest, Conflict, GatewayError, NotFound
from crossroads.governance import inputs as inp
from crossroads.governance import keys as keyfmt
from crossroads.governance import records as rec
from crossroads.governance import slugs
from crossroads.governance.limits import Limits, UsageLimit, slots
from crossroads.governance.vault import MasterKeyMissing, Vault, VaultError
from crossroads.secret import SECRET_OPTIONS
from crossroads.storage import catalog as cat
from crossroads.storage.counters import Counter

JSON = dict[str, Any]
_DERIVED_TRIES = 3  # a derived slug that is taken (6 random hex digits) is drawn again


class Admin:
    def __init__(
        self,
        *,
        catalog: cat.Catalog,
        vault: Vault | None,
        counters: Counter,
        providers: frozenset[str],
        check_host: Callable[[str], str],
        check_config: Callable[[JSON], None],
        on_change: Callable[[], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._catalog = catalog
        self._vault = vault
        self._counters = counters
        self._providers = providers
        self._check_host = check_host
        self._check_config = check_config
        self._on_change = on_change
        self._clock = clock

    # -- API keys ---------------------------------------------------------------------------

    async def create_api_key(self, key_type: str, sub_type: str, body: JSON) -> JSON:
        if key_type not in keyfmt.KEY_TYPES or sub_type not in keyfmt.KEY_SUB_TYPES:
            raise NotFound(
                f"API keys are created at /v1/api-keys/{{type}}/{{sub_type}} with type one of "
                f"{', '.join(sorted(keyfmt.KEY_TYPES))} and sub_type one of "
                f"{', '.join(sorted(keyfmt.KEY_SUB_TYPES))}; got {key_type}/{sub_type}",
                code="invalid_key_type",
            )
        inp.known(body, inp.API_KEY_CREATE, "API key")
        _same_type(body, key_type, sub_type)
        name = inp.required(body, "name")
        secret = keyfmt.new_key()
        now = self._clock()
        key = rec.ApiKey(
            id=str(uuid.uuid4()),
            name=name,
            key_hash=keyfmt.key_hash(secret),
            masked=keyfmt.mask(secret),
            type=f"{key_type}-{sub_type}",
            scopes=inp.scopes(body.get("scopes", list(keyfmt.DEFAULT_SCOPES))),
            defaults=await self._defaults(body.get("defaults")),
            description=inp.text(body, "description"),
            rate_limits=inp.rate_limits(body.get("rate_limits")),
            usage_limits=inp.usage_limits(body.get("usage_limits")),
            allowed_models=inp.models(body.get("allowed_models")),
            expires_at=inp.timestamp(body.get("expires_at"), "expires_at"),
            workspace_id=inp.text(body, "workspace_id"),
            user_id=inp.text(body, "user_id"),
            created_at=now,
            updated_at=now,
        )
        await self._catalog.insert(rec.API_KEY, key.id, key.key_hash, rec.encode(key))
        await self._lock()
        await self._on_change()
        return {"id": key.id, "key": secret, "object": "api-key"}

    async def _lock(self) -> None:
        """Open mode ends with the first key, for good: deleting every key does not reopen it."""
        if await self._catalog.get(rec.STATE, rec.LOCKED) is None:
            since = msgspec.json.encode({"since": self._clock()}).decode()
            with contextlib.suppress(cat.Conflict):  # another replica locked it first
                await self._catalog.insert(rec.STATE, rec.LOCKED, None, since)

    async def _drop_aliases(self, key_id: str) -> None:
        """Forget the rotated-out secrets of a key (their transitions end now)."""
        for alias_id, data in await self._catalog.entries(rec.KEY_ALIAS):
            if rec.decode(data, rec.KeyAlias).key_id == key_id:
                await self._catalog.delete(rec.KEY_ALIAS, alias_id)

    async def list_api_keys(self) -> JSON:
        keys = [rec.decode(d, rec.ApiKey) for d in await self._catalog.all(rec.API_KEY)]
        return _list([await self._key_view(k) for k in keys])

    async def get_api_key(self, key_id: str) -> JSON:
        return await self._key_view(await self._api_key(key_id))

    async def update_api_key(self, key_id: str, body: JSON) -> JSON:
        inp.known(body, inp.API_KEY_UPDATE, "API key")
        reset = inp.flag(body, "reset_usage")
        key = await self._api_key(key_id)
        if "id" in body and body["id"] != key.id:  # the SDK sends the path's id in the body too
            raise BadRequest(
                f"id {body['id']!r} in the body is not the key being updated ({key.id!r})",
                param="id",
            )
        _same_type(body, *key.type.split("-", 1))
        changes: JSON = {}
        if "name" in body:
            changes["name"] = inp.required(body, "name")
        for field in ("description", "workspace_id", "user_id"):
            if field in body:
                changes[field] = inp.text(body, field)
        if "scopes" in body:
            changes["scopes"] = inp.scopes(body["scopes"])
        if "defaults" in body:
            changes["defaults"] = await self._defaults(body["defaults"])
        if "rate_limits" in body:
            changes["rate_limits"] = inp.rate_limits(body["rate_limits"])
        if "usage_limits" in body:
            changes["usage_limits"] = inp.usage_limits(body["usage_limits"])
        if "allowed_models" in body:
            changes["allowed_models"] = inp.models(body["allowed_models"])
        if "expires_at" in body:
            changes["expires_at"] = inp.timestamp(body["expires_at"], "expires_at")
        key = msgspec.structs.replace(key, **changes, updated_at=self._clock())
        await self._catalog.update(rec.API_KEY, key.id, key.key_hash, rec.encode(key))
        if reset:
            await self.reset_usage(key.limits())
        await self._on_change()
        return {}

    async def delete_api_key(self, key_id: str) -> JSON:
        key = await self._api_key(key_id)
        await self._catalog.delete(rec.API_KEY, key.id)
        await self._drop_aliases(key.id)
        await self._on_change()
        return {}

    async def rotate_api_key(self, key_id: str, body: JSON) -> JSON:
        """A new secret for the key; the old one keeps working for `key_transition_period_ms`."""
        inp.known(body, inp.ROTATION, "rotation")
        period = body.get("key_transition_period_ms", 0)
        if not isinstance(period, int) or isinstance(period, bool) or not 0 <= period <= 30 * 86_400_000:
            raise BadRequest(
                "key_transition_period_ms must be a whole number of milliseconds from 0 to 30 days",
                param="key_transition_period_ms",
            )
        key = await self._api_key(key_id)
        secret = keyfmt.new_key()
        now = self._clock()
        until = now + period / 1000
        await self._drop_aliases(key.id)  # a rotation ends every earlier transition
        if period:
            alias = rec.KeyAlias(key_id=key.id, until=until)
            await self._catalog.insert(rec.KEY_ALIAS, str(uuid.uuid4()), key.key_hash, rec.encode(alias))
        key = msgspec.structs.replace(
            key, key_hash=keyfmt.key_hash(secret), masked=keyfmt.mask(secret), updated_at=now
        )
        await self._catalog.update(rec.API_KEY, key.id, key.key_hash, rec.encode(key))
        await self._on_change()
        return {"id": key.id, "key": secret, "key_transition_expires_at": _iso(until), "object": "api-key"}

    async def _api_key(self, key_id: str) -> rec.ApiKey:
        data = await self._catalog.get(rec.API_KEY, key_id)
        if data is None:
            raise NotFound(f"No API key has the id {key_id!r}", code="api_key_not_found")
        return rec.decode(data, rec.ApiKey)

    async def _key_view(self, key: rec.ApiKey) -> JSON:
        status, usage = await self._usage(key.limits(), key.expires_at)
        return _clean(
            {
                "id": key.id,
                "key": key.masked,
                "name": key.name,
                "description": key.description,
                "type": key.type,
                "organisation_id": None,
                "workspace_id": key.workspace_id,
                "user_id": key.user_id,
                "status": status,
                "created_at": _iso(key.created_at),
                "last_updated_at": _iso(key.updated_at),
                "creation_mode": "api",
                "rate_limits": msgspec.to_builtins(key.rate_limits),
                "usage_limits": _usage_view(key.usage_limits),
                "reset_usage": 0,
                "scopes": list(key.scopes),
                "defaults": msgspec.to_builtins(key.defaults),
                "allowed_models": list(key.allowed_models) if key.allowed_models is not None else None,
                "expires_at": _iso(key.expires_at) if key.expires_at is not None else None,
                "usage": usage,
                "object": "api-key",
            }
        )

    async def _defaults(self, data: Any) -> rec.KeyDefaults:
        defaults = inp.defaults(data)
        if defaults.config_id is not None and await self._find_config(defaults.config_id) is None:
            raise BadRequest(
                f"defaults.config_id: no saved config has the slug or id {defaults.config_id!r}",
                param="defaults.config_id",
            )
        return defaults

    # -- virtual keys -----------------------------------------------------------------------

    async def create_virtual_key(self, body: JSON) -> JSON:
        inp.known(body, inp.VIRTUAL_KEY_CREATE, "virtual key", options=True)
        extras = _provider_fields(body)
        vault = self._need_vault("created")
        name = inp.required(body, "name")
        provider = inp.required(body, "provider").lower()
        if provider not in self._providers:
            raise BadRequest(
                f"provider: {provider!r} is not a provider of this gateway; valid providers: "
                + ", ".join(sorted(self._providers)),
                param="provider",
            )
        wanted = slugs.chosen(body["slug"]) if body.get("slug") is not None else None
        for _ in range(_DERIVED_TRIES):
            record_id = str(uuid.uuid4())
            now = self._clock()
            vk = rec.VirtualKey(
                id=record_id,
                slug=wanted or slugs.derived(name),
                name=name,
                provider=provider,
                sealed="",
                masked_api_key="",
                created_at=now,
                updated_at=now,
            )
            vk = self._apply_vk(vk, body, extras, vault, creating=True)
            try:
                await self._catalog.insert(rec.VIRTUAL_KEY, vk.id, vk.slug, rec.encode(vk))
                break
            except cat.Conflict:
                if wanted is not None:
                    raise _taken("virtual key", wanted) from None
        else:  # pragma: no cover - three random suffixes taken in a row
            raise _taken("virtual key", vk.slug)
        await self._on_change()
        return {"id": vk.id, "slug": vk.slug, "object": "virtual-key"}

    async def list_virtual_keys(self) -> JSON:
        vks = [rec.decode(d, rec.VirtualKey) for d in await self._catalog.all(rec.VIRTUAL_KEY)]
        return _list([await self._vk_view(v) for v in vks])

    async def get_virtual_key(self, slug: str) -> JSON:
        return await self._vk_view(await self._virtual_key(slug))

    async def update_virtual_key(self, slug: str, body: JSON) -> JSON:
        inp.known(body, inp.VIRTUAL_KEY_UPDATE, "virtual key", options=True)
        extras = _provider_fields(body)
        reset = inp.flag(body, "reset_usage")
        vault = self._need_vault("changed")
        vk = await self._virtual_key(slug)
        if "provider" in body and str(body["provider"]).lower() != vk.provider:
            raise BadRequest(
                "provider: a virtual key's provider cannot change; create a new virtual key", param="provider"
            )
        _same_slug(body, vk.slug, vk.id, "virtual key")
        if "name" in body:
            vk = msgspec.structs.replace(vk, name=inp.required(body, "name"))
        vk = self._apply_vk(vk, body, extras, vault, creating=False)
        vk = msgspec.structs.replace(vk, updated_at=self._clock())
        await self._catalog.update(rec.VIRTUAL_KEY, vk.id, vk.slug, rec.encode(vk))
        if reset:
            await self.reset_usage(vk.limits())
        await self._on_change()
        return {"id": vk.id, "slug": vk.slug, "object": "virtual-key"}

    async def delete_virtual_key(self, slug: str) -> JSON:
        vk = await self._virtual_key(slug)
        await self._catalog.delete(rec.VIRTUAL_KEY, vk.id)
        await self._on_change()
        return {}

    async def _virtual_key(self, slug: str) -> rec.VirtualKey:
        data = await self._catalog.find(rec.VIRTUAL_KEY, slug) or await self._catalog.get(
            rec.VIRTUAL_KEY, slug
        )
        if data is None:
            named = [rec.decode(d, rec.VirtualKey) for d in await self._catalog.all(rec.VIRTUAL_KEY)]
            hint = slugs.suggestion(slug, [(v.slug, v.name) for v in named], "a virtual key")
            raise NotFound(f"No virtual key has the slug {slug!r}{hint}", code="virtual_key_not_found")
        return rec.decode(data, rec.VirtualKey)

    def _apply_vk(
        self, vk: rec.VirtualKey, body: JSON, extras: JSON, vault: Vault, *, creating: bool
    ) -> rec.VirtualKey:
        """The record with the body's fields applied; credentials sealed to this record."""
        credentials = rec.Credentials()
        if not creating:
            try:
                credentials = msgspec.json.decode(vault.open(vk.sealed, vk.id), type=rec.Credentials)
            except VaultError:
                if "key" not in body:
                    raise BadRequest(
                        f"the stored credentials of {vk.slug!r} cannot be decrypted with this master key: "
                        "send them again (`key` and any secret extras) to re-seal them",
                        param="key",
                        code="virtual_key_unreadable",
                    ) from None
        changes: JSON = {}
        if "key" in body:
            key = body["key"]
            if key is not None and not isinstance(key, str):
                raise BadRequest("key must be a string (the provider's API key)", param="key")
            credentials = msgspec.structs.replace(credentials, key=key or None)
            changes["masked_api_key"] = keyfmt.mask(key) if key else ""
        if extras or creating:
            options = dict(vk.options) if not creating else {}
            secrets = dict(credentials.secrets)
            shown = dict(vk.model_config) if not creating else {}
            for field, value in extras.items():
                option = inp.option(field)
                assert option is not None  # checked by inp.known / _provider_fields
                for spelling in [f for f in shown if inp.option(f) == option]:  # another spelling of it
                    shown.pop(spelling)
                if value is None or value == "":
                    options.pop(option, None)
                    secrets.pop(option, None)
                    continue
                if option in SECRET_OPTIONS:
                    text = msgspec.json.encode(value).decode() if isinstance(value, dict) else value
                    if not isinstance(text, str):  # (an object: a service account key, as Portkey takes it)
                        raise BadRequest(f"{field} must be a string", param=field)
                    secrets[option] = text
                    shown[field] = keyfmt.mask(text)
                elif option == inp.DEPLOYMENTS:
                    options[option] = inp.deployments(value, field)
                    shown[field] = value
                elif isinstance(value, str | int | float | bool):
                    options[option] = str(value).lower() if isinstance(value, bool) else str(value)
                    shown[field] = value
                else:
                    raise BadRequest(f"{field} must be a string, a number or a boolean", param=field)
            credentials = msgspec.structs.replace(credentials, secrets=secrets)
            changes["options"] = options
            changes["model_config"] = shown
        for spelling in ("custom_host", "customHost"):
            if spelling in body:
                host = body[spelling]
                if host is not None and not isinstance(host, str):
                    raise BadRequest(f"{spelling} must be a URL", param=spelling)
                changes["custom_host"] = self._host(host, spelling) if host else None
        for spelling in ("allowed_models", "allowedModels"):
            if spelling in body:
                changes["allowed_models"] = inp.models(body[spelling], spelling)
        if "note" in body:
            changes["note"] = inp.text(body, "note")
        if "rate_limits" in body:
            changes["rate_limits"] = inp.rate_limits(body["rate_limits"])
        if "usage_limits" in body:
            changes["usage_limits"] = inp.usage_limits(body["usage_limits"])
        if "expires_at" in body:
            changes["expires_at"] = inp.timestamp(body["expires_at"], "expires_at")
        if "workspace_id" in body:
            changes["workspace_id"] = inp.text(body, "workspace_id")
        changes["sealed"] = vault.seal(msgspec.json.encode(credentials), vk.id)
        return msgspec.structs.replace(vk, **changes)

    async def reencrypt_virtual_keys(self) -> JSON:
        """Re-seal every virtual key with the current master key (after a master-key rotation)."""
        vault = self._need_vault("re-encrypted")
        results = []
        for data in await self._catalog.all(rec.VIRTUAL_KEY):
            vk = rec.decode(data, rec.VirtualKey)
            if vault.is_current(vk.sealed, vk.id):
                results.append({"slug": vk.slug, "status": "current"})
                continue
            try:
                plaintext = vault.open(vk.sealed, vk.id)
            except VaultError:
                results.append({"slug": vk.slug, "status": "unreadable"})
                continue
            vk = msgspec.structs.replace(vk, sealed=vault.seal(plaintext, vk.id), updated_at=self._clock())
            await self._catalog.update(rec.VIRTUAL_KEY, vk.id, vk.slug, rec.encode(vk))
            results.append({"slug": vk.slug, "status": "reencrypted"})
        await self._on_change()
        return _list(results)

    def _host(self, url: str, field: str) -> str:
        try:
            return self._check_host(url)
        except GatewayError as exc:
            raise BadRequest(f"{field}: {exc.message}", param=field) from None

    async def _vk_view(self, vk: rec.VirtualKey) -> JSON:
        status, usage = await self._usage(vk.limits(), vk.expires_at)
        return _clean(
            {
                "id": vk.id,
                "slug": vk.slug,
                "name": vk.name,
                "note": vk.note,
                "status": status,
                "ai_provider_name": vk.provider,
                "provider": vk.provider,
                "model_config": vk.model_config,
                "masked_api_key": vk.masked_api_key,
                "custom_host": vk.custom_host,
                "allowed_models": list(vk.allowed_models) if vk.allowed_models is not None else None,
                "usage_limits": _usage_view(vk.usage_limits),
                "rate_limits": msgspec.to_builtins(vk.rate_limits),
                "reset_usage": 0,
                "created_at": _iso(vk.created_at),
                "last_updated_at": _iso(vk.updated_at),
                "expires_at": _iso(vk.expires_at) if vk.expires_at is not None else None,
                "workspace_id": vk.workspace_id,
                "usage": usage,
                "object": "virtual-key",
            }
        )

    def _need_vault(self, doing: str) -> Vault:
        if self._vault is None:
            raise MasterKeyMissing(doing)
        return self._vault

    # -- configs ----------------------------------------------------------------------------

    async def create_config(self, body: JSON) -> JSON:
        inp.known(body, inp.CONFIG_FIELDS, "config")
        name = inp.required(body, "name")
        config = self._config_body(body.get("config"))
        wanted = slugs.chosen(body["slug"]) if body.get("slug") is not None else None
        status = _status(body)
        for _ in range(_DERIVED_TRIES):
            now = self._clock()
            saved = rec.SavedConfig(
                id=str(uuid.uuid4()),
                slug=wanted or slugs.derived(name, "pc-"),
                name=name,
                config=config,
                version=1,
                version_id=str(uuid.uuid4()),
                is_default=inp.is_default(body),
                status=status,
                workspace_id=inp.text(body, "workspace_id"),
                created_at=now,
                updated_at=now,
            )
            try:
                await self._catalog.insert(rec.CONFIG, saved.id, saved.slug, rec.encode(saved))
                break
            except cat.Conflict:
                if wanted is not None:
                    raise _taken("saved config", wanted) from None
        else:  # pragma: no cover - three random suffixes taken in a row
            raise _taken("saved config", saved.slug)
        await self._add_version(saved)
        await self._on_change()
        return {"id": saved.id, "version_id": saved.version_id, "slug": saved.slug, "object": "config"}

    async def list_configs(self) -> JSON:
        configs = [rec.decode(d, rec.SavedConfig) for d in await self._catalog.all(rec.CONFIG)]
        return _list([_config_view(c, with_config=False) for c in configs])

    async def get_config(self, slug: str) -> JSON:
        return _config_view(await self._config(slug), with_config=True)

    async def update_config(self, slug: str, body: JSON) -> JSON:
        inp.known(body, inp.CONFIG_FIELDS, "config")
        saved = await self._config(slug)
        _same_slug(body, saved.slug, saved.id, "saved config")
        changes: JSON = {"updated_at": self._clock()}
        if "name" in body:
            changes["name"] = inp.required(body, "name")
        if "config" in body:
            changes["config"] = self._config_body(body["config"])
            changes["version"] = saved.version + 1
            changes["version_id"] = str(uuid.uuid4())
        if "status" in body:
            changes["status"] = _status(body)
        if "is_default" in body or "isDefault" in body:
            changes["is_default"] = inp.is_default(body)
        if "workspace_id" in body:
            changes["workspace_id"] = inp.text(body, "workspace_id")
        saved = msgspec.structs.replace(saved, **changes)
        await self._catalog.update(rec.CONFIG, saved.id, saved.slug, rec.encode(saved))
        if "config" in changes:
            await self._add_version(saved)
        await self._on_change()
        return {"id": saved.id, "version_id": saved.version_id, "slug": saved.slug, "object": "config"}

    async def delete_config(self, slug: str) -> JSON:
        saved = await self._config(slug)
        await self._catalog.delete(rec.CONFIG, saved.id)
        await self._on_change()
        return {}

    async def config_versions(self, slug: str) -> JSON:
        saved = await self._config(slug)
        out = []
        for number, data in await self._catalog.versions(saved.id):
            version = rec.decode(data, rec.ConfigVersion)
            out.append(
                {
                    "id": version.version_id,
                    "version_id": version.version_id,
                    "version": number,
                    "name": version.name,
                    "config": version.config,
                    "object": "config-version",
                }
            )
        return _list(out)

    async def _config(self, slug: str) -> rec.SavedConfig:
        found = await self._find_config(slug)
        if found is None:
            named = [rec.decode(d, rec.SavedConfig) for d in await self._catalog.all(rec.CONFIG)]
            hint = slugs.suggestion(slug, [(c.slug, c.name) for c in named], "a saved config")
            raise NotFound(f"No saved config has the slug or id {slug!r}{hint}", code="config_not_found")
        return found

    async def _find_config(self, slug: str) -> rec.SavedConfig | None:
        data = await self._catalog.find(rec.CONFIG, slug) or await self._catalog.get(rec.CONFIG, slug)
        return rec.decode(data, rec.SavedConfig) if data is not None else None

    async def _add_version(self, saved: rec.SavedConfig) -> None:
        version = rec.ConfigVersion(version_id=saved.version_id, config=saved.config, name=saved.name)
        await self._catalog.add_version(saved.id, saved.version, rec.encode(version))

    def _config_body(self, data: Any) -> JSON:
        if isinstance(data, str):  # the live API and Terraform send it as a JSON string
            try:
                data = msgspec.json.decode(data)
            except msgspec.DecodeError as exc:
                raise BadRequest(f"config is not valid JSON: {exc}", param="config") from None
        if not isinstance(data, dict):
            raise BadRequest("config must be a JSON object (a gateway config)", param="config")
        self._check_config(data)  # raises ConfigError, naming the path, like x-portkey-config
        return data

    # -- usage ------------------------------------------------------------------------------

    async def _usage(self, limits: Limits, expires_at: float | None) -> tuple[str, JSON | None]:
        """The owner's status (active / exhausted / expired) and its budget use this period."""
        expired = expires_at is not None and expires_at <= self._clock()
        if limits.usage is None:
            return ("expired" if expired else "active"), None
        (slot,) = slots(
            Limits(owner=limits.owner, usage=limits.usage, created_at=limits.created_at),
            self._clock(),
            prompt=0,
            completion=0,
            cost_micros=0,
        )
        (used,) = await self._counters.values([slot.key])
        usage: UsageLimit = limits.usage
        spent: float = used / 1_000_000 if usage.type == "cost" else used
        view: JSON = {"current": spent, "limit": usage.credit_limit, "type": usage.type}
        if slot.resets_at is not None:
            view["next_usage_reset_at"] = _iso(slot.resets_at)
        status = "expired" if expired else ("exhausted" if used >= slot.limit else "active")
        return status, view

    async def reset_usage(self, limits: Limits) -> None:
        if limits.usage is None:
            return
        (slot,) = slots(
            Limits(owner=limits.owner, usage=limits.usage, created_at=limits.created_at),
            self._clock(),
            prompt=0,
            completion=0,
            cost_micros=0,
        )
        (used,) = await self._counters.values([slot.key])
        await self._counters.adjust([(slot, -used)])


# -- input helpers -------------------------------------------------------------------------


def _provider_fields(body: JSON) -> JSON:
    """A virtual key's provider fields (awsRegion, resourceName, ...), from the body and from its
    `model_config` object (the body's win); each one given once, in one spelling."""
    nested = body.get("model_config")
    if nested is None:
        nested = {}
    if not isinstance(nested, dict):
        raise BadRequest("model_config must be an object of provider fields", param="model_config")
    for field in nested:
        if inp.option(field) is None:
            raise inp.unknown_field(field, (), "virtual key's model_config", options=True, at="model_config")
    top = {k: v for k, v in body.items() if k not in inp.VIRTUAL_KEY_UPDATE}
    merged = {**{k: v for k, v in nested.items() if inp.option(k) not in {inp.option(t) for t in top}}, **top}
    inp.known(merged, frozenset(), "virtual key", options=True)  # one spelling of each
    return merged


def _same_type(body: JSON, key_type: str, sub_type: str) -> None:
    """`type` and `sub-type` in an API key's body (the SDK echoes them) match the key's."""
    if "type" in body and body["type"] != key_type:
        raise BadRequest(f"type {body['type']!r} in the body does not match {key_type!r}", param="type")
    for spelling in ("sub-type", "sub_type"):
        if spelling in body and body[spelling] != sub_type:
            raise BadRequest(
                f"{spelling} {body[spelling]!r} in the body does not match {sub_type!r}", param=spelling
            )


def _same_slug(body: JSON, slug: str, record_id: str, what: str) -> None:
    """A `slug` in an update body (the SDK's configs.update sends it) names this record."""
    if "slug" in body and body["slug"] not in (slug, record_id):
        raise BadRequest(
            f"slug {body['slug']!r} in the body is not this {what}'s ({slug!r}): a slug cannot change; "
            "create a new one with the slug you want",
            param="slug",
        )


def _status(body: JSON) -> Any:
    status = body.get("status", "active")
    if status not in ("active", "archived"):
        raise BadRequest("status must be active or archived", param="status")
    return status


def _taken(what: str, slug: str) -> Conflict:
    return Conflict(
        f"A {what} with the slug {slug!r} already exists: choose another slug",
        param="slug",
        code="slug_taken",
    )


# -- output helpers ------------------------------------------------------------------------


def _iso(moment: float) -> str:
    return (
        dt.datetime.fromtimestamp(moment, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _list(items: Sequence[JSON]) -> JSON:
    return {"object": "list", "total": len(items), "data": list(items)}


def _clean(view: JSON) -> JSON:
    return {k: v for k, v in view.items() if v is not None}


def _usage_view(usage: UsageLimit | None) -> JSON | None:
    if usage is None:
        return None
    return {k: v for k, v in msgspec.to_builtins(usage).items() if v is not None}


def _config_view(saved: rec.SavedConfig, *, with_config: bool) -> JSON:
    view: JSON = {
        "id": saved.id,
        "name": saved.name,
        "slug": saved.slug,
        "organisation_id": None,
        "workspace_id": saved.workspace_id,
        "is_default": saved.is_default,
        "status": saved.status,
        "owner_id": None,
        "updated_by": None,
        "created_at": _iso(saved.created_at),
        "last_updated_at": _iso(saved.updated_at),
        "format": "json",
        "type": "ORG_CONFIG",
        "version_id": saved.version_id,
        "version": saved.version,
        "object": "config",
    }
    if with_config:
        view["config"] = saved.config
    return _clean(view)
