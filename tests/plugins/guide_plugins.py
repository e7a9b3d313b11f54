"""Plugins written from the public guide only (``extending-django-automate.md``), to the letter.

Each uses nothing the guide does not show: the base class, the methods it lists with their
signatures, ``ConnectorError`` for a connector's failures and ``SecretNotFoundError`` for a
missing secret. Nothing here knows about ``retryable``, ``actions``, ``ConnectorConfigError``,
``code`` on a secrets backend or an LLM provider, or any other extension of the platform. The
contract suites must pass them (``test_contract_suites``).
"""

from __future__ import annotations

import os
from typing import Any

from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError
from automate_core.exceptions import SecretNotFoundError
from automate_governance.secrets.interfaces import SecretsBackend
from automate_llm.providers.base import LLMProvider


class MyERPAdapter(ConnectorAdapter):
    code = "my_erp"  # Unique identifier
    name = "My ERP"  # Human readable label

    def execute(self, action: str, params: dict, context: dict) -> Any:
        """
        Execute the side effect.
        Must raise ConnectorError on failure.
        """
        if action == "create_order":
            if "sku" not in params:
                raise ConnectorError("create_order needs a 'sku'")
            return {"order": params["sku"], "status": "created"}
        raise ConnectorError(f"Unknown action: {action}")

    def validate_config(self, config: dict) -> None:
        """Optional: Validate setup configuration."""
        if "base_url" not in config:
            raise ConnectorError("base_url is required")


class MyAsyncERPAdapter(ConnectorAdapter):
    """The same, with ``execute`` a coroutine."""

    code = "my_async_erp"
    name = "My async ERP"

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        if action == "create_order":
            if "sku" not in params:
                raise ConnectorError("create_order needs a 'sku'")
            return {"order": params["sku"], "status": "created"}
        raise ConnectorError(f"Unknown action: {action}")

    def validate_config(self, config: dict) -> None:
        if "base_url" not in config:
            raise ConnectorError("base_url is required")


class HashiCorpVaultBackend(SecretsBackend):
    """Reads ``VAULT_<KEY>`` environment variables (a stand-in for a real store)."""

    def get_secret(self, key: str) -> str:
        """
        Return the raw secret value.
        Raise SecretNotFoundError if missing.
        """
        value = os.environ.get("GUIDE_VAULT_" + key)
        if value is None:
            raise SecretNotFoundError(key)
        return value


class EchoProvider(LLMProvider):
    """Answers with the last message, reversed."""

    def chat(self, messages: list, options: dict) -> str:
        """
        Synchronous chat completion.
        """
        return str(messages[-1]["content"])[::-1]

    def count_tokens(self, text: str) -> int:
        """Estimate token usage."""
        return len(text.split())
