"""Reading Portkey configs: every field, both spellings, errors that say where and what."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossroads.config.parse import parse_config
from crossroads.config.render import to_dict, tree
from crossroads.config.schema import ConfigNode
from crossroads.errors import ConfigError
from crossroads.secret import Secret

FULL = {
    "strategy": {
        "mode": "fallback",
        "on_status_codes": [429, 503],
        "cb_config": {"failure_threshold": 3, "cooldown_interval": 60000},
    },
    "retry": {"attempts": 2, "on_status_codes": [429], "use_retry_after_header": True},
    "request_timeout": 5000,
    "cache": {"mode": "semantic", "max_age": 60},
    "custom_host": "http://localhost:8000/v1",
    "forward_headers": ["x-user"],
    "override_params": {"temperature": 0.1, "max_tokens": 5},
    "strict_open_ai_compliance": False,
    "targets": [
        {"name": "primary", "provider": "openai", "api_key": "sk-1", "openai_project": "p", "weight": 2},
        {
            "name": "backup",
            "provider": "bedrock",
            "aws_access_key_id": "AK",
            "aws_secret_access_key": "SK",
            "aws_region": "us-east-1",
        },
        {
            "provider": "vertex-ai",
            "vertex_project_id": "proj",
            "vertex_region": "us-central1",
            "vertex_service_account_json": {"type": "service_account"},
        },
        {
            "provider": "azure-openai",
            "azure_resource_name": "r",
            "azure_deployment_id": "d",
            "azure_api_version": "2024-10-21",
        },
        {
            "strategy": {
                "mode": "conditional",
                "conditions": [{"query": {"metadata.plan": "paid"}, "then": "x"}],
                "default": "y",
            },
            "targets": [{"name": "x", "provider": "groq"}, {"name": "y", "provider": "mock"}],
        },
    ],
}


def test_every_documented_field_parses() -> None:
    node = parse_config(json.dumps(FULL))
    assert node.strategy is not None and node.strategy.cb_config is not None
    assert node.strategy.cb_config.cooldown_interval == 60000
    assert node.targets is not None and node.targets[0].api_key == Secret("sk-1")
    assert node.targets[1].options == {
        "aws_access_key_id": "AK",
        "aws_secret_access_key": "SK",
        "aws_region": "us-east-1",
    }
    assert node.targets[2].options["vertex_service_account_json"] == {"type": "service_account"}
    assert node.cache is not None and node.cache.max_age == 60


def test_camel_case_keys_without_renaming_user_data() -> None:
    camel = {
        "strategy": {"mode": "fallback", "onStatusCodes": [503], "cbConfig": {"failureThreshold": 2}},
        "overrideParams": {"max_tokens": 5, "topK": 3},
        "retry": {"attempts": 1, "useRetryAfterHeader": False},
        "requestTimeout": 100,
        "strictOpenAiCompliance": True,
        "targets": [
            {"provider": "openai", "apiKey": "k", "openaiProject": "p", "customHost": "http://x.com/v1"}
        ],
    }
    node = parse_config(camel)
    assert node.override_params == {"max_tokens": 5, "topK": 3}
    assert node.strategy is not None and node.strategy.on_status_codes == (503,)
    assert node.strategy.cb_config is not None and node.strategy.cb_config.failure_threshold == 2
    assert node.retry is not None and node.retry.use_retry_after_header is False
    assert node.targets is not None and node.targets[0].custom_host == "http://x.com/v1"
    assert node.targets[0].options == {"openai_project": "p"}


def test_shorthands() -> None:
    node = parse_config({"cache": "simple", "forward_headers": "a, b", "provider": "openai"})
    assert node.cache is not None and node.cache.mode == "simple"
    assert node.forward_headers == ("a", "b")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{nope", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ({"options": [{"provider": "openai"}]}, "This version of config is not supported"),
        (
            {"strategy": {"mode": "fallback"}, "targets": [{"provider": "a"}, {"retyr": {"attempts": 1}}]},
            "unknown key `retyr` at `targets[1]` (valid keys: strategy, targets",
        ),
        (
            {"strategy": {"mode": "fallback"}, "targets": [{"provider": "a"}, {"retry": {"attempts": "x"}}]},
            "`targets[1].retry.attempts`: expected `int`, got `str`",
        ),
        (
            {"strategy": {"mode": "fallback"}, "targets": [{"retry": {"attemps": 1}}]},
            "unknown key `attemps` at `targets[0].retry` (valid keys: attempts, on_status_codes",
        ),
        (
            {"strategy": {"mode": "fallback"}, "targets": [{"retry": {}}]},
            "`targets[0].retry.attempts` is required",
        ),
        ({"strategy": {"mode": "roundrobin"}, "targets": [{}]}, "must be one of: single, fallback"),
        (
            {"strategy": {"mode": "fallback", "onStatusCodes": [999]}, "targets": [{}]},
            "`strategy.on_status_codes[0]`: expected `int` <= 599",
        ),
        ({"strategy": {"mode": "fallback"}}, "needs `targets`"),
        ({"targets": [{"provider": "a"}]}, "needs a `strategy`"),
        ({"strategy": {"mode": "fallback"}, "targets": [{}], "provider": "openai"}, "has both `targets`"),
        ({"strategy": {"mode": "conditional"}, "targets": [{"name": "a"}]}, "needs at least one condition"),
        (
            {
                "strategy": {
                    "mode": "conditional",
                    "conditions": [{"query": {"metadata.x": 1}, "then": "b"}],
                },
                "targets": [{"name": "a"}],
            },
            "`strategy.conditions[0].then`: no target is named 'b'",
        ),
        (
            {
                "strategy": {
                    "mode": "conditional",
                    "conditions": [{"query": {"metadata.x": {"$bad": 1}}, "then": "a"}],
                },
                "targets": [{"name": "a"}],
            },
            "Unsupported operator used in the query router: $bad",
        ),
        (
            {
                "strategy": {
                    "mode": "conditional",
                    "conditions": [{"query": {"metadata.x": 1}, "then": "a"}],
                    "default": "z",
                },
                "targets": [{"name": "a"}],
            },
            "`strategy.default`: no target is named 'z'",
        ),
        (
            {"strategy": {"mode": "loadbalance"}, "targets": [{"weight": 0}, {"weight": 0}]},
            "every target has weight 0",
        ),
        (
            {"strategy": {"mode": "fallback"}, "targets": [{"weight": -1}]},
            "`targets[0].weight`: expected `float` >= 0",
        ),
        ({"overrideParams": {}, "override_params": {}}, "given twice"),
        ({"forward_headers": ["x-portkey-api-key"]}, "cannot forward gateway headers"),
        ({"cache": {"mode": "fuzzy"}}, "must be one of: simple, semantic"),
        ({"api_key": 5}, "`api_key`: expected a string"),
    ],
)
def test_errors_say_where_and_what(config: str | dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config)
    assert message in caught.value.message, caught.value.message
    assert caught.value.http_status == 400 and caught.value.code == "invalid_config"


def test_tree_shows_strategies_targets_and_inherited_settings() -> None:
    text = tree(parse_config(FULL))
    assert "config: fallback (moves on after status 429, 503)" in text
    assert (
        "config.targets[0] [primary] weight=2: openai, api_key ***, retry 2x on 429, timeout 5000ms" in text
    )
    assert 'override_params {"temperature":0.1,"max_tokens":5}' in text
    assert 'config.targets[4]: conditional (if {"metadata.plan":"paid"} -> x; else -> y)' in text
    assert "sk-1" not in text and "SK" not in text.replace("SKIP", "")


def test_json_output_masks_secrets() -> None:
    data = to_dict(parse_config(FULL))
    dumped = json.dumps(data)
    assert "sk-1" not in dumped and '"SK"' not in dumped and '"type": "service_account"' not in dumped
    assert data["targets"][1]["aws_region"] == "us-east-1"


# -- round trip ------------------------------------------------------------------------------

providers = st.sampled_from(["openai", "groq", "mock", "anthropic"])
leaf_strategy = st.fixed_dictionaries(
    {"provider": providers},
    optional={
        "api_key": st.text(min_size=1, max_size=8),
        "weight": st.floats(0.1, 5, allow_nan=False),
        "retry": st.fixed_dictionaries(
            {"attempts": st.integers(0, 5)},
            optional={"on_status_codes": st.lists(st.integers(400, 599), max_size=3)},
        ),
        "request_timeout": st.integers(1, 10_000),
        "override_params": st.dictionaries(
            st.sampled_from(["model", "temperature", "maxTokens"]), st.integers(0, 9), max_size=2
        ),
        "aws_region": st.sampled_from(["us-east-1", "eu-west-1"]),
    },
)


def trees(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "strategy": st.fixed_dictionaries(
                {"mode": st.sampled_from(["fallback", "loadbalance", "single"])}
            ),
            "targets": st.lists(children, min_size=1, max_size=3),
        }
    )


configs = st.recursive(leaf_strategy, trees, max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(configs)
def test_parse_print_parse_round_trips(config: dict[str, Any]) -> None:
    node = parse_config(config)
    printed = to_dict(node, reveal=True)
    assert parse_config(json.dumps(printed)) == node
    assert isinstance(parse_config(printed), ConfigNode)
