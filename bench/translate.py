"""Per-chunk cost of stream translation, in process: `python -m bench.translate`.

Feeds each bench upstream body (the bytes nginx serves in `make bench`) to the provider's
stream translator, as one read, many times, and divides by the chunks the client gets.
"""

from __future__ import annotations

import json
import time

from bench.scenarios import ANTHROPIC_SSE, BEDROCK_STREAM, CHAT_REQUEST, GEMINI_SSE, SSE_RESPONSE
from crossroads.providers.base import CHAT, Call, Target
from crossroads.providers.registry import build_registry


def _call() -> Call:
    body = {**CHAT_REQUEST, "stream": True}
    return Call(
        endpoint=CHAT,
        method="POST",
        path="/chat/completions",
        query="",
        body=json.dumps(body).encode(),
        json=body,
        content_type="application/json",
        stream=True,
        headers={},
        request_id="r",
        trace_id="t",
        metadata={},
    )


def measure(provider: str, upstream: bytes, rounds: int = 2000) -> tuple[float, int]:
    adapter = build_registry().for_endpoint(provider, CHAT)
    call = _call()
    target = Target(provider=provider)
    out = adapter.translator(call, target).feed(upstream)
    chunks = out.count(b"data: ") + 1  # + [DONE] from close()
    start = time.perf_counter()
    for _ in range(rounds):
        translator = adapter.translator(call, target)
        translator.feed(upstream)
        translator.close()
    return (time.perf_counter() - start) / rounds / chunks * 1e6, chunks


def main() -> None:
    for name, provider, body in (
        ("OpenAI passthrough", "openai", SSE_RESPONSE.encode()),
        ("Anthropic SSE", "anthropic", ANTHROPIC_SSE.encode()),
        ("Bedrock event stream", "bedrock", BEDROCK_STREAM),
        ("Gemini SSE", "google", GEMINI_SSE.encode()),
    ):
        best = min(measure(provider, body)[0] for _ in range(5))
        _, chunks = measure(provider, body, rounds=1)
        print(f"{name:22s} {best:6.2f} us per chunk ({chunks} chunks out)")


if __name__ == "__main__":
    main()
