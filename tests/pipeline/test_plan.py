"""From config + headers to the routing tree: inheritance, header precedence, who gets which key."""

from __future__ import annotations

from typing import Any

import pytest

from crossroads.config.parse import parse_config
from crossroads.errors import BadRequest, ConfigError
from crossroads.pipeline.headers import parse_options
from crossroads.pipeline.plan import Planner, Route
from crossroads.providers.registry import build_registry
from crossroads.routing.plan import Conditional, Fallback, Leaf, LoadBalance, Node
from crossroads.secret import Secret
from crossroads.settings import CircuitBreakerSettings
from crossroads.upstream.hosts import HostPolicy, HostRefused

PLANNER = Planner(build_registry(), HostPolicy(["localhost", "127.0.0.1"]), CircuitBreakerSettings())


def plan(config: dict[str, Any], **headers: str) -> Node[Route]:
    return PLANNER.from_config(parse_config(config), parse_options(headers))


def leaves(node: Node[Route]) -> list[Leaf[Route]]:
    if isinstance(node, Leaf):
        return [node]
    children = node.children if not isinstance(node, Conditional) else tuple(c for _, c in node.branches)
    return [leaf for child in children for leaf in leaves(child)]


def test_inheritance_down_the_tree() -> None:
    node = plan(
        {
            "strategy": {"mode": "fallback"},
            "override_params": {"temperature": 0, "max_tokens": 10},
            "retry": {"attempts": 2},
            "request_timeout": 3000,
            "custom_host": "http://localhost:9000/v1",
            "aws_region": "us-east-1",
            "targets": [
                {"provider": "openai", "override_params": {"max_tokens": 99, "model": "gpt-4o"}},
                {
                    "strategy": {"mode": "loadbalance"},
                    "retry": {"attempts": 1, "on_status_codes": [503]},
                    "targets": [
                        {"provider": "groq", "request_timeout": 500},
                        {"provider": "mock", "weight": 0.5},
                    ],
                },
            ],
        }
    )
    assert isinstance(node, Fallback)
    first, second, third = leaves(node)
    assert first.path == "config.targets[0]"
    assert first.payload.override_params == {"temperature": 0, "max_tokens": 99, "model": "gpt-4o"}
    assert first.retry.attempts == 2 and first.retry.on_status == frozenset({429, 500, 502, 503, 504, 529})
    assert first.payload.target.request_timeout_ms == 3000
    assert first.payload.target.custom_host == "http://localhost:9000/v1"
    assert first.payload.target.options["aws_region"] == "us-east-1"
    assert second.path == "config.targets[1].targets[0]"
    assert second.retry.attempts == 1 and second.retry.on_status == frozenset({503})  # replaced, not merged
    assert second.payload.target.request_timeout_ms == 500
    assert third.weight == 0.5 and isinstance(node.children[1], LoadBalance)


def test_request_headers_win_for_every_target() -> None:
    node = plan(
        {
            "strategy": {"mode": "fallback"},
            "request_timeout": 3000,
            "forward_headers": ["a"],
            "targets": [{"provider": "openai", "custom_host": "http://localhost:1/v1"}, {"provider": "groq"}],
        },
        **{
            "x-portkey-custom-host": "http://127.0.0.1:2/v1",
            "x-portkey-request-timeout": "700",
            "x-portkey-forward-headers": "b",
        },
    )
    for leaf in leaves(node):
        target = leaf.payload.target
        assert (target.custom_host, target.request_timeout_ms, target.forward_headers) == (
            "http://127.0.0.1:2/v1",
            700,
            ("b",),
        )


def test_client_key_goes_only_to_the_header_provider() -> None:
    node = plan(
        {
            "strategy": {"mode": "fallback"},
            "targets": [
                {"provider": "openai"},
                {"provider": "groq"},
                {},
                {"provider": "groq", "api_key": "gsk"},
            ],
        },
        **{
            "authorization": "Bearer sk-client",
            "x-portkey-provider": "openai",
            "x-portkey-openai-project": "p",
        },
    )
    keys = [leaf.payload.target.api_key for leaf in leaves(node)]
    assert keys == [Secret("sk-client"), None, Secret("sk-client"), Secret("gsk")]
    providers = [leaf.payload.target.provider for leaf in leaves(node)]
    assert providers == ["openai", "groq", "openai", "groq"]
    assert [leaf.payload.target.options.get("openai_project") for leaf in leaves(node)] == [
        "p",
        None,
        "p",
        None,
    ]


def test_single_uses_the_first_target() -> None:
    node = plan({"strategy": {"mode": "single"}, "targets": [{"provider": "groq"}, {"provider": "openai"}]})
    assert isinstance(node, Leaf) and node.path == "config.targets[0]" and node.label == "groq"


def test_retries_are_capped_at_five() -> None:
    node = plan({"provider": "openai", "retry": {"attempts": 50}})
    assert isinstance(node, Leaf) and node.retry.attempts == 5 and node.path == "config"


def test_cb_config_overrides_the_settings_defaults() -> None:
    node = plan(
        {
            "strategy": {
                "mode": "fallback",
                "cb_config": {
                    "failure_threshold": 2,
                    "cooldown_interval": 45000,
                    "failure_status_codes": [429],
                },
            },
            "targets": [{"provider": "openai"}, {"provider": "groq"}],
        }
    )
    for leaf in leaves(node):
        assert leaf.breaker is not None
        assert (leaf.breaker.failure_threshold, leaf.breaker.cooldown_s) == (2, 45.0)
        assert leaf.breaker.counts(429, False) and not leaf.breaker.counts(503, False)
    a, b = leaves(node)
    assert a.health_key != b.health_key


@pytest.mark.parametrize(
    ("config", "headers", "error", "message"),
    [
        ({"provider": "nope"}, {}, BadRequest, "Invalid provider passed: 'nope'"),
        ({"retry": {"attempts": 1}}, {}, BadRequest, "names no provider"),
        (
            {
                "strategy": {"mode": "fallback"},
                "targets": [{"provider": "openai"}, {"provider": "groq", "custom_host": "http://10.0.0.1"}],
            },
            {},
            HostRefused,
            "targets[1].custom_host: Invalid custom host",
        ),
        (
            {"provider": "openai"},
            {"x-portkey-custom-host": "http://169.254.169.254"},
            HostRefused,
            "x-portkey-custom-host: Invalid custom host",
        ),
        (
            {"provider": "openai", "input_guardrails": ["pg-1"]},
            {},
            ConfigError,
            "input_guardrails: guardrails and hooks",
        ),
    ],
)
def test_refusals_name_the_target(
    config: dict[str, Any], headers: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        plan(config, **headers)
    assert message in str(caught.value)
