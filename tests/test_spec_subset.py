"""The committed OpenAPI subset is what the shared spec says (checked when ../shared is present)."""

from __future__ import annotations

import json

import pytest

from tests.support.spec_subset import SHARED_SPEC, SUBSET, extract, load_shared


@pytest.mark.skipif(not SHARED_SPEC.exists(), reason="../shared/spec is not beside this clone")
def test_subset_matches_the_shared_spec() -> None:
    assert json.loads(SUBSET.read_text()) == json.loads(json.dumps(extract(load_shared())))
