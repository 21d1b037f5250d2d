"""Validate answers against OpenAI's own OpenAPI spec (../shared/spec/openai-openapi.yaml)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "openai-openapi.yaml"


@functools.cache
def _components() -> dict[str, Any]:
    with SPEC.open() as handle:
        spec = yaml.load(handle, Loader=yaml.CSafeLoader)
    components: dict[str, Any] = spec["components"]
    return components


@functools.cache
def validator(schema: str) -> Draft202012Validator:
    components = _components()
    assert schema in components["schemas"], f"no schema {schema} in the spec"
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": components})


def check(schema: str, instance: Any) -> None:
    """Raise AssertionError listing every violation of the named component schema."""
    errors = sorted(validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}" for e in errors[:10]]
        raise AssertionError(f"response does not match {schema}:\n" + "\n".join(lines))
