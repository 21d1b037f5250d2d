"""What the semantic cache compares, and when two questions may share an answer.

What is compared: the last user message (text parts only), or a completion's prompt.
Everything before it (the system prompt and the earlier turns) must match exactly, with the
model and every parameter: it is part of the *scope*, and only entries of the same scope are
searched. So a reworded question can share an answer, but the same question in another
conversation, under another system prompt or with other parameters cannot.

When two questions may share an answer: their vectors' cosine similarity reaches the
threshold, and two guards hold that embeddings alone get wrong (measured with
all-MiniLM-L6-v2, docs/caching.md): the numbers in the two questions are the same ("Convert
10 miles" is not "Convert 12 miles"), and they are not the same words in another order
("Celsius to Fahrenheit" vs "Fahrenheit to Celsius" score 0.995).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

MAX_TEXT: Final = 4000  # characters of the question embedded (longer questions: exact cache only)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_STOPWORDS: Final = frozenset(
    (
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "from",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "do",
        "does",
        "did",
        "i",
        "you",
        "me",
        "my",
        "what",
        "what's",
        "which",
        "who",
        "how",
        "can",
        "could",
        "would",
        "should",
        "please",
        "tell",
        "give",
        "show",
        "into",
        "as",
        "it",
        "this",
        "that",
    )
)


def question(body: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(the text to embed, the body with it taken out: the exact part of the scope), or None
    when the request has no question to compare (then only the exact cache applies)."""
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "user":
            return None
        text = _text(last.get("content"))
        if not text or len(text) > MAX_TEXT:
            return None
        rest = {**body, "messages": [*messages[:-1], {"role": "user", "content": "<compared>"}]}
        return text, rest
    prompt = body.get("prompt")
    if isinstance(prompt, str) and prompt and len(prompt) <= MAX_TEXT:
        return prompt, {**body, "prompt": "<compared>"}
    return None


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) != len(content):
            return None  # images or audio: not compared by text
        return " ".join(p for p in parts if isinstance(p, str)).strip()
    return None


def compatible(a: str, b: str) -> bool:
    """The guards: same numbers, and not the same words reordered."""
    if sorted(_NUMBER.findall(a)) != sorted(_NUMBER.findall(b)):
        return False
    words_a = [w.lower() for w in _WORD.findall(a) if w.lower() not in _STOPWORDS and w.isalnum()]
    words_b = [w.lower() for w in _WORD.findall(b) if w.lower() not in _STOPWORDS and w.isalnum()]
    return not (sorted(words_a) == sorted(words_b) and words_a != words_b)
