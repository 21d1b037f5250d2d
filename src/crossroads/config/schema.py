"""The Portkey config tree as the gateway understands it: one frozen Struct per object.

Every field Portkey documents is here (see ../shared/reference/portkey-gateway.md §4);
an unknown key is an error. Keys arrive in snake_case or camelCase (`parse.py` turns them
to snake_case before they reach these types); the contents of `override_params`,
`conditions[].query` and `vertex_service_account_json` are never renamed.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from crossroads.secret import Secret

StatusCode = Annotated[int, msgspec.Meta(ge=100, le=599)]
Millis = Annotated[int, msgspec.Meta(gt=0, le=86_400_000)]

# Retries after the first try are capped here (Portkey documents "up to 5").
MAX_RETRY_ATTEMPTS: Final = 5
# Portkey's list, plus 529 (Anthropic's "overloaded").
DEFAULT_RETRY_STATUSES: Final = (429, 500, 502, 503, 504, 529)
MODES: Final = ("single", "fallback", "loadbalance", "conditional")

# A target's provider credential and option fields (Portkey's names) are
# crossroads.secret.CREDENTIAL_FIELDS. They become the target's options, exactly like the
# matching x-portkey-* headers. Of those, the ones that are credentials (kept as Secret, masked when shown).
SECRET_FIELDS: Final = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "vertex_service_account_json",
        "azure_ad_token",
        "azure_entra_client_secret",
    }
)
HOOK_FIELDS: Final = (
    "before_request_hooks",
    "after_request_hooks",
    "input_guardrails",
    "output_guardrails",
    "input_mutators",
    "output_mutators",
)


class RetrySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    attempts: Annotated[int, msgspec.Meta(ge=0)]
    on_status_codes: tuple[StatusCode, ...] | None = None
    # Honour Retry-After / retry-after-ms / x-ms-retry-after-ms. Unset means yes (Portkey's
    # default is no; waiting as the provider asks is the polite and effective behaviour).
    use_retry_after_header: bool | None = None


class CacheSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    mode: Literal["simple", "semantic"]
    max_age: Annotated[int, msgspec.Meta(gt=0)] | None = None  # seconds


class CircuitBreakerSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Portkey's `strategy.cb_config` field names."""

    failure_threshold: Annotated[int, msgspec.Meta(ge=1)] | None = None  # consecutive failures
    failure_threshold_percentage: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
    minimum_requests: Annotated[int, msgspec.Meta(ge=1)] | None = None  # for the percentage rule
    cooldown_interval: Millis | None = None  # first cooldown; it grows with repeated trips
    failure_status_codes: tuple[StatusCode, ...] | None = None


class ConditionSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    query: dict[str, Any]
    then: str


class StrategySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    mode: Literal["single", "fallback", "loadbalance", "conditional"]
    on_status_codes: tuple[StatusCode, ...] | None = None
    conditions: tuple[ConditionSpec, ...] | None = None
    default: str | None = None
    cb_config: CircuitBreakerSpec | None = None


class ConfigNode(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    strategy: StrategySpec | None = None
    targets: tuple[ConfigNode, ...] | None = None
    name: str | None = None
    id: str | None = None  # accepted for Portkey compatibility; not used
    weight: Annotated[float, msgspec.Meta(ge=0)] | None = None
    provider: str | None = None
    api_key: Secret | None = None
    virtual_key: str | None = None
    retry: RetrySpec | None = None
    request_timeout: Millis | None = None
    cache: CacheSpec | None = None
    custom_host: str | None = None
    forward_headers: tuple[str, ...] | None = None
    override_params: dict[str, Any] | None = None
    strict_open_ai_compliance: bool | None = None
    on_status_codes: tuple[StatusCode, ...] | None = None  # accepted at node level; Portkey ignores it too
    before_request_hooks: tuple[Any, ...] | None = None
    after_request_hooks: tuple[Any, ...] | None = None
    input_guardrails: tuple[Any, ...] | None = None
    output_guardrails: tuple[Any, ...] | None = None
    input_mutators: tuple[Any, ...] | None = None
    output_mutators: tuple[Any, ...] | None = None
    # Credential/option fields (CREDENTIAL_FIELDS), gathered here by the parser.
    options: dict[str, Any] = msgspec.field(default_factory=dict, name="(options)")

    @property
    def mode(self) -> str:
        if self.strategy is not None:
            return self.strategy.mode
        return "single"

    @property
    def is_target(self) -> bool:
        """A leaf: it names a provider (or leaves it to the headers) and has no targets."""
        return not self.targets
