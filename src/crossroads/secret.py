"""A credential that cannot leak by accident: its repr, str and format are `***`.

Only `reveal()` gives the value, and only code that puts it on the wire to its own
provider calls it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final, final

# The provider options a target (a config target, a virtual key) may carry, by their snake_case
# names: the config schema and the admin API both accept exactly these.
CREDENTIAL_FIELDS: Final = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_region",
        "aws_role_arn",
        "aws_auth_type",
        "aws_external_id",
        "aws_s3_bucket",
        "aws_s3_object_key",
        "aws_bedrock_model",
        "aws_server_side_encryption",
        "aws_server_side_encryption_kms_key_id",
        "vertex_project_id",
        "vertex_region",
        "vertex_service_account_json",
        "vertex_storage_bucket_name",
        "vertex_model_name",
        "azure_resource_name",
        "azure_deployment_id",
        "azure_api_version",
        "azure_ad_token",
        "azure_auth_mode",
        "azure_model_name",
        "azure_managed_client_id",
        "azure_workload_client_id",
        "azure_entra_client_id",
        "azure_entra_client_secret",
        "azure_entra_tenant_id",
        "azure_entra_scope",
        "azure_endpoint_name",
        "azure_foundry_url",
        "azure_extra_params",
        "resource_name",
        "deployment_id",
        "api_version",
        "openai_organization",
        "openai_project",
        "openai_beta",
        "anthropic_beta",
        "anthropic_version",
        "huggingface_base_url",
        "workers_ai_account_id",
        "fireworks_account_id",
        "mistral_fim_completion",
        "provider_file_name",
        "provider_model",
    }
)
# Provider options that are credentials: kept as Secret so they cannot be logged.
SECRET_OPTIONS: Final = frozenset(
    {
        "aws_secret_access_key",
        "aws_session_token",
        "azure_ad_token",
        "azure_entra_client_secret",
        "vertex_service_account_json",
        "oracle_private_key",
        "oracle_key_passphrase",
        "api_key",
        "aws_access_key_id",
    }
)


@final
class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        """A stable, non-reversible id for keys in caches and logs (sha256, 16 hex)."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("a Secret cannot be pickled")


PIECE: Final = 8  # a run this long of a secret's characters is treated as part of the secret


def redact(text: str, *secrets: Secret | None) -> str:
    """Remove every given secret from `text` (used on provider error messages): the whole value,
    and any run of 8 or more of its consecutive characters (providers echo keys in part:
    "Incorrect API key provided: sk-proj-abc...wxyz"), each run replaced by `***`."""
    for secret in secrets:
        if secret is None:
            continue
        value = secret.reveal()
        if len(value) < 4:
            continue
        if value in text:
            text = text.replace(value, "***")
        if len(value) >= PIECE:
            text = _without_pieces(text, value)
    return text


def _without_pieces(text: str, value: str) -> str:
    grams = {value[i : i + PIECE] for i in range(len(value) - PIECE + 1)}
    covered = [False] * len(text)
    found = False
    for i in range(len(text) - PIECE + 1):
        if text[i : i + PIECE] in grams:
            found = True
            for j in range(i, i + PIECE):
                covered[j] = True
    if not found:
        return text
    out: list[str] = []
    hidden = False
    for char, secret_part in zip(text, covered, strict=True):
        if secret_part:
            if not hidden:
                out.append("***")
            hidden = True
        else:
            out.append(char)
            hidden = False
    return "".join(out)
