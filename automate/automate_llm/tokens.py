"""Counting tokens locally, before a call, to reserve budget.

With ``tiktoken`` installed *and* its encoding already in the local cache (``TIKTOKEN_CACHE_DIR``,
or tiktoken's default cache directory), :func:`count` uses the real ``o200k_base``/``cl100k_base``
tokenizer. It never downloads one: without a cached encoding it uses the documented estimate

    max(ceil(characters / 4), words)

which is close for English prose (about 4 characters per token) and never below the word count for
short or space-heavy text. Code, non-Latin scripts and unusual text can need more tokens than
estimated; budgets settle on the provider's reported usage after each call, so an estimate only
decides the reservation, not what is charged.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import tempfile
from typing import Any

_ENCODINGS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}


def estimate(text: str) -> int:
    if not text:
        return 0
    return max(math.ceil(len(text) / 4), len(text.split()))


def _cache_dir() -> str:
    return (
        os.environ.get("TIKTOKEN_CACHE_DIR")
        or os.environ.get("DATA_GYM_CACHE_DIR")
        or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    )


@functools.cache
def offline_encoding() -> Any:
    """A tiktoken encoding that is installed and cached locally, or ``None``."""
    try:
        import tiktoken  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    for name, url in _ENCODINGS.items():
        cached = os.path.join(_cache_dir(), hashlib.sha1(url.encode()).hexdigest())
        if os.path.exists(cached):
            try:
                return tiktoken.get_encoding(name)
            except Exception:
                continue
    return None


def count(text: str) -> int:
    """Tokens in ``text``: the real tokenizer when available offline, else :func:`estimate`."""
    if not text:
        return 0
    encoding = offline_encoding()
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    return estimate(text)


def count_messages(messages: list, counter: Any = count) -> int:
    """Tokens of a chat's messages, with a few tokens of framing per message."""
    total = 0
    for message in messages:
        content = message.get("content", "") if isinstance(message, dict) else str(message)
        if not isinstance(content, str):
            content = str(content)
        total += int(counter(content)) + 4
    return total + 2
