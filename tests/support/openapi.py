"""Validate answers against OpenAI's own OpenAPI spec.

The schemas come from tests/fixtures/openai-openapi.subset.json, extracted (with everything
they reference) from ../shared/spec/openai-openapi.yaml by tests/support/spec_subset.py, so
the tests run wherever the repository is cloned.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator

from tests.support.spec_subset import SUBSET


@functools.cache
def _components() -> dict[str, Any]:
    components: dict[str, Any] = json.loads(SUBSET.read_text())["components"]
    return components


@functools.cache
def validator(schema: str) -> Draft202012Validator:
    components = _components()
    assert schema in components["schemas"], f"{schema} is not in the extracted subset (see spec_subset.py)"
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": components})


def check(schema: str, instance: Any) -> None:
    """Raise AssertionError listing every violation of the named component schema."""
    errors = sorted(validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}" for e in errors[:10]]
        raise AssertionError(f"response does not match {schema}:\n" + "\n".join(lines))
