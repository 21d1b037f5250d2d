"""Turn merging, text parts and tool arguments, shared by the native translators."""

from __future__ import annotations

import pytest

from crossroads.errors import BadRequest
from crossroads.providers.gemini.request import chat_to_gemini, embeddings_to_gemini
from crossroads.providers.turns import append_turn, arguments_object, texts


def test_same_role_turns_merge_and_results_open_their_turn() -> None:
    turns: list[dict[str, object]] = []
    append_turn(turns, "user", [{"text": "a"}])
    append_turn(turns, "user", [])  # nothing: no empty turn
    append_turn(turns, "model", [{"call": 1}], key="content")
    append_turn(turns, "user", [{"text": "b"}])
    append_turn(turns, "user", [{"result": 1}], is_result=lambda item: "result" in item)
    append_turn(turns, "user", [{"result": 2}], is_result=lambda item: "result" in item)
    assert turns == [
        {"role": "user", "content": [{"text": "a"}]},
        {"role": "model", "content": [{"call": 1}]},
        {"role": "user", "content": [{"result": 1}, {"result": 2}, {"text": "b"}]},
    ]


def test_texts_and_arguments() -> None:
    assert texts(
        [{"type": "text", "text": "x"}, {"type": "image_url"}, {"type": "text", "text": "y"}], 0
    ) == ["x", "y"]
    assert texts(None, 0) == [] and texts("z", 0) == ["z"]
    with pytest.raises(BadRequest, match=r"messages\[3\].content"):
        texts(42, 3)
    assert arguments_object('{"a": 1}', 0) == {"a": 1}
    assert arguments_object("[1]", 0) == {"value": [1]}
    assert arguments_object("", 0) == {}
    with pytest.raises(BadRequest, match=r"messages\[2\].tool_calls: arguments are not valid JSON"):
        arguments_object("{oops", 2)


def test_gemini_refusals_and_json_schema() -> None:
    user = [{"role": "user", "content": "hi"}]
    with pytest.raises(BadRequest, match="n > 1 cannot be streamed"):
        chat_to_gemini({"messages": user, "n": 2}, stream=True)
    assert chat_to_gemini({"messages": user, "n": 2}, stream=False)["generationConfig"] == {
        "candidateCount": 2
    }
    with pytest.raises(BadRequest, match="at least one user or assistant"):
        chat_to_gemini({"messages": [{"role": "system", "content": "only"}]}, stream=False)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    body = chat_to_gemini(
        {
            "messages": user,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
            "reasoning_effort": "low",
            "generationConfig": {"topK": 3},
        },
        stream=False,
    )
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
        "thinkingConfig": {"thinkingBudget": 1024},
        "topK": 3,
    }
    with pytest.raises(BadRequest, match="token arrays"):
        embeddings_to_gemini({"input": [[1, 2, 3]]}, "text-embedding-004")
