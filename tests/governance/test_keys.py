"""Gateway API keys: their shape, their stored hash, how they are masked, and the scope names."""

from __future__ import annotations

import hashlib
import re
import string

import pytest

from crossroads.governance.keys import (
    ADMIN_SCOPES,
    DEFAULT_SCOPES,
    KEY_SUB_TYPES,
    KEY_TYPES,
    PREFIX,
    SCOPES,
    key_hash,
    looks_like_key,
    mask,
    new_key,
    same_hash,
)

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


# --- new_key --------------------------------------------------------------------------------------


def test_a_new_key_is_the_prefix_and_43_url_safe_characters() -> None:
    key = new_key()
    assert PREFIX == "xr-"
    assert key.startswith("xr-")
    assert len(key) == 3 + 43
    assert URL_SAFE.fullmatch(key[3:])
    assert "=" not in key


def test_new_keys_are_unique_and_all_well_formed() -> None:
    keys = [new_key() for _ in range(1000)]
    assert len(set(keys)) == 1000
    assert len({key[3:11] for key in keys}) > 990  # even short prefixes hardly repeat: they are random
    for key in keys:
        assert key.startswith(PREFIX)
        assert len(key) == 46
        assert URL_SAFE.fullmatch(key[len(PREFIX) :])
        assert looks_like_key(key)


def test_new_keys_use_the_whole_url_safe_alphabet() -> None:
    seen = set("".join(new_key()[3:] for _ in range(1000)))
    assert seen <= set(string.ascii_letters + string.digits + "-_")
    assert len(seen) == 64


# --- key_hash / same_hash -----------------------------------------------------------------------------


def test_key_hash_is_the_sha256_hex_digest() -> None:
    assert key_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    key = new_key()
    assert key_hash(key) == hashlib.sha256(key.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", key_hash(key))


def test_key_hash_is_deterministic_and_tells_keys_apart() -> None:
    key = new_key()
    assert key_hash(key) == key_hash(key)
    assert key_hash(key) != key_hash(new_key())
    assert key_hash(key) != key_hash(key + " ")
    assert key_hash("ключ") == hashlib.sha256("ключ".encode()).hexdigest()


def test_key_hash_never_contains_the_key() -> None:
    key = new_key()
    assert key[3:11] not in key_hash(key)


def test_same_hash() -> None:
    digest = key_hash(new_key())
    assert same_hash(digest, digest)
    assert not same_hash(digest, key_hash(new_key()))
    assert not same_hash(digest, digest[:-1])
    assert not same_hash(digest, digest + "0")
    assert not same_hash(digest, digest.upper())
    assert not same_hash(digest, "")
    assert same_hash("", "")


# --- mask -------------------------------------------------------------------------------------------


def _revealed(masked: str) -> int:
    return sum(1 for char in masked if char != "*")


@pytest.mark.parametrize("length", range(20))
def test_secrets_shorter_than_20_characters_are_all_stars(length: int) -> None:
    secret = "s3cr3t-value!-abcdefgh"[:length]
    assert mask(secret) == "*" * length


def test_a_key_is_masked_to_its_first_3_and_last_4_characters() -> None:
    key = new_key()
    masked = mask(key)
    assert masked == key[:3] + "********" + key[-4:]
    assert masked.startswith("xr-********")
    assert key not in masked
    assert key[3:-4] not in masked


@pytest.mark.parametrize("length", [20, 21, 32, 46, 51, 108, 200])
def test_mask_never_reveals_more_than_seven_characters(length: int) -> None:
    secret = ((string.ascii_letters + string.digits) * 4)[:length]
    masked = mask(secret)
    assert masked == secret[:3] + "********" + secret[-4:]
    assert _revealed(masked) == 7
    assert len(masked) == 15  # a long secret's length is not given away
    # No 5-character piece of the secret appears anywhere (the leak scanner looks for 8).
    for start in range(length - 4):
        assert secret[start : start + 5] not in masked


def test_mask_always_hides_most_of_a_secret() -> None:
    for length in range(80):
        secret = ("abcdefghijklmnopqrstuvwxyz0123456789" * 3)[:length]
        hidden = length - _revealed(mask(secret))
        assert hidden == length or hidden >= 13, (length, mask(secret))


# --- looks_like_key ---------------------------------------------------------------------------------


def test_looks_like_key() -> None:
    assert looks_like_key(new_key())
    assert looks_like_key("xr-" + "a" * 40)
    assert not looks_like_key("xr-" + "a" * 39)
    assert not looks_like_key("xr-")
    assert not looks_like_key("")
    assert not looks_like_key("sk-" + "a" * 43)
    assert not looks_like_key("XR-" + "a" * 43)
    assert not looks_like_key(" xr-" + "a" * 43)
    assert not looks_like_key(key_hash(new_key()))


# --- scopes ----------------------------------------------------------------------------------------


def test_completions_write_is_a_scope_but_not_an_admin_scope() -> None:
    assert "completions.write" in SCOPES
    assert "completions.write" not in ADMIN_SCOPES


def test_admin_scopes_are_every_other_scope() -> None:
    assert ADMIN_SCOPES < SCOPES
    assert ADMIN_SCOPES | {"completions.write"} == SCOPES
    for scope in ("api_keys.create", "virtual_keys.read", "configs.delete", "logs.view", "cache.clear"):
        assert scope in ADMIN_SCOPES


def test_scope_names_follow_portkey() -> None:
    for scope in SCOPES:
        assert re.fullmatch(r"[a-z_]+\.[a-z]+", scope), scope
    assert {scope.split(".")[0] for scope in SCOPES} == {
        "completions",
        "logs",
        "configs",
        "virtual_keys",
        "api_keys",
        "cache",
        "metrics",
    }


def test_default_scopes_only_allow_completions() -> None:
    assert DEFAULT_SCOPES == ("completions.write",)
    assert set(DEFAULT_SCOPES) <= SCOPES
    assert not set(DEFAULT_SCOPES) & ADMIN_SCOPES


def test_key_types() -> None:
    assert frozenset({"organisation", "workspace"}) == KEY_TYPES
    assert frozenset({"service", "user"}) == KEY_SUB_TYPES
