"""Slugs: the names virtual keys and saved configs are used by. A user may choose one (checked
here); otherwise one is made from the record's name and a random suffix. A slug that is not
found is answered with the slugs of records whose name matches it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Final

from crossroads.errors import BadRequest

MAX_LENGTH: Final = 64
# Lowercase letters, digits, `-` and `_`, starting with a letter or a digit. (Portkey's
# integration slugs also allow capitals; lookups here are exact, so capitals would allow
# twins that differ only in case.)
_SLUG: Final = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{MAX_LENGTH - 1}}}")
_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SUFFIX: Final = 6  # hex digits of randomness in a derived slug
RULE: Final = f"1 to {MAX_LENGTH} lowercase letters, digits, '-' and '_', starting with a letter or a digit"


def chosen(value: object, field: str = "slug") -> str:
    """A slug given by the user, checked."""
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        hint = ""
        if isinstance(value, str):
            lowered = base(value)
            if lowered and lowered != value:
                hint = f" (e.g. {lowered[:MAX_LENGTH]!r})"
        raise BadRequest(f"{field} must be {RULE}{hint}; got {value!r}", param=field, code="invalid_slug")
    if _UUID.fullmatch(value):
        raise BadRequest(
            f"{field} {value!r} looks like an id: choose a name-like slug", param=field, code="invalid_slug"
        )
    return value


def base(name: str) -> str:
    """The slug form of a name: lowercase, every run of other characters one `-`."""
    return re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-_")


def derived(name: str, prefix: str = "") -> str:
    """A new slug from a name: `openai-prod-3f2a1b` (`pc-support-fallback-9c1d2e` for configs).
    The whole name is kept, up to the slug's length limit."""
    room = MAX_LENGTH - len(prefix) - 1 - _SUFFIX
    stem = base(name)[:room].rstrip("-_") or "key"
    return f"{prefix}{stem}-{uuid.uuid4().hex[:_SUFFIX]}"


def suggestion(wanted: str, records: Iterable[tuple[str, str]], what: str) -> str:
    """For a slug nobody has: `; a virtual key named 'openai-key' has the slug 'openai-key-3f2a1b'`
    for records (slug, name) whose name or derived slug matches; empty when none does."""
    form = base(wanted)
    if not form:
        return ""
    found = [
        (slug, name)
        for slug, name in records
        if base(name) == form
        or slug == wanted.lower()
        or (slug.startswith(form + "-") and _derived_from(slug, form))
    ]
    if not found:
        return ""
    shown = "; ".join(f"{what} named {name!r} has the slug {slug!r}" for slug, name in found[:3])
    return f"; {shown}"


def _derived_from(slug: str, form: str) -> bool:
    """`openai-key-3f2a1b` was derived from `openai-key` (the rest is one random suffix)."""
    rest = slug[len(form) + 1 :]
    return len(rest) == _SUFFIX and all(c in "0123456789abcdef" for c in rest)
