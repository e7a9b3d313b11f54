"""``echo``: answers with the last user message. For tests and demos; calls nothing."""

from __future__ import annotations

from automate_llm.providers.base import LLMError, LLMProvider


class EchoProvider(LLMProvider):
    code = "echo"
    name = "Echo (no network)"

    def chat(self, messages: list, options: dict) -> str:
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return str(message.get("content", ""))
        raise LLMError("echo needs at least one message with role 'user'.")

    def count_tokens(self, text: str) -> int:
        return max(1, len(text.split())) if text else 0
