"""Cache keys: equal requests written differently share one; any change that can change the
answer, or who asks, gives another."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crossroads.cache.key import DEFAULTS, IGNORED, cache_key, canonical_body, tenant_of
from crossroads.secret import Secret

BASE: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
    "temperature": 0.2,
}


def key(body: dict[str, Any], **overrides: Any) -> str:
    args: dict[str, Any] = {
        "endpoint": "chat",
        "provider": "openai",
        "custom_host": None,
        "options": {},
        "tenant": "key:k1",
        "namespace": None,
        "body": body,
    }
    args.update(overrides)
    return cache_key(**args)


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
bodies = st.dictionaries(
    st.sampled_from(["model", "messages", "tools", "seed", "stop", "response_format", "x", "max_tokens"]),
    json_values,
    min_size=1,
)


@given(bodies, st.integers(0, 2**32))
@settings(max_examples=200)
def test_key_order_and_whitespace_never_matter(body: dict[str, Any], seed: int) -> None:
    reordered = json.loads(json.dumps(shuffled(body, random.Random(seed)), indent=2))
    assert key(reordered) == key(body)


@given(bodies, st.sampled_from(sorted(IGNORED)), json_values)
@settings(max_examples=100)
def test_fields_that_do_not_change_the_answer_are_left_out(
    body: dict[str, Any], field: str, value: Any
) -> None:
    assert key({**body, field: value}) == key({k: v for k, v in body.items() if k != field})


@given(
    bodies, st.sampled_from(["model", "seed", "max_tokens", "stop", "tools"]), st.text(min_size=1, max_size=6)
)
@settings(max_examples=200)
def test_a_changed_parameter_changes_the_key(body: dict[str, Any], field: str, value: str) -> None:
    changed = {**body, field: ["changed", value]}
    assert canonical_body(changed) != canonical_body(body) or body.get(field) == ["changed", value]
    if canonical_body(changed) != canonical_body(body):
        assert key(changed) != key(body)


def test_defaults_spelled_out_and_numbers_spelled_differently_match() -> None:
    spelled = {**BASE, **DEFAULTS, "temperature": 0.2, "max_tokens": 100.0}
    assert key(spelled) == key({**BASE, "max_tokens": 100})
    assert key({**BASE, "temperature": 1.0}) == key({k: v for k, v in BASE.items() if k != "temperature"})
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert key({**BASE, "messages": parts}) == key({**BASE, "messages": [{"role": "user", "content": "Hi"}]})


def test_everything_that_can_change_the_answer_or_the_tenant_changes_the_key() -> None:
    base = key(BASE)
    variants = [
        key({**BASE, "model": "gpt-4o"}),
        key({**BASE, "temperature": 0.3}),
        key({**BASE, "n": 2}),
        key({**BASE, "logprobs": True}),
        key({**BASE, "messages": BASE["messages"][1:]}),  # the system prompt counts
        key({**BASE, "messages": [*BASE["messages"][:1], {"role": "user", "content": "Hi!"}]}),
        key(BASE, endpoint="completions"),
        key(BASE, provider="groq"),
        key(BASE, custom_host="http://127.0.0.1:9000/v1"),
        key(BASE, options={"aws_region": "eu-west-1"}),
        key(BASE, tenant="key:k2"),
        key(BASE, namespace="team-a"),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_secrets_only_as_fingerprints_and_tenants_apart() -> None:
    secret = "sk-live-" + "x" * 30
    assert tenant_of(principal="open", virtual_key=None, credentials=[Secret(secret)]) != tenant_of(
        principal="open", virtual_key=None, credentials=[Secret(secret + "y")]
    )
    tenant = tenant_of(principal="open", virtual_key=None, credentials=[Secret(secret)])
    assert secret not in tenant
    # A secret option (e.g. an AWS secret key) never enters the description in the clear.
    assert key(BASE, options={"aws_secret_access_key": Secret(secret)}) == key(BASE)
    with_key = tenant_of(principal="k1", virtual_key="vk1", credentials=[Secret(secret)])
    assert with_key == "key:k1|vk:vk1"
    # Callers bringing their own provider keys through one gateway key are kept apart.
    byok = tenant_of(principal="k1", virtual_key=None, credentials=[Secret(secret)])
    assert byok != tenant_of(principal="k1", virtual_key=None, credentials=[Secret(secret + "y")])
    assert byok.startswith("key:k1|cred:") and secret not in byok
