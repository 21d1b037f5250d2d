"""A credential that cannot leak by accident: its repr, str and format are `***`.

Only `reveal()` gives the value, and only code that puts it on the wire to its own
provider calls it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final, final

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


def redact(text: str, *secrets: Secret | None) -> str:
    """Remove every given secret's value from `text` (used on provider error messages)."""
    for secret in secrets:
        if secret is not None and len(secret.reveal()) >= 4:
            text = text.replace(secret.reveal(), "***")
    return text
