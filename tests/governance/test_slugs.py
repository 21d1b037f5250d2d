"""Slugs: the rules for a chosen one, how one is derived from a name, and the hint for a miss."""

from __future__ import annotations

import pytest

from crossroads.errors import BadRequest
from crossroads.governance import slugs


@pytest.mark.parametrize("slug", ["openai-virtual-key", "pc-config-abc123", "a", "x_1", "9" * 64])
def test_chosen_slugs_that_follow_the_rules_are_kept(slug: str) -> None:
    assert slugs.chosen(slug) == slug


@pytest.mark.parametrize("slug", ["", "A", "a b", "_a", "a/b", "@a", "x" * 65, None, 1])
def test_chosen_slugs_that_break_the_rules_are_refused(slug: object) -> None:
    with pytest.raises(BadRequest) as refused:
        slugs.chosen(slug)
    assert refused.value.param == "slug" and refused.value.code == "invalid_slug"


def test_derived_slugs_keep_the_whole_name_within_the_limit() -> None:
    slug = slugs.derived("OpenAI production (EU west)")
    assert (
        slug.startswith("openai-production-eu-west-") and len(slug) == len("openai-production-eu-west-") + 6
    )
    assert slugs.derived("support", "pc-").startswith("pc-support-")
    assert slugs.derived("!!!").startswith("key-")
    long = slugs.derived("n" * 200, "pc-")
    assert len(long) == slugs.MAX_LENGTH and slugs.chosen(long) == long


def test_a_miss_names_the_records_whose_name_matches() -> None:
    records = [("openai-key-3f2a1b", "openai-key"), ("prod", "Anthropic Prod"), ("other-000000", "x")]
    assert slugs.suggestion("openai-key", records, "a virtual key") == (
        "; a virtual key named 'openai-key' has the slug 'openai-key-3f2a1b'"
    )
    assert "'Anthropic Prod' has the slug 'prod'" in slugs.suggestion(
        "anthropic-prod", records, "a virtual key"
    )
    assert slugs.suggestion("PROD", records, "a virtual key").endswith("'prod'")
    assert (
        slugs.suggestion("other", records, "a virtual key")
        == "; a virtual key named 'x' has the slug 'other-000000'"
    )
    assert slugs.suggestion("openai", records, "a virtual key") == ""
    assert slugs.suggestion("???", records, "a virtual key") == ""
