"""Who may make a request, and on what terms: gateway API keys, their scopes and defaults,
model allow-lists, the virtual keys a request uses, and the key's limits.

Authentication: `x-portkey-api-key`, or, when that header is absent or empty, the
`Authorization: Bearer` token (the plain-OpenAI-SDK pattern). In open mode (no key exists,
none required) requests need no key, and a bearer token that is not one of ours is the
provider's key as before. Every refusal is a 401 (no valid key) or a 403 (a valid key that
may not do this), with the same work done whichever way a key is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import msgspec

from crossroads.config.schema import ConfigNode
from crossroads.errors import AuthError, BadRequest, Forbidden
from crossroads.governance import keys as keyfmt
from crossroads.governance.directory import OPEN, Directory, Principal, VirtualKeyAccess
from crossroads.governance.ledger import Ledger, Reservation
from crossroads.governance.limits import estimate
from crossroads.pipeline.headers import RequestOptions
from crossroads.providers.base import Call

INFERENCE: Final = "completions.write"


class Access:
    def __init__(self, directory: Directory, ledger: Ledger) -> None:
        self.directory = directory
        self.ledger = ledger

    async def authenticate(self, opts: RequestOptions) -> Principal:
        """The caller, from its gateway key; consumes a bearer token used as one."""
        presented = opts.gateway_key.reveal() if opts.gateway_key is not None else None
        open_mode = await self.directory.open_mode()
        from_bearer = False
        if presented is None and opts.api_key is not None:
            bearer = opts.api_key.reveal()
            if not open_mode or keyfmt.looks_like_key(bearer):
                presented, from_bearer = bearer, True
        if presented is None:
            if open_mode:
                return OPEN
            raise AuthError(
                "A gateway API key is required: send it in x-portkey-api-key "
                "(or as Authorization: Bearer when x-portkey-api-key is absent)",
                code="missing_api_key",
            )
        principal = await self.directory.principal(presented)
        if principal is None:
            if open_mode and not from_bearer and not keyfmt.looks_like_key(presented):
                return OPEN  # e.g. a Portkey cloud key left in PORTKEY_API_KEY: not ours, not needed
            if from_bearer and not keyfmt.looks_like_key(presented):
                # Most likely the provider's key, sent the plain-OpenAI-SDK way.
                raise AuthError(
                    "A gateway API key is required: this gateway has API keys, so send yours in "
                    "x-portkey-api-key; the Authorization bearer token is then taken as the provider's "
                    "key (it is not a gateway key)",
                    code="missing_api_key",
                )
            raise AuthError("Invalid API key: it is unknown, revoked or rotated out", code="invalid_api_key")
        if principal.expires_at is not None and principal.expires_at <= self.directory.wall():
            raise AuthError("Invalid API key: it has expired", code="expired_api_key")
        if from_bearer:
            opts.api_key = None  # the gateway key is not a provider key
        return principal

    @staticmethod
    def require(principal: Principal, scope: str) -> None:
        if scope not in principal.scopes:
            raise Forbidden(
                f"This API key does not have the {scope} scope needed here", code="insufficient_scope"
            )

    def admit(self, principal: Principal, call: Call, opts: RequestOptions) -> Call:
        """Apply the key's defaults and the `@slug/model` form; check the model allow-list."""
        self.require(principal, INFERENCE)
        defaults = principal.defaults
        if defaults.metadata:
            call.metadata = opts.metadata = {**opts.metadata, **defaults.metadata}
        if defaults.config_id is not None:
            if opts.config is not None and not defaults.allow_config_override:
                raise Forbidden(
                    "This API key has a default config and may not override it: remove x-portkey-config",
                    param="x-portkey-config",
                    code="config_override_not_allowed",
                )
            if opts.config is None:
                opts.config = defaults.config_id
        body = call.json
        model = body.get("model") if body is not None else None
        if isinstance(model, str) and model.startswith("@") and "/" in model:
            slug, _, name = model[1:].partition("/")
            if opts.provider not in (None, "@" + slug) or opts.virtual_key not in (None, slug):
                raise BadRequest(
                    f"model {model!r} names the provider @{slug}, but the request also names another one",
                    param="model",
                )
            opts.provider = "@" + slug
            assert body is not None
            body = {**body, "model": name}
            call = msgspec.structs.replace(call, json=body, body=msgspec.json.encode(body))
            model = name
        allowed = principal.allowed_models
        if allowed is not None and isinstance(model, str) and model not in allowed:
            raise Forbidden(
                f"This API key may not use the model {model!r}", param="model", code="model_not_allowed"
            )
        return call

    async def virtual_keys(
        self, config: ConfigNode | None, opts: RequestOptions
    ) -> dict[str, VirtualKeyAccess]:
        """Every virtual key the request may use, opened; a missing or expired one is refused."""
        slugs = set(_slugs(config)) if config is not None else set()
        if opts.virtual_key:
            slugs.add(opts.virtual_key)
        if opts.provider and opts.provider.startswith("@"):
            slugs.add(opts.provider[1:])
        found = {}
        for slug in sorted(slugs):
            vk = await self.directory.virtual_key(slug)
            if vk.expires_at is not None and vk.expires_at <= self.directory.wall():
                raise Forbidden(f"The virtual key {slug!r} has expired", code="virtual_key_expired")
            found[slug] = vk
        return found

    async def reserve(self, principal: Principal, call: Call, who: str) -> Reservation | None:
        limits = principal.limits
        if limits is None:
            return None
        return await self.reserve_for(limits, call, who)

    async def reserve_for(self, limits: Any, call: Call, who: str) -> Reservation:
        prompt, completion = estimate(call.json, len(call.body))
        model = call.json.get("model") if call.json is not None else None
        return await self.ledger.reserve(
            limits,
            who=who,
            model=model if isinstance(model, str) else None,
            prompt=prompt,
            completion=completion,
        )


def check_model(vk: VirtualKeyAccess, model: Any) -> None:
    if vk.allowed_models is not None and isinstance(model, str) and model not in vk.allowed_models:
        raise Forbidden(
            f"The virtual key {vk.slug!r} may not use the model {model!r}",
            param="model",
            code="model_not_allowed",
        )


def _slugs(node: ConfigNode) -> Iterator[str]:
    if node.virtual_key:
        yield node.virtual_key
    if node.provider and node.provider.startswith("@"):
        yield node.provider[1:]
    for child in node.targets or ():
        yield from _slugs(child)
