"""Extract the OpenAI OpenAPI component schemas the tests validate against, with everything they
reference, from ../shared/spec/openai-openapi.yaml into tests/fixtures/openai-openapi.subset.json.

Run `python -m tests.support.spec_subset` after the shared spec changes; a test checks the
committed subset still matches the shared spec whenever that is present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED_SPEC = ROOT.parent / "shared" / "spec" / "openai-openapi.yaml"
SUBSET = ROOT / "tests" / "fixtures" / "openai-openapi.subset.json"
SCHEMAS = (
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionResponse",
    "CreateEmbeddingResponse",
    "ImagesResponse",
    "CreateTranscriptionResponseJson",
    "CreateTranscriptionResponseVerboseJson",
    "CreateModerationResponse",
    "ListModelsResponse",
    "ErrorResponse",
)


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    wanted: dict[str, Any] = {}
    todo = list(SCHEMAS)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted[name] = schemas[name]
        todo += [ref.rsplit("/", 1)[1] for ref in _refs(schemas[name])]
    return {
        "source": "openai/openai-openapi openapi.yaml @ f85dbe223d40e1a31cba812ab2d755c7e98a92a3 (MIT), "
        "via ../shared/spec; components.schemas subset",
        "components": {"schemas": dict(sorted(wanted.items()))},
    }


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def load_shared() -> dict[str, Any]:
    with SHARED_SPEC.open() as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=yaml.CSafeLoader)
    return spec


if __name__ == "__main__":
    SUBSET.write_text(json.dumps(extract(load_shared()), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SUBSET}")
