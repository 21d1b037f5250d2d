"""Redaction: a secret is scrubbed whole and in any run of 8 or more of its characters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crossroads.secret import Secret, redact

KEY = Secret("sk-proj-abcdefghijklmnopqrstuvwxyz012345")


def test_whole_partial_and_masked_echoes() -> None:
    assert redact("bad key sk-proj-abcdefghijklmnopqrstuvwxyz012345!", KEY) == "bad key ***!"
    assert redact("was sk-proj-abcdefgh...", KEY) == "was ***..."
    # OpenAI's own masking keeps 4 characters: nothing usable is left to scrub.
    assert redact("provided: sk-proj-****2345", KEY) == "provided: *******2345"
    assert redact("no secret in here", KEY) == "no secret in here"
    assert redact("short keys only whole: abc1 x", Secret("abc1")) == "short keys only whole: *** x"
    assert redact("nothing to do", None) == "nothing to do"


@given(
    prefix=st.text(max_size=40),
    suffix=st.text(max_size=40),
    start=st.integers(0, 30),
    size=st.integers(8, 40),
)
def test_no_run_of_eight_survives(prefix: str, suffix: str, start: int, size: int) -> None:
    value = KEY.reveal()
    piece = value[start : start + size]
    out = redact(prefix + piece + suffix, KEY)
    assert not any(value[i : i + 8] in out for i in range(len(value) - 7))
