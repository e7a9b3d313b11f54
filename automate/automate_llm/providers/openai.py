"""``openai``: any server speaking OpenAI's chat-completions API (OpenAI, vLLM, Ollama, LM Studio).

``POST <base_url>/chat/completions`` with ``Authorization: Bearer <api_key>`` (omitted when no key is
set, as local servers need none). ``base_url`` defaults to ``https://api.openai.com/v1``; set
``AUTOMATE_LLM_PROVIDERS = {"openai": {"base_url": "http://localhost:11434/v1", "model": ...}}``
for Ollama, for example (and allow the host in ``AUTOMATE_HTTP_ALLOWED_HOSTS`` only if a connector,
not this provider, must reach it: the provider's URL is trusted configuration). Reported usage is
``usage.prompt_tokens`` / ``usage.completion_tokens``.

The ``max_tokens`` option is sent as ``max_completion_tokens``, the field current OpenAI models
require (reasoning models refuse ``max_tokens``); for a server that knows only the older field,
set ``"max_tokens_field": "max_tokens"`` in its ``AUTOMATE_LLM_PROVIDERS`` entry.
"""

from __future__ import annotations

from typing import Any

from automate_llm.providers.http import Call, HttpChatProvider, validate_messages


class OpenAIProvider(HttpChatProvider):
    code = "openai"
    name = "OpenAI-compatible chat completions"
    default_base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"
    extra_options = frozenset({"seed", "response_format", "presence_penalty", "frequency_penalty", "user"})

    def build(self, messages: list, options: dict[str, Any]) -> Call:
        body: dict[str, Any] = {
            "model": options.get("model") or self.config("model"),
            "messages": validate_messages(self.code, messages),
        }
        if options.get("max_tokens") is not None:  # reasoning models refuse the older max_tokens
            body[str(self.config("max_tokens_field", "max_completion_tokens"))] = options["max_tokens"]
        for key in ("temperature", "top_p", "stop", *sorted(self.extra_options)):
            if options.get(key) is not None:
                body[key] = options[key]
        headers = {"Content-Type": "application/json"}
        key = self.api_key(options)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return Call(f"{self.base_url()}/chat/completions", headers, body, self.timeout(options))

    def parse(self, data: Any) -> tuple[str, int | None, int | None, str]:
        text = data["choices"][0]["message"]["content"] or ""
        usage = data.get("usage") or {}
        return (
            str(text),
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            str(data.get("model", "")),
        )
