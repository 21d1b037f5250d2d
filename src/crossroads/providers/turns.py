"""Reading OpenAI chat messages for the native translators (Anthropic, Bedrock, Gemini):
merging turns, the text of a content, a tool call's arguments as an object. Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from crossroads.errors import BadRequest

JSON = dict[str, Any]


def append_turn(
    turns: list[JSON],
    role: str,
    items: list[JSON],
    *,
    key: str = "content",
    is_result: Callable[[JSON], bool] | None = None,
) -> None:
    """Add `items` as a turn, merged into the previous turn when it has the same role (the
    native APIs want roles to alternate). Tool results (`is_result` given) must open their
    turn, so they go before anything already there that is not a result."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        previous = turns[-1][key]
        if is_result is not None:
            at = next((i for i, item in enumerate(previous) if not is_result(item)), len(previous))
            previous[at:at] = items
        else:
            previous.extend(items)
    else:
        turns.append({"role": role, key: items})


def texts(content: Any, index: int) -> list[str]:
    """The text parts of a message's content (a string, or a list of parts), in order."""
    if isinstance(content, str):
        return [content]
    if content is None:
        return []
    if isinstance(content, list):
        out = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if not all(isinstance(text, str) for text in out):
            raise BadRequest(
                f"messages[{index}].content: a text part's text must be a string", param="messages"
            )
        return out
    raise BadRequest(f"messages[{index}].content must be a string or a list of parts", param="messages")


def arguments_object(arguments: Any, index: int) -> JSON:
    """A tool call's `arguments` (a JSON string) as an object; invalid JSON is a 400."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = msgspec.json.decode(arguments or "{}")
    except (msgspec.DecodeError, TypeError):
        raise BadRequest(
            f"messages[{index}].tool_calls: arguments are not valid JSON", param="messages"
        ) from None
    return value if isinstance(value, dict) else {"value": value}
