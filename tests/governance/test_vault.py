"""The vault: AES-256-GCM per purpose, bound to the record id; and where the master key comes from."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from crossroads.governance.vault import MIN_MASTER_BYTES, VERSION, Vault, VaultError, load_master

MASTER = bytes(range(32))
OTHER_MASTER = bytes(range(1, 33))
PURPOSE = "virtual-keys"
SECRET = b"sk-canary-0123456789abcdef"


@pytest.fixture
def vault() -> Vault:
    return Vault(MASTER, PURPOSE)


def _raw(token: str) -> bytes:
    return base64.b64decode(token, validate=True)


def _token(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# --- seal and open ---------------------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", [SECRET, b"", b"\x00\xff" * 5000, "клю́ч 🔑".encode()])
def test_seal_then_open_round_trips(vault: Vault, plaintext: bytes) -> None:
    token = vault.seal(plaintext, "vk_1")
    assert isinstance(token, str)
    assert vault.open(token, "vk_1") == plaintext


def test_sealed_value_layout_is_version_nonce_ciphertext_and_tag(vault: Vault) -> None:
    raw = _raw(vault.seal(SECRET, "vk_1"))
    assert raw[:1] == VERSION
    assert len(raw) == 1 + 12 + len(SECRET) + 16
    assert SECRET not in raw
    assert SECRET not in vault.seal(SECRET, "vk_1").encode()


def test_another_vault_from_the_same_master_and_purpose_opens_it(vault: Vault) -> None:
    token = vault.seal(SECRET, "vk_1")
    assert Vault(MASTER, PURPOSE).open(token, "vk_1") == SECRET


def test_two_seals_of_the_same_plaintext_use_different_nonces(vault: Vault) -> None:
    tokens = [vault.seal(SECRET, "vk_1") for _ in range(50)]
    nonces = {_raw(token)[1:13] for token in tokens}
    assert len(nonces) == len(tokens)
    assert len(set(tokens)) == len(tokens)
    assert all(vault.open(token, "vk_1") == SECRET for token in tokens)


def test_a_value_moved_to_another_record_does_not_open(vault: Vault) -> None:
    token = vault.seal(SECRET, "vk_1")
    for other in ("vk_2", "vk_10", "vk_", "", "VK_1", "vk_1 "):
        with pytest.raises(VaultError):
            vault.open(token, other)


def test_the_record_id_and_purpose_do_not_run_together() -> None:
    """Purpose "a" with record "b\\0c" and purpose "a\\0b" with record "c" share the same associated
    data; the per-purpose key must still keep them apart."""
    sealed = Vault(MASTER, "a").seal(SECRET, "b\x00c")
    with pytest.raises(VaultError):
        Vault(MASTER, "a\x00b").open(sealed, "c")


def test_a_value_presented_for_another_purpose_does_not_open(vault: Vault) -> None:
    token = vault.seal(SECRET, "vk_1")
    for purpose in ("session-tokens", "virtual-keys ", "Virtual-Keys", ""):
        with pytest.raises(VaultError):
            Vault(MASTER, purpose).open(token, "vk_1")


def test_a_different_master_key_does_not_open(vault: Vault) -> None:
    token = vault.seal(SECRET, "vk_1")
    with pytest.raises(VaultError, match="wrong master key"):
        Vault(OTHER_MASTER, PURPOSE).open(token, "vk_1")
    with pytest.raises(VaultError):
        Vault(MASTER + b"\x00", PURPOSE).open(token, "vk_1")


def test_tampering_with_any_byte_is_detected(vault: Vault) -> None:
    raw = _raw(vault.seal(SECRET, "vk_1"))
    for index in range(len(raw)):
        for flip in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[index] ^= flip
            with pytest.raises(VaultError):
                vault.open(_token(bytes(tampered)), "vk_1")


def test_truncated_or_extended_values_do_not_open(vault: Vault) -> None:
    raw = _raw(vault.seal(SECRET, "vk_1"))
    for cut in (1, 16, len(raw) - 13):
        with pytest.raises(VaultError):
            vault.open(_token(raw[:-cut]), "vk_1")
    with pytest.raises(VaultError):
        vault.open(_token(raw + b"\x00"), "vk_1")


@pytest.mark.parametrize(
    "token",
    [
        "not base64!!",
        "ÿÿÿÿ",
        "AAAA\nAAAA",
        "",
        "A",
        "AAA",
    ],
)
def test_values_that_are_not_base64_are_refused(vault: Vault, token: str) -> None:
    with pytest.raises(VaultError, match="not a sealed value"):
        vault.open(token, "vk_1")


def test_values_too_short_to_hold_a_nonce_and_tag_are_refused(vault: Vault) -> None:
    full = _raw(vault.seal(b"", "vk_1"))
    assert len(full) == 1 + 12 + 16
    for length in range(len(full)):
        with pytest.raises(VaultError, match="not a sealed value"):
            vault.open(_token(full[:length]), "vk_1")


def test_the_shortest_value_is_an_empty_plaintext(vault: Vault) -> None:
    token = vault.seal(b"", "vk_1")
    assert len(_raw(token)) == 1 + 12 + 16
    assert vault.open(token, "vk_1") == b""


@pytest.mark.parametrize("version", [b"\x00", b"\x02", b"\xff"])
def test_an_unknown_version_byte_is_refused(vault: Vault, version: bytes) -> None:
    raw = _raw(vault.seal(SECRET, "vk_1"))
    with pytest.raises(VaultError, match="not a sealed value"):
        vault.open(_token(version + raw[1:]), "vk_1")


@pytest.mark.parametrize("size", [0, 1, 16, MIN_MASTER_BYTES - 1])
def test_a_master_key_shorter_than_32_bytes_is_refused(size: int) -> None:
    with pytest.raises(VaultError, match="at least 32 bytes"):
        Vault(b"k" * size, PURPOSE)


def test_a_master_key_of_exactly_32_bytes_or_more_is_accepted() -> None:
    assert MIN_MASTER_BYTES == 32
    for size in (32, 33, 64):
        vault = Vault(os.urandom(size), PURPOSE)
        assert vault.open(vault.seal(SECRET, "r"), "r") == SECRET


# --- load_master -------------------------------------------------------------------------------------

KEY32 = bytes(range(100, 132))
KEY64 = bytes(range(64, 128))


def test_nothing_given_means_no_master_key() -> None:
    assert load_master(None, None) is None
    assert load_master("", None) is None
    assert load_master("", "") is None


@pytest.mark.parametrize("key", [KEY32, KEY64])
def test_base64_values_are_decoded(key: bytes) -> None:
    assert load_master(base64.b64encode(key).decode(), None) == key


def test_hex_values_that_are_not_also_base64_are_decoded() -> None:
    key = bytes(range(33))  # 66 hex digits: not a multiple of 4, so not base64
    assert load_master(key.hex(), None) == key
    assert load_master(key.hex().upper(), None) == key


@pytest.mark.parametrize("key", [KEY32, KEY64])
def test_hex_values_are_decoded_as_hex_even_when_they_are_also_base64(key: bytes) -> None:
    """`openssl rand -hex 32` gives 64 hex digits, which are valid base64 too: hex must win."""
    assert load_master(key.hex(), None) == key


def test_the_same_value_always_gives_the_same_key() -> None:
    for value in (KEY32.hex(), base64.b64encode(KEY32).decode(), "a passphrase that is long enough!!"):
        assert load_master(value, None) == load_master(value, None)


def test_raw_text_of_32_bytes_or_more_is_used_as_is() -> None:
    text = "correct horse battery staple: 32+ bytes"
    assert load_master(text, None) == text.encode()
    unicode_text = "ключ" * 4  # 16 characters, 32 bytes in UTF-8
    assert load_master(unicode_text, None) == unicode_text.encode()


def test_a_file_is_read_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(base64.b64encode(KEY32).decode() + "\n")
    assert load_master(None, str(path)) == KEY32
    key33 = bytes(range(33))
    path.write_text("  " + key33.hex() + "\r\n")
    assert load_master(None, str(path)) == key33


def test_the_file_wins_over_the_value(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(base64.b64encode(KEY32).decode())
    assert load_master(base64.b64encode(KEY64).decode(), str(path)) == KEY32


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.key"
    path.write_text("\n")
    with pytest.raises(VaultError, match="empty"):
        load_master(None, str(path))


@pytest.mark.parametrize("size", [16, 24, 31])
def test_an_encoded_key_of_fewer_than_32_bytes_is_refused(size: int) -> None:
    raw = bytes(range(size))
    for value in (raw.hex(), base64.b64encode(raw).decode()):
        with pytest.raises(VaultError, match=f"decodes to {size} bytes"):
            load_master(value, None)


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_master(None, str(tmp_path / "nope.key"))


@pytest.mark.parametrize(
    "value",
    [
        "short",
        "x" * 31,
        base64.b64encode(bytes(16)).decode(),  # 24 characters: 16 bytes
        bytes(8).hex(),  # 16 hex digits
    ],
)
def test_short_values_are_refused_with_a_hint(value: str) -> None:
    with pytest.raises(VaultError, match="openssl rand"):
        load_master(value, None)


def test_a_short_file_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "short.key"
    path.write_text("tooshort\n")
    with pytest.raises(VaultError, match="openssl rand"):
        load_master(None, str(path))


@pytest.mark.parametrize("padding", [("", "\n"), ("  ", "  "), ("\t", "\r\n")])
def test_a_value_means_the_same_key_as_a_file_holding_it(tmp_path: Path, padding: tuple[str, str]) -> None:
    before, after = padding
    for encoded in (base64.b64encode(KEY32).decode(), KEY32.hex()):
        path = tmp_path / "master.key"
        path.write_text(before + encoded + after)
        assert load_master(before + encoded + after, None) == load_master(None, str(path)) == KEY32


def test_a_blank_value_means_no_master_key() -> None:
    assert load_master("  \n", None) is None


def test_a_binary_key_file_is_used_as_is(tmp_path: Path) -> None:
    raw = bytes(range(0x80, 0xA0))  # 32 random-looking bytes, not UTF-8
    path = tmp_path / "binary.key"
    path.write_bytes(raw)
    assert load_master(None, str(path)) == raw
    longer = raw + b"\n\x00 tail"  # taken whole: nothing is stripped from binary bytes
    path.write_bytes(longer)
    assert load_master(None, str(path)) == longer


def test_a_short_binary_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "binary.key"
    path.write_bytes(bytes(range(0x80, 0x9F)))  # 31 bytes
    with pytest.raises(VaultError, match="fewer than 32 bytes"):
        load_master(None, str(path))
