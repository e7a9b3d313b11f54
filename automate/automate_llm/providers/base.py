"""The LLM provider contract: ``LLMProvider``.

Register a provider under the entry-point group ``django_automate.llm.providers``. ``chat`` and
``count_tokens`` are the documented pair; add ``async def achat`` (or write ``async def chat``) for
a native async provider, otherwise ``chat`` runs in the plugin thread pool.

``chat`` returns the answer's text. When the server reports token usage, call
``self.record_usage(input=..., output=..., model=...)`` before returning: the platform records it
per step and charges it to the token budgets. ``count_tokens`` is a local, offline estimate used
to reserve budget before the call.

Errors are :class:`LLMError` subclasses: ``LLMAuthError``, ``LLMRateLimitError`` (with
``retry_after``), ``LLMTimeoutError``, ``LLMContextTooLongError``, ``LLMInvalidOptionsError``.
Anything else escaping ``achat`` is wrapped in a retryable ``LLMError``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from automate_core.exceptions import (
    LLMAuthError,
    LLMContextTooLongError,
    LLMError,
    LLMInvalidOptionsError,
    LLMRateLimitError,
    LLMTimeoutError,
)
from automate_core.plugins import dispatch
from automate_llm import usage

__all__ = [
    "LLMAuthError",
    "LLMContextTooLongError",
    "LLMError",
    "LLMInvalidOptionsError",
    "LLMProvider",
    "LLMRateLimitError",
    "LLMTimeoutError",
]


def wrap_error(provider: Any, exc: Exception) -> LLMError:
    code = getattr(provider, "code", type(provider).__name__)
    if isinstance(exc, TimeoutError):
        return LLMTimeoutError(f"{code}: timed out.")
    return LLMError(f"{code}: unexpected {type(exc).__name__}: {exc}", retryable=True)


class LLMProvider(ABC):
    code: str = ""
    name: str = ""
    #: How the platform calls this class: "native", "coroutine" or "sync" (set per class).
    plugin_mode: ClassVar[dispatch.Mode] = "sync"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dispatch.prepare_class(cls, LLMProvider, "achat", "chat", LLMError, wrap_error)

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
        try:
            text: str = await dispatch.call(self.plugin_mode, self.chat, messages, options)
        except LLMError:
            raise
        except Exception as exc:
            raise wrap_error(self, exc) from exc
        return text

    def record_usage(
        self, *, input: int | None = None, output: int | None = None, model: str | None = None
    ) -> None:
        """Report the token usage the server returned for the current call (see the module doc)."""
        usage.record(input=input, output=output, model=model)
