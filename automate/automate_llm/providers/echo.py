"""``echo``: answers with the last user message. For tests and demos; calls nothing.

It reports usage like a real provider (its own token counts), so budgets and per-step usage can
be exercised without a network.
"""

from __future__ import annotations

from automate_llm import tokens
from automate_llm.providers.base import LLMError, LLMProvider


class EchoProvider(LLMProvider):
    code = "echo"
    name = "Echo (no network)"

    def chat(self, messages: list, options: dict) -> str:
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role", "user") == "user":
                text = str(message.get("content", ""))
                used_in = tokens.count_messages(messages, self.count_tokens)
                self.record_usage(input=used_in, output=self.count_tokens(text), model="echo")
                return text
        raise LLMError("echo needs at least one message with role 'user'.")

    def count_tokens(self, text: str) -> int:
        return tokens.estimate(text)
