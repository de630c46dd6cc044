"""LM Studio and other OpenAI-compatible servers (vLLM, Ollama, llama.cpp)."""

from __future__ import annotations

from providers.adapters.openai import OpenAIAdapter


class OpenAICompatibleAdapter(OpenAIAdapter):
    kind = "openai_compatible"

    def missing_key(self) -> str:
        # Local servers usually ignore the key, but the SDK insists on one.
        return "not-needed"
