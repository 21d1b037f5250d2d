"""The admin operations behind Portkey's control-plane API and the CLI: API keys, virtual keys
and saved configs, created, read, listed, updated, rotated and deleted.

Inputs are Portkey's bodies (snake_case, with the camelCase spellings the SDK and Terraform
send), validated field by field: an unknown field is a 400 naming it and the valid ones.
Outputs are Portkey's shapes: top-level objects with string ids and ISO timestamps,
`{object: "list", total, data}` lists, `{}` for deletes. Secrets go in once and never come
back out: API keys are shown once at creation, provider credentials only masked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import msgspec

from crossroads.errors import BadRequest, GatewayError, NotFound
from crossroads.governance import keys as keyfmt
from crossroads.governance import records as rec
from crossroads.governance.limits import Limits, UsageLimit, parse_rate_limits, parse_usage_limit, slots
from crossroads.governance.vault import Vault, VaultError
from crossroads.secret import SECRET_OPTIONS
from crossroads.storage import catalog as cat
from crossroads.storage.counters import Counter

JSON = dict[str, Any]

# Virtual-key fields that are not provider extras (both spellings).
_VK_FIELDS: Final = frozenset(
    {
        "name",
        "provider",
        "key",
        "note",
        "custom_host",
        "customHost",
        "allowed_models",
        "allowedModels",
        "usage_limits",
        "rate_limits",
        "expires_at",
        "workspace_id",
        "model_config",
        "reset_usage",
        "slug",
    }
)
# Portkey's virtual-key extras -> the target option (x-portkey-* header name) they set.
_EXTRA_OPTIONS: Final = {
    "resourceName": "azure_resource_name",
    "deploymentName": "azure_deployment_id",
    "apiVersion": "azure_api_version",
    "deploymentConfig": "azure_deployment_config",
    "deployment_config": "azure_deployment_config",
    "vertexProjectId": "vertex_project_id",
    "vertexRegion": "vertex_region",
    "workersAiAccountId": "workers_ai_account_id",
}
_KEY_FIELDS: Final = frozenset(
    {
        "name",
        "description",
        "scopes",
        "defaults",
        "rate_limits",
        "usage_limits",
        "allowed_models",
        "expires_at",
        "workspace_id",
        "user_id",
        "type",
        "sub-type",
        "sub_type",
        "alert_emails",
        "rotation_policy",
        "reset_usage",
        "id",
    }
)
_CONFIG_FIELDS: Final = frozenset(
    {"name", "config", "is_default", "isDefault", "workspace_id", "slug", "status"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


class VaultMissing(GatewayError):
    status = 503
    default_code = "vault_not_configured"


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
        _known(body, _KEY_FIELDS, "API key")
        name = _required(body, "name")
        secret = keyfmt.new_key()
        now = self._clock()
        key = rec.ApiKey(
            id=str(uuid.uuid4()),
            name=name,
            key_hash=keyfmt.key_hash(secret),
            masked=keyfmt.mask(secret),
            type=f"{key_type}-{sub_type}",
            scopes=_scopes(body.get("scopes", list(keyfmt.DEFAULT_SCOPES))),
            defaults=await self._defaults(body.get("defaults")),
            description=_text(body, "description"),
            rate_limits=_rate_limits(body.get("rate_limits")),
            usage_limits=_usage_limits(body.get("usage_limits")),
            allowed_models=_models(body.get("allowed_models")),
            expires_at=_timestamp(body.get("expires_at"), "expires_at"),
            workspace_id=_text(body, "workspace_id"),
            user_id=_text(body, "user_id"),
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
        _known(body, _KEY_FIELDS, "API key")
        key = await self._api_key(key_id)
        changes: JSON = {}
        if "name" in body:
            changes["name"] = _required(body, "name")
        if "description" in body:
            changes["description"] = _text(body, "description")
        if "scopes" in body:
            changes["scopes"] = _scopes(body["scopes"])
        if "defaults" in body:
            changes["defaults"] = await self._defaults(body["defaults"])
        if "rate_limits" in body:
            changes["rate_limits"] = _rate_limits(body["rate_limits"])
        if "usage_limits" in body:
            changes["usage_limits"] = _usage_limits(body["usage_limits"])
        if "allowed_models" in body:
            changes["allowed_models"] = _models(body["allowed_models"])
        if "expires_at" in body:
            changes["expires_at"] = _timestamp(body["expires_at"], "expires_at")
        key = msgspec.structs.replace(key, **changes, updated_at=self._clock())
        await self._catalog.update(rec.API_KEY, key.id, key.key_hash, rec.encode(key))
        if body.get("reset_usage"):
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
        _known(body, frozenset({"key_transition_period_ms"}), "rotation")
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
        if data is None:
            return rec.KeyDefaults()
        try:
            defaults = msgspec.convert(data, rec.KeyDefaults)
        except msgspec.ValidationError as exc:
            raise BadRequest(f"defaults: {_explain(exc)}", param="defaults") from None
        if defaults.config_id is not None and await self._find_config(defaults.config_id) is None:
            raise BadRequest(
                f"defaults.config_id: no saved config has the slug or id {defaults.config_id!r}",
                param="defaults.config_id",
            )
        return defaults

    # -- virtual keys -----------------------------------------------------------------------

    async def create_virtual_key(self, body: JSON) -> JSON:
        vault = self._need_vault()
        name = _required(body, "name")
        provider = _required(body, "provider").lower()
        if provider not in self._providers:
            raise BadRequest(
                f"provider: {provider!r} is not a provider of this gateway; valid providers: "
                + ", ".join(sorted(self._providers)),
                param="provider",
            )
        record_id = str(uuid.uuid4())
        slug = _slug(name)
        now = self._clock()
        vk = rec.VirtualKey(
            id=record_id,
            slug=slug,
            name=name,
            provider=provider,
            sealed="",
            masked_api_key="",
            created_at=now,
            updated_at=now,
        )
        vk = self._apply_vk(vk, body, vault, creating=True)
        await self._catalog.insert(rec.VIRTUAL_KEY, vk.id, vk.slug, rec.encode(vk))
        await self._on_change()
        return {"id": vk.id, "slug": vk.slug, "object": "virtual-key"}

    async def list_virtual_keys(self) -> JSON:
        vks = [rec.decode(d, rec.VirtualKey) for d in await self._catalog.all(rec.VIRTUAL_KEY)]
        return _list([await self._vk_view(v) for v in vks])

    async def get_virtual_key(self, slug: str) -> JSON:
        return await self._vk_view(await self._virtual_key(slug))

    async def update_virtual_key(self, slug: str, body: JSON) -> JSON:
        vault = self._need_vault()
        vk = await self._virtual_key(slug)
        if "provider" in body and str(body["provider"]).lower() != vk.provider:
            raise BadRequest(
                "provider: a virtual key's provider cannot change; create a new virtual key", param="provider"
            )
        if "name" in body:
            vk = msgspec.structs.replace(vk, name=_required(body, "name"))
        vk = self._apply_vk(vk, body, vault, creating=False)
        vk = msgspec.structs.replace(vk, updated_at=self._clock())
        await self._catalog.update(rec.VIRTUAL_KEY, vk.id, vk.slug, rec.encode(vk))
        if body.get("reset_usage"):
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
            raise NotFound(f"No virtual key has the slug {slug!r}", code="virtual_key_not_found")
        return rec.decode(data, rec.VirtualKey)

    def _apply_vk(self, vk: rec.VirtualKey, body: JSON, vault: Vault, *, creating: bool) -> rec.VirtualKey:
        """The record with the body's fields applied; credentials sealed to this record."""
        extras = {k: v for k, v in body.items() if k not in _VK_FIELDS}
        model_config = body.get("model_config")
        if model_config is not None:
            if not isinstance(model_config, dict):
                raise BadRequest("model_config must be an object", param="model_config")
            extras = {**model_config, **extras}
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
                option = _EXTRA_OPTIONS.get(field) or _CAMEL.sub(r"_\1", field).lower()
                if value is None or value == "":
                    options.pop(option, None)
                    secrets.pop(option, None)
                    shown.pop(field, None)
                    continue
                if option in SECRET_OPTIONS:
                    text = msgspec.json.encode(value).decode() if isinstance(value, dict) else value
                    if not isinstance(text, str):  # (an object: a service account key, as Portkey takes it)
                        raise BadRequest(f"{field} must be a string", param=field)
                    secrets[option] = text
                    shown[field] = keyfmt.mask(value)
                elif isinstance(value, str | int | float | bool):
                    options[option] = str(value).lower() if isinstance(value, bool) else str(value)
                    shown[field] = value
                elif option == "azure_deployment_config":
                    options[option] = _deployments(value, field)
                    shown[field] = value
                elif isinstance(value, list | dict):
                    shown[field] = value  # kept and shown, not sent
                else:
                    raise BadRequest(f"{field}: unsupported value", param=field)
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
                changes["allowed_models"] = _models(body[spelling], spelling)
        if "note" in body:
            changes["note"] = _text(body, "note")
        if "rate_limits" in body:
            changes["rate_limits"] = _rate_limits(body["rate_limits"])
        if "usage_limits" in body:
            changes["usage_limits"] = _usage_limits(body["usage_limits"])
        if "expires_at" in body:
            changes["expires_at"] = _timestamp(body["expires_at"], "expires_at")
        if "workspace_id" in body:
            changes["workspace_id"] = _text(body, "workspace_id")
        changes["sealed"] = vault.seal(msgspec.json.encode(credentials), vk.id)
        return msgspec.structs.replace(vk, **changes)

    async def reencrypt_virtual_keys(self) -> JSON:
        """Re-seal every virtual key with the current master key (after a master-key rotation)."""
        vault = self._need_vault()
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

    def _need_vault(self) -> Vault:
        if self._vault is None:
            raise VaultMissing(
                "Virtual keys need a master key to encrypt credentials: set CROSSROADS_MASTER_KEY "
                "(or master_key_file) to 32+ random bytes, e.g. `openssl rand -base64 32`, and restart"
            )
        return self._vault

    # -- configs ----------------------------------------------------------------------------

    async def create_config(self, body: JSON) -> JSON:
        _known(body, _CONFIG_FIELDS, "config")
        name = _required(body, "name")
        config = self._config_body(body.get("config"))
        now = self._clock()
        saved = rec.SavedConfig(
            id=str(uuid.uuid4()),
            slug="pc-" + _slug(name, 5),
            name=name,
            config=config,
            version=1,
            version_id=str(uuid.uuid4()),
            is_default=_is_default(body),
            workspace_id=_text(body, "workspace_id"),
            created_at=now,
            updated_at=now,
        )
        await self._catalog.insert(rec.CONFIG, saved.id, saved.slug, rec.encode(saved))
        await self._add_version(saved)
        await self._on_change()
        return {"id": saved.id, "version_id": saved.version_id, "slug": saved.slug, "object": "config"}

    async def list_configs(self) -> JSON:
        configs = [rec.decode(d, rec.SavedConfig) for d in await self._catalog.all(rec.CONFIG)]
        return _list([_config_view(c, with_config=False) for c in configs])

    async def get_config(self, slug: str) -> JSON:
        return _config_view(await self._config(slug), with_config=True)

    async def update_config(self, slug: str, body: JSON) -> JSON:
        _known(body, _CONFIG_FIELDS, "config")
        saved = await self._config(slug)
        changes: JSON = {"updated_at": self._clock()}
        if "name" in body:
            changes["name"] = _required(body, "name")
        if "config" in body:
            changes["config"] = self._config_body(body["config"])
            changes["version"] = saved.version + 1
            changes["version_id"] = str(uuid.uuid4())
        if "status" in body:
            status = body["status"]
            if status not in ("active", "archived"):
                raise BadRequest("status must be active or archived", param="status")
            changes["status"] = status
        if "is_default" in body or "isDefault" in body:
            changes["is_default"] = _is_default(body)
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
            raise NotFound(f"No saved config has the slug or id {slug!r}", code="config_not_found")
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


def _known(body: Mapping[str, Any], fields: frozenset[str], what: str) -> None:
    for field in body:
        if field not in fields:
            raise BadRequest(
                f"unknown field {field!r} in the {what}; valid fields: {', '.join(sorted(fields))}",
                param=field,
            )


def _text(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 1024:
        raise BadRequest(f"{field} must be a string of at most 1024 characters", param=field)
    return value


def _required(body: Mapping[str, Any], field: str) -> str:
    value = _text(body, field)
    if value is None:
        raise BadRequest(f"{field} is required", param=field)
    return value


def _scopes(data: Any) -> tuple[str, ...]:
    if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
        raise BadRequest("scopes must be a list of scope names", param="scopes")
    if data == ["all"]:  # every scope, as `crossroads keys create --scopes all`
        return tuple(sorted(keyfmt.SCOPES))
    unknown = sorted(set(data) - keyfmt.SCOPES)
    if unknown:
        raise BadRequest(
            f"scopes: unknown scope(s) {', '.join(unknown)}; "
            f'valid scopes: {", ".join(sorted(keyfmt.SCOPES))} (or ["all"] alone)',
            param="scopes",
        )
    return tuple(dict.fromkeys(data))


def _rate_limits(data: Any) -> tuple[Any, ...]:
    try:
        return parse_rate_limits(data)
    except msgspec.ValidationError as exc:
        raise BadRequest(
            f"rate_limits: {_explain(exc)} (each is {{type: requests|tokens, unit: rpm|rph|rpd, value: >0}})",
            param="rate_limits",
        ) from None


def _usage_limits(data: Any) -> UsageLimit | None:
    try:
        return parse_usage_limit(data)
    except msgspec.ValidationError as exc:
        raise BadRequest(
            f"usage_limits: {_explain(exc)} (credit_limit > 0, type cost|tokens, "
            "periodic_reset monthly|weekly or periodic_reset_days)",
            param="usage_limits",
        ) from None


def _models(data: Any, field: str = "allowed_models") -> tuple[str, ...] | None:
    if data is None:
        return None
    if not isinstance(data, list) or not all(isinstance(m, str) and m for m in data):
        raise BadRequest(f"{field} must be a list of model names", param=field)
    return tuple(dict.fromkeys(data))


_LATEST: Final = dt.datetime(9999, 12, 31, tzinfo=dt.UTC).timestamp()


def _timestamp(value: Any, field: str) -> float | None:
    """Seconds since the epoch from an ISO-8601 date-time, or a number of seconds or milliseconds."""
    if value is None or value == "":
        return None
    moment: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        moment = float(value / 1000 if value > 1e11 else value)  # milliseconds or seconds
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            try:
                moment = parsed.timestamp()
            except (OverflowError, ValueError):
                moment = None
    if moment is None or not 0 <= moment <= _LATEST:
        raise BadRequest(
            f"{field} must be an ISO-8601 date-time between 1970 and 9999 (e.g. 2027-01-31T00:00:00Z)",
            param=field,
        )
    return moment


def _is_default(body: Mapping[str, Any]) -> int:
    value = body.get("is_default", body.get("isDefault", 0))
    if isinstance(value, bool) or value in (0, 1):
        return int(value)
    raise BadRequest("is_default must be 0 or 1", param="is_default")


def _slug(name: str, length: int = 12) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:length].strip("-") or "key"
    return f"{base}-{uuid.uuid4().hex[:6]}"


def _explain(exc: msgspec.ValidationError) -> str:
    text, _, where = str(exc).partition(" - at `$")
    where = where.rstrip("`")
    return f"{text} at {where.lstrip('.')}" if where else text


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


_DEPLOYMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _deployments(value: Any, field: str) -> str:
    """Azure's `deploymentConfig` (Portkey's shape), checked, as the JSON the adapter reads:
    `[{deploymentName, apiVersion?, alias?, is_default?}]`, at most one default."""
    if not isinstance(value, list) or not value:
        raise BadRequest(f"{field} must be a non-empty array of deployments", param=field)
    out = []
    for i, entry in enumerate(value):
        name = entry.get("deploymentName") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _DEPLOYMENT_NAME.fullmatch(name):
            raise BadRequest(f"{field}[{i}].deploymentName must be an Azure deployment name", param=field)
        item: JSON = {"deployment": name, "default": entry.get("is_default") is True}
        for key, target in (("alias", "alias"), ("apiVersion", "api_version")):
            if entry.get(key) is not None:
                if not isinstance(entry[key], str) or not entry[key]:
                    raise BadRequest(f"{field}[{i}].{key} must be a string", param=field)
                item[target] = entry[key]
        out.append(item)
    if sum(item["default"] for item in out) > 1:
        raise BadRequest(f"{field}: at most one deployment can be the default (is_default)", param=field)
    return msgspec.json.encode(out).decode()
