"""``anthropic``: Anthropic's Messages API.

``POST <base_url>/v1/messages`` with ``x-api-key`` and ``anthropic-version: 2023-06-01``. System
messages are joined into the request's ``system`` field; ``max_tokens`` (required by the API)
defaults to ``AUTOMATE_LLM_DEFAULT_MAX_TOKENS``; ``stop`` becomes ``stop_sequences``. The answer's
text blocks are joined. Reported usage is ``usage.input_tokens`` / ``usage.output_tokens``.
"""

from __future__ import annotations

from typing import Any

from automate_core.conf import settings
from automate_llm.providers.http import Call, HttpChatProvider, validate_messages

API_VERSION = "2023-06-01"


class AnthropicProvider(HttpChatProvider):
    code = "anthropic"
    name = "Anthropic Messages API"
    default_base_url = "https://api.anthropic.com"
    api_key_env = "ANTHROPIC_API_KEY"
    extra_options = frozenset({"top_k", "metadata"})

    def build(self, messages: list, options: dict[str, Any]) -> Call:
        checked = validate_messages(self.code, messages)
        system = "\n\n".join(m["content"] for m in checked if m["role"] == "system")
        body: dict[str, Any] = {
            "model": options.get("model") or self.config("model"),
            "max_tokens": options.get("max_tokens") or int(settings.LLM_DEFAULT_MAX_TOKENS),
            "messages": [m for m in checked if m["role"] != "system"],
        }
        if system:
            body["system"] = system
        for key in ("temperature", "top_p", "top_k", "metadata"):
            if options.get(key) is not None:
                body[key] = options[key]
        if options.get("stop") is not None:
            stop = options["stop"]
            body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        headers = {
            "Content-Type": "application/json",
            "x-api-key": self.api_key(options),
            "anthropic-version": API_VERSION,
        }
        return Call(f"{self.base_url()}/v1/messages", headers, body, self.timeout(options))

    def parse(self, data: Any) -> tuple[str, int | None, int | None, str]:
        text = "".join(block.get("text", "") for block in data["content"] if block.get("type") == "text")
        usage = data.get("usage") or {}
        return text, usage.get("input_tokens"), usage.get("output_tokens"), str(data.get("model", ""))
