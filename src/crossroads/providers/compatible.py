"""OpenAI-compatible providers, one row each. Adding one is a five-line diff.

Base URLs end in the provider's version segment, so `/v1/<path>` on the gateway maps to
`<base_url>/<path>` for every route, the proxy route included. `custom_host_prefix` is what
Portkey appends after a custom host for that provider (Portkey users point at the server
root for these), so configs written for Portkey reach the same URL here.
Sources: Portkey gateway 1.15.2 `src/providers/<slug>/api.ts`, the providers' own docs, and
`../shared/reference/provider-wire-formats.md` §7.
"""

from __future__ import annotations

from typing import Final

from crossroads.providers.base import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    IMAGES,
    MODELS,
    PROXY,
    SPEECH,
    TRANSCRIPTIONS,
    TRANSLATIONS,
)
from crossroads.providers.profile import CHAT_ONLY, EVERYTHING, TEXT, Profile

_OPENAI_HEADERS: Final = {
    "openai_organization": "OpenAI-Organization",
    "openai_project": "OpenAI-Project",
    "openai_beta": "OpenAI-Beta",
}

TABLE: Final[tuple[Profile, ...]] = (
    Profile(
        slug="openai",
        base_url="https://api.openai.com/v1",
        endpoints=EVERYTHING,
        option_headers=_OPENAI_HEADERS,
        docs="https://platform.openai.com/docs/api-reference",
    ),
    Profile(
        slug="groq",
        base_url="https://api.groq.com/openai/v1",
        endpoints=frozenset({CHAT, SPEECH, TRANSCRIPTIONS, TRANSLATIONS, MODELS, PROXY}),
        docs="https://console.groq.com/docs/openai",
    ),
    Profile(
        slug="together-ai",
        base_url="https://api.together.xyz/v1",
        custom_host_prefix="/v1",
        endpoints=TEXT | {IMAGES},
        docs="https://docs.together.ai/docs/openai-api-compatibility",
    ),
    Profile(
        slug="fireworks-ai",
        base_url="https://api.fireworks.ai/inference/v1",
        docs="https://docs.fireworks.ai/tools-sdks/openai-compatibility",
    ),
    Profile(
        slug="deepseek",
        base_url="https://api.deepseek.com/v1",
        custom_host_prefix="/v1",
        endpoints=CHAT_ONLY,
        # reasoning_content must not be sent back in later turns (DeepSeek answers 400).
        strip_message_fields=("reasoning_content",),
        docs="https://api-docs.deepseek.com/",
    ),
    Profile(
        slug="mistral-ai",
        base_url="https://api.mistral.ai/v1",
        endpoints=frozenset({CHAT, EMBEDDINGS, MODELS, PROXY}),
        rename_params={"seed": "random_seed"},
        tool_call_id_alnum9=True,
        stream_tool_call_index=True,
        docs="https://docs.mistral.ai/api/",
    ),
    Profile(
        slug="openrouter",
        base_url="https://openrouter.ai/api/v1",
        custom_host_prefix="/v1",
        docs="https://openrouter.ai/docs/api-reference/overview",
    ),
    Profile(
        slug="perplexity-ai",
        base_url="https://api.perplexity.ai",
        endpoints=frozenset({CHAT, PROXY}),
        docs="https://docs.perplexity.ai/api-reference/chat-completions-post",
    ),
    Profile(
        slug="x-ai",
        base_url="https://api.x.ai/v1",
        endpoints=TEXT | {IMAGES},
        docs="https://docs.x.ai/docs/api-reference",
    ),
    Profile(
        slug="cerebras",
        base_url="https://api.cerebras.ai/v1",
        endpoints=frozenset({CHAT, COMPLETIONS, MODELS, PROXY}),
        docs="https://inference-docs.cerebras.ai/resources/openai",
    ),
    Profile(
        slug="deepinfra",
        base_url="https://api.deepinfra.com/v1/openai",
        endpoints=TEXT | {IMAGES},
        docs="https://deepinfra.com/docs/openai_api",
    ),
    Profile(
        slug="ollama",
        base_url="http://localhost:11434/v1",
        custom_host_prefix="/v1",
        auth_header="",
        docs="https://github.com/ollama/ollama/blob/main/docs/openai.md",
    ),
    Profile(
        slug="nebius",
        base_url="https://api.studio.nebius.ai/v1",
        docs="https://docs.nebius.com/studio/inference/api",
    ),
    Profile(
        slug="novita-ai",
        base_url="https://api.novita.ai/v3/openai",
        custom_host_prefix="/v1",
        docs="https://novita.ai/docs/guides/llm-api",
    ),
    Profile(
        slug="sambanova",
        base_url="https://api.sambanova.ai/v1",
        custom_host_prefix="/v1",
        endpoints=frozenset({CHAT, EMBEDDINGS, MODELS, PROXY}),
        docs="https://docs.sambanova.ai/cloud/docs/capabilities/openai-compatibility",
    ),
    Profile(
        slug="hyperbolic",
        base_url="https://api.hyperbolic.xyz/v1",
        custom_host_prefix="/v1",
        endpoints=frozenset({CHAT, COMPLETIONS, MODELS, PROXY}),
        docs="https://docs.hyperbolic.xyz/",
    ),
    Profile(
        slug="lambda",
        base_url="https://api.lambda.ai/v1",
        endpoints=frozenset({CHAT, COMPLETIONS, MODELS, PROXY}),
        docs="https://docs.lambda.ai/",
    ),
    Profile(
        slug="moonshot",
        base_url="https://api.moonshot.ai/v1",
        custom_host_prefix="/v1",
        endpoints=CHAT_ONLY,
        docs="https://platform.moonshot.ai/docs/api/chat",
    ),
    Profile(
        slug="dashscope",
        base_url="https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        docs="https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope",
    ),
    Profile(
        slug="zhipu",
        base_url="https://open.bigmodel.cn/api/paas/v4",
        endpoints=frozenset({CHAT, EMBEDDINGS, IMAGES, PROXY}),
        docs="https://open.bigmodel.cn/dev/api",
    ),
    Profile(
        slug="huggingface",
        base_url="https://router.huggingface.co/v1",
        custom_host_prefix="/v1",
        endpoints=frozenset({CHAT, COMPLETIONS, MODELS, PROXY}),
        docs="https://huggingface.co/docs/inference-providers/index",
    ),
    # Any self-hosted OpenAI-compatible server (vLLM, TGI, LocalAI, llama.cpp, SGLang):
    # there is no public URL, the caller names the server with x-portkey-custom-host.
    Profile(
        slug="vllm",
        base_url=None,
        endpoints=TEXT | {TRANSCRIPTIONS},
        docs="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
    ),
)
