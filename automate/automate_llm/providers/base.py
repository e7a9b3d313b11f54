"""The LLM provider contract: ``LLMProvider``.

Register a provider under the entry-point group ``django_automate.llm.providers``. ``chat`` and
``count_tokens`` are the documented pair; add ``async def achat`` (or write ``async def chat``) for
a native async provider, otherwise ``chat`` runs in the plugin thread pool.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from automate_core.exceptions import LLMError
from automate_core.plugins.offload import is_async_callable, run_sync

__all__ = ["LLMError", "LLMProvider"]


class LLMProvider(ABC):
    code: str = ""
    name: str = ""

    @abstractmethod
    def chat(self, messages: list, options: dict) -> str:
        """
        Synchronous chat completion.
        """

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Estimate token usage."""

    async def achat(self, messages: list, options: dict) -> str:
        """Async entry point used by the platform."""
        if is_async_callable(self.chat):
            return await self.chat(messages, options)  # type: ignore[no-any-return, misc]
        return await run_sync(self.chat, messages, options)
