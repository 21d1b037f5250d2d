"""Golden translation cases: one folder per case, one test over all of them.

A folder holds `request.json` ({"provider", "endpoint", "body", "options", "strict"}), and any of:
`upstream_request.json` (the body the provider must receive), `upstream_response.json` /
`.sse` / `.bin` / `upstream_error.json` (what the provider answers), and the expected
`response.json`, `chunks.jsonl` (one SSE event per line: {"event", "data"}) or `error.json`.
Streams are fed whole and cut into 7-byte pieces: both must give the same output.
A bug fix adds a folder. `UPDATE_GOLDEN=1 pytest tests/providers/test_golden.py` rewrites the
expected files from the current output, for review in the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from crossroads.codecs.sse import SSEDecoder
from crossroads.providers.base import Call, StreamInterrupted, StreamTranslator, Target
from crossroads.providers.registry import build_registry
from crossroads.secret import Secret

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p for p in GOLDEN.glob("*/*") if (p / "request.json").exists())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
REGISTRY = build_registry()
PATHS = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "messages": "/messages",
    "messages.count_tokens": "/messages/count_tokens",
}


def load(case: Path) -> tuple[Call, Target, str]:
    spec = json.loads((case / "request.json").read_text())
    body = spec["body"]
    call = Call(
        endpoint=spec["endpoint"],
        method="POST",
        path=PATHS[spec["endpoint"]],
        query="",
        body=msgspec.json.encode(body),
        json=body,
        content_type="application/json",
        stream=bool(body.get("stream")),
        headers=spec.get("headers", {}),
        request_id="req-golden-0001",
        trace_id="trace",
        metadata={},
        created=1_800_000_000,
    )
    options = {
        k: Secret(v) if "secret" in k or "key_id" in k or "token" in k else v
        for k, v in spec.get("options", {}).items()
    }
    target = Target(
        provider=spec["provider"],
        api_key=Secret("sk-golden-key"),
        options=options,
        strict_open_ai_compliance=spec.get("strict", True),
    )
    return call, target, spec["provider"]


def check(path: Path, actual: Any) -> None:
    if UPDATE:
        if path.suffix == ".jsonl":
            path.write_text("".join(json.dumps(line) + "\n" for line in actual))
        else:
            path.write_text(json.dumps(actual, indent=2) + "\n")
        return
    assert path.exists(), f"{path} is missing (run with UPDATE_GOLDEN=1 and review)"
    expected = (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if path.suffix == ".jsonl"
        else json.loads(path.read_text())
    )
    assert actual == expected


def events(raw: bytes) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    out = []
    for event in decoder.feed(raw) + decoder.close():
        data: Any = event.data.decode()
        if data != "[DONE]":
            data = json.loads(data)
        out.append({"event": event.name.decode() if event.name else None, "data": data})
    return out


def run_stream(translator: StreamTranslator, pieces: list[bytes]) -> tuple[bytes, dict[str, Any] | None]:
    out = b""
    try:
        for piece in pieces:
            out += translator.feed(piece)
        out += translator.close()
    except StreamInterrupted as exc:
        out += exc.partial
        return out, {"status": exc.error.http_status, "body": json.loads(exc.error.render())}
    return out, None


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden(case: Path) -> None:
    call, target, provider = load(case)
    adapter = REGISTRY.for_endpoint(provider, call.endpoint)
    request = adapter.build(call, target)
    if (case / "upstream_request.json").exists() or UPDATE:
        check(case / "upstream_request.json", json.loads(request.body))
    assert "sk-golden-key" not in request.body.decode()
    if (case / "upstream_response.json").exists():
        body = (case / "upstream_response.json").read_bytes()
        reply = adapter.parse(call, target, 200, {"x-amzn-requestid": "0000-aaaa"}, body)
        check(case / "response.json", json.loads(reply.body))
    for suffix in (".sse", ".bin"):
        stream = case / f"upstream_response{suffix}"
        if not stream.exists():
            continue
        raw = stream.read_bytes()
        whole, error = run_stream(adapter.translator(call, target), [raw])
        pieces, piece_error = run_stream(
            adapter.translator(call, target), [raw[i : i + 7] for i in range(0, len(raw), 7)]
        )
        assert (events(pieces), piece_error) == (events(whole), error)
        check(case / "chunks.jsonl", events(whole))
        if error is not None or (case / "error.json").exists():
            check(case / "error.json", error)
    if (case / "upstream_error.json").exists():
        recorded = json.loads((case / "upstream_error.json").read_text())
        text = recorded["body"] if isinstance(recorded["body"], str) else json.dumps(recorded["body"])
        err = adapter.error(target, recorded["status"], recorded.get("headers", {}), text.encode())
        check(
            case / "error.json", {"status": err.http_status, "body": err.body(), "retryable": err.retryable}
        )
