"""What the admin API accepts: the fields of each body (snake_case, and the spellings the
portkey-ai SDK, Portkey's API and Terraform send), each one checked. Nothing is ignored: an
unknown field, at the top or inside `rate_limits`, `usage_limits`, `defaults`, `model_config`
or `deploymentConfig`, is a 400 that names it and lists the valid ones.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from crossroads.errors import BadRequest
from crossroads.governance import keys as keyfmt
from crossroads.governance.limits import RateLimit, UsageLimit, parse_rate_limits, parse_usage_limit
from crossroads.governance.records import KeyDefaults
from crossroads.secret import CREDENTIAL_FIELDS

JSON = dict[str, Any]

# -- the bodies ------------------------------------------------------------------------------
# The SDK's api_keys.create echoes `type` and `sub-type` (hyphen) in the body; its update sends `id`.
API_KEY_CREATE: Final = frozenset(
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
    }
)
API_KEY_UPDATE: Final = API_KEY_CREATE | {"id", "reset_usage"}
ROTATION: Final = frozenset({"key_transition_period_ms"})
# Provider fields (awsRegion, resourceName, ...) come on top of these: see `option`.
VIRTUAL_KEY_CREATE: Final = frozenset(
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
        "slug",
    }
)
VIRTUAL_KEY_UPDATE: Final = VIRTUAL_KEY_CREATE | {"reset_usage"}
# The SDK's configs.update sends the `slug` in the body too; Terraform spells `isDefault`.
CONFIG_FIELDS: Final = frozenset(
    {"name", "config", "is_default", "isDefault", "workspace_id", "slug", "status"}
)
# Portkey fields this gateway does not implement: refused with the reason, never dropped.
UNSUPPORTED: Final = {
    "alert_emails": "alert e-mails are not sent by this gateway (usage_limits.alert_threshold is "
    "stored and shown only)",
    "rotation_policy": "keys are not rotated on a schedule by this gateway: rotate one with "
    "POST /v1/api-keys/{id}/rotate (or `crossroads keys rotate ID`)",
    "secret_mappings": "references to an external secret manager are not supported: send the "
    "credentials themselves (`key` and the provider's fields), which are sealed with the master key",
}

# -- a virtual key's provider fields --------------------------------------------------------
# The target options a virtual key may hold: the provider fields of a config target (Portkey's
# names, crossroads.secret.CREDENTIAL_FIELDS, the list config targets take too), plus
# Azure's deployments. They are sent as Portkey documents them (camelCase: awsRegion,
# vertexProjectId), or in snake_case.
OPTIONS: Final = CREDENTIAL_FIELDS
DEPLOYMENTS: Final = "azure_deployment_config"
# Portkey's virtual-key names whose option is not simply their snake_case form.
_ALIASES: Final = {
    "resourceName": "azure_resource_name",
    "deploymentName": "azure_deployment_id",
    "deployment_name": "azure_deployment_id",
    "apiVersion": "azure_api_version",
    "deploymentConfig": DEPLOYMENTS,
    "deployment_config": DEPLOYMENTS,
}
_DEPLOYMENT_FIELDS: Final = frozenset(
    {"deploymentName", "deployment_name", "apiVersion", "api_version", "alias", "is_default", "isDefault"}
)
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])([A-Z])")


def option(field: str) -> str | None:
    """The target option a virtual-key field sets (`awsRegion` -> `aws_region`), or None."""
    found = _ALIASES.get(field)
    if found is not None:
        return found
    snake = _snake(field)
    return snake if snake in OPTIONS or snake == DEPLOYMENTS else None


def _snake(field: str) -> str:
    return _CAMEL.sub(r"_\1", field).lower().replace("-", "_")


def _camel(snake: str) -> str:
    first, *rest = snake.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


# How errors list them: Portkey's camelCase.
_OPTION_NAMES: Final = tuple(
    sorted(({*_ALIASES} - {"deployment_name", "deployment_config"}) | {_camel(o) for o in OPTIONS})
)


def known(body: Mapping[str, Any], fields: frozenset[str], what: str, *, options: bool = False) -> None:
    """Every field of the body is one of `fields` (or, with `options`, a provider field), and
    none is given in two spellings."""
    seen: dict[str, str] = {}
    for field in body:
        if field in fields:
            canonical = _snake(field)  # customHost and custom_host, sub-type and sub_type are one field
        elif field in UNSUPPORTED:
            raise BadRequest(f"{field}: {UNSUPPORTED[field]}", param=field, code="unsupported_field")
        elif options and (found := option(field)) is not None:
            canonical = found
        else:
            raise unknown_field(field, fields, what, options=options)
        if canonical in seen:
            raise BadRequest(
                f"{seen[canonical]!r} and {field!r} are the same field of the {what}: give it once",
                param=field,
                code="duplicate_field",
            )
        seen[canonical] = field


def unknown_field(
    field: str, fields: Iterable[str], what: str, *, options: bool = False, at: str = ""
) -> BadRequest:
    names = sorted(fields)
    candidates = [*names, *(_OPTION_NAMES if options else ())]
    hint = _closest(field, candidates)
    where = f"{at}.{field}" if at else field
    message = f"unknown field {where!r} in the {what}{hint}; valid fields: {', '.join(names)}"
    if options:
        message += f"; and the provider's fields: {', '.join(_OPTION_NAMES)} (or in snake_case)"
    return BadRequest(message, param=at or field, code="unknown_field")


def _closest(field: str, candidates: list[str]) -> str:
    def squash(name: str) -> str:
        return name.lower().replace("_", "").replace("-", "")

    same = [c for c in candidates if squash(c) == squash(field)]
    close = same or difflib.get_close_matches(field, candidates, n=1, cutoff=0.8)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- values ----------------------------------------------------------------------------------


def text(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 1024:
        raise BadRequest(f"{field} must be a string of at most 1024 characters", param=field)
    return value


def required(body: Mapping[str, Any], field: str) -> str:
    value = text(body, field)
    if value is None:
        raise BadRequest(f"{field} is required", param=field)
    return value


def flag(body: Mapping[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise BadRequest(f"{field} must be true or false", param=field)


def scopes(data: Any) -> tuple[str, ...]:
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


def defaults(data: Any) -> KeyDefaults:
    if data is None:
        return KeyDefaults()
    try:
        return msgspec.convert(data, KeyDefaults)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"defaults: {explain(exc, KeyDefaults)}", param="defaults") from None


def rate_limits(data: Any) -> tuple[RateLimit, ...]:
    try:
        return parse_rate_limits(data)
    except msgspec.ValidationError as exc:
        raise BadRequest(
            f"rate_limits: {explain(exc, RateLimit)} "
            "(each is {type: requests|tokens, unit: rpm|rph|rpd, value: >0})",
            param="rate_limits",
        ) from None


def usage_limits(data: Any) -> UsageLimit | None:
    try:
        return parse_usage_limit(data)
    except msgspec.ValidationError as exc:
        raise BadRequest(
            f"usage_limits: {explain(exc, UsageLimit)} (credit_limit > 0, type cost|tokens, "
            "periodic_reset monthly|weekly or periodic_reset_days)",
            param="usage_limits",
        ) from None


def models(data: Any, field: str = "allowed_models") -> tuple[str, ...] | None:
    if data is None:
        return None
    if not isinstance(data, list) or not all(isinstance(m, str) and m for m in data):
        raise BadRequest(f"{field} must be a list of model names", param=field)
    return tuple(dict.fromkeys(data))


_LATEST: Final = dt.datetime(9999, 12, 31, tzinfo=dt.UTC).timestamp()


def timestamp(value: Any, field: str) -> float | None:
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


def is_default(body: Mapping[str, Any]) -> int:
    value = body.get("is_default", body.get("isDefault", 0))
    if isinstance(value, bool) or value in (0, 1):
        return int(value)
    raise BadRequest("is_default must be 0 or 1", param="is_default")


def explain(exc: msgspec.ValidationError, struct: type[msgspec.Struct]) -> str:
    """msgspec's message, with the valid fields when it is about an unknown one."""
    message, _, where = str(exc).partition(" - at `$")
    where = where.rstrip("`").lstrip(".")
    if message.startswith("Object contains unknown field"):
        name = message.split("`")[1]
        valid = ", ".join(f.encode_name for f in msgspec.structs.fields(struct))
        return f"unknown field {name!r}{f' at {where}' if where else ''}; valid fields: {valid}"
    return f"{message} at {where}" if where else message


_DEPLOYMENT_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def deployments(value: Any, field: str) -> str:
    """Azure's `deploymentConfig` (Portkey's shape), checked, as the JSON the adapter reads:
    `[{deploymentName, apiVersion?, alias?, is_default?}]`, at most one default."""
    if not isinstance(value, list) or not value:
        raise BadRequest(f"{field} must be a non-empty array of deployments", param=field)
    out = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise BadRequest(f"{field}[{i}] must be an object with a deploymentName", param=field)
        try:
            known(entry, _DEPLOYMENT_FIELDS, f"deployment {field}[{i}]")
        except BadRequest as exc:
            raise BadRequest(exc.message, param=field, code=exc.code) from None
        spelled = {_camel(k): v for k, v in entry.items()}  # deploymentName, apiVersion, alias, isDefault
        name = spelled.get("deploymentName")
        if not isinstance(name, str) or not _DEPLOYMENT_NAME.fullmatch(name):
            raise BadRequest(f"{field}[{i}].deploymentName must be an Azure deployment name", param=field)
        try:
            default = flag(spelled, "isDefault")
        except BadRequest:
            raise BadRequest(f"{field}[{i}].is_default must be true or false", param=field) from None
        item: JSON = {"deployment": name, "default": default}
        for key, target in (("alias", "alias"), ("apiVersion", "api_version")):
            if spelled.get(key) is not None:
                if not isinstance(spelled[key], str) or not spelled[key]:
                    raise BadRequest(f"{field}[{i}].{key} must be a string", param=field)
                item[target] = spelled[key]
        out.append(item)
    if sum(item["default"] for item in out) > 1:
        raise BadRequest(f"{field}: at most one deployment can be the default (is_default)", param=field)
    return msgspec.json.encode(out).decode()
