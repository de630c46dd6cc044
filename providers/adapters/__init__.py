"""Provider kinds and the adapter class that speaks each one.

Adding a provider is one module in this package plus one line here.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

ADAPTERS: dict[str, tuple[str, str]] = {
    "openai": ("OpenAI", "providers.adapters.openai.OpenAIAdapter"),
    "anthropic": ("Anthropic", "providers.adapters.anthropic.AnthropicAdapter"),
    "openai_compatible": (
        "OpenAI-compatible (LM Studio, vLLM, Ollama…)",
        "providers.adapters.lmstudio.OpenAICompatibleAdapter",
    ),
}


def adapter_class(kind: str):
    return import_string(ADAPTERS[kind][1])
