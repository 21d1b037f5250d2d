"""Encrypting stored provider credentials: AES-256-GCM, per-purpose keys from one master secret.

The master secret (32+ random bytes, from `CROSSROADS_MASTER_KEY` or `master_key_file`; never
a built-in default) is stretched with HKDF-SHA256 into one key per purpose, so the key that
seals virtual keys seals nothing else. Each ciphertext is bound to its record id and purpose
as associated data: copied to another row, or presented as something else, it fails to open.
Layout of a sealed value: version byte, 12-byte random nonce, ciphertext with its GCM tag.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crossroads.errors import GatewayError

VERSION: Final = b"\x01"
MIN_MASTER_BYTES: Final = 32


class VaultError(Exception):
    """A sealed value could not be opened (wrong key, moved, tampered) or sealed."""


class MasterKeyMissing(GatewayError):
    """Virtual keys are created, changed or used, and the gateway has no master key: a server
    configuration problem (503), the same answer on the admin API and on a request."""

    status = 503
    default_code = "vault_not_configured"

    def __init__(self, doing: str) -> None:
        super().__init__(
            f"Virtual keys cannot be {doing}: this gateway has no master key. Set the master_key "
            "setting (CROSSROADS_MASTER_KEY, or master_key_file) to 32+ random bytes, e.g. "
            "`openssl rand -base64 32`, and restart"
        )


class Vault:
    """Seals with the current master key; opens with it or, during a master-key rotation, with
    the previous ones (until `crossroads virtual-keys reencrypt` has re-sealed everything)."""

    def __init__(self, master: bytes, purpose: str, previous: Sequence[bytes] = ()) -> None:
        self._purpose = purpose.encode()
        self._aead = self._derive(master)
        self._previous = [self._derive(old) for old in previous]

    def _derive(self, master: bytes) -> AESGCM:
        if len(master) < MIN_MASTER_BYTES:
            raise VaultError(f"the master key must be at least {MIN_MASTER_BYTES} bytes")
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"crossroads/vault/v1", info=self._purpose
        ).derive(master)
        return AESGCM(key)

    def seal(self, plaintext: bytes, record_id: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext, self._aad(record_id))
        return base64.b64encode(VERSION + nonce + sealed).decode()

    def open(self, token: str, record_id: str) -> bytes:
        try:
            raw = base64.b64decode(token, validate=True)
        except ValueError:
            raise VaultError("not a sealed value") from None
        if len(raw) < 1 + 12 + 16 or raw[:1] != VERSION:
            raise VaultError("not a sealed value")
        for aead in (self._aead, *self._previous):
            try:
                return aead.decrypt(raw[1:13], raw[13:], self._aad(record_id))
            except InvalidTag:
                continue
        raise VaultError("the sealed value does not open: wrong master key, or it belongs to another record")

    def is_current(self, token: str, record_id: str) -> bool:
        """Sealed with the current master key (not a previous one)?"""
        try:
            raw = base64.b64decode(token, validate=True)
            self._aead.decrypt(raw[1:13], raw[13:], self._aad(record_id))
        except (ValueError, InvalidTag):
            return False
        return True

    def _aad(self, record_id: str) -> bytes:
        return self._purpose + b"\x00" + record_id.encode()


def load_master(value: str | None, path: str | None) -> bytes | None:
    """The master key from an environment value or a file: base64 or hex text of 32+ bytes,
    32+ bytes of raw text, or (a file only) 32+ raw random bytes."""
    if path:
        with open(path, "rb") as handle:
            raw_file = handle.read()
        try:
            value = raw_file.decode().strip()
        except UnicodeDecodeError:
            if len(raw_file) < MIN_MASTER_BYTES:
                raise VaultError(f"the master key file holds fewer than {MIN_MASTER_BYTES} bytes") from None
            return raw_file
    value = (value or "").strip()
    if not value:
        if path:
            raise VaultError("the master key file is empty")
        return None
    for decode in (bytes.fromhex, _b64):  # hex first: 64 hex digits are valid base64 too
        try:
            raw = decode(value)
        except ValueError:
            continue
        if len(raw) >= MIN_MASTER_BYTES:
            return raw
        # e.g. `openssl rand -hex 16`: an encoded key, too short, not a passphrase
        raise VaultError(
            f"the master key decodes to {len(raw)} bytes: give at least {MIN_MASTER_BYTES} random bytes "
            "(e.g. `openssl rand -base64 32`)"
        )
    raw = value.encode()
    if len(raw) < MIN_MASTER_BYTES:
        raise VaultError(
            f"the master key is too short: give at least {MIN_MASTER_BYTES} random bytes "
            "(e.g. `openssl rand -base64 32`)"
        )
    return raw


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)
