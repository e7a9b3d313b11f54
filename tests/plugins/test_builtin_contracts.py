"""Every built-in plugin passes the contract suite we ship to plugin authors."""

from __future__ import annotations

import base64
import os
import tempfile
from typing import Any, ClassVar

import pytest
from django.test import override_settings

from automate_connectors.email import EmailConnector
from automate_connectors.http import HttpConnector
from automate_connectors.llm import LLMConnector
from automate_connectors.log import LogConnector
from automate_connectors.slack import SlackConnector
from automate_connectors.webhook import WebhookConnector
from automate_governance.secrets import db
from automate_governance.secrets.db import DbSecretsBackend
from automate_governance.secrets.env import EnvSecretsBackend
from automate_governance.secrets.file import FileSecretsBackend
from automate_governance.secrets.interfaces import SecretsBackend
from automate_governance.secrets.vault import VaultSecretsBackend
from automate_llm.providers.anthropic import AnthropicProvider
from automate_llm.providers.base import LLMProvider
from automate_llm.providers.echo import EchoProvider
from automate_llm.providers.openai import OpenAIProvider
from automate_testing.contracts import (
    ConnectorContractTest,
    LLMProviderContractTest,
    SecretsBackendContractTest,
)
from tests.plugins.servers import FakeServer
from tests.plugins.test_llm import anthropic_ok, openai_ok
from tests.plugins.test_secrets import FakeVault

SECRETS = {"PLAIN": "plain-value-123", "SPACED": "  spaced value  ", "UNICODE": "pässwörd-✓",
           "PEM": "-----BEGIN KEY-----\nMIIB\n-----END KEY-----"}  # fmt: skip

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
DB_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()

# --- connectors ---------------------------------------------------------------------------------


class TestLogConnector(ConnectorContractTest):
    adapter_cls = LogConnector
    contract_opt_in: ClassVar[set[str]] = {"unknown_action_not_retryable"}  # the built-ins keep them all

    def sample_actions(self) -> dict[str, dict[str, Any]]:
        return {"info": {"message": "hello"}, "warning": {"message": "careful"}}

    def failure_cases(self) -> list[tuple[str, dict[str, Any]]]:
        return [("info", {"message": 42})]


class TestHttpConnector(ConnectorContractTest):
    adapter_cls = HttpConnector
    valid_config: ClassVar[dict[str, Any]] = {"timeout": 5}
    invalid_configs: ClassVar[list[dict[str, Any]]] = [{"timeout": -1}, {"timeout": "soon"}, {"retries": 3}]
    contract_opt_in: ClassVar[set[str]] = {"unknown_action_not_retryable", "config_errors_are_config_errors"}

    def failure_cases(self) -> list[tuple[str, dict[str, Any]]]:
        return [("get", {"url": "http://example.com/"}), ("post", {"url": "ftp://example.com/"}),
                ("get", {"url": "http://169.254.169.254/latest/meta-data/"})]  # fmt: skip


class TestSlackConnector(ConnectorContractTest):
    adapter_cls = SlackConnector
    contract_opt_in: ClassVar[set[str]] = {"unknown_action_not_retryable"}  # the built-ins keep them all

    def failure_cases(self) -> list[tuple[str, dict[str, Any]]]:
        return [("webhook", {"url": "https://hooks.slack.com/services/T/B/X", "text": "hi"}),
                ("post_message", {"token": "xoxb-1", "channel": "#c", "text": "hi"}),
                ("post_message", {"channel": "#c", "text": "hi"})]  # fmt: skip


class TestEmailConnector(ConnectorContractTest):
    adapter_cls = EmailConnector
    contract_opt_in: ClassVar[set[str]] = {"unknown_action_not_retryable"}  # the built-ins keep them all

    def setUp(self) -> None:
        self.enterContext(override_settings(MAILERS={"default": {"BACKEND": LOCMEM}}))
        super().setUp()

    def sample_actions(self) -> dict[str, dict[str, Any]]:
        return {"send": {"to": "ops@example.com", "subject": "Hello", "body": "text"}}

    def comparable(self, result: Any) -> Any:
        return {**result, "message_id": "<varies>"}


class TestWebhookConnector(ConnectorContractTest):
    adapter_cls = WebhookConnector
    contract_opt_in: ClassVar[set[str]] = {"unknown_action_not_retryable"}  # the built-ins keep them all

    def failure_cases(self) -> list[tuple[str, dict[str, Any]]]:
        return [("send", {"url": "https://example.com/hook", "payload": {}, "secret": "s3cret"}),
                ("send", {"url": "https://example.com/hook", "payload": {}})]  # fmt: skip


class TestLLMConnector(ConnectorContractTest):
    adapter_cls = LLMConnector
    contract_opt_in: ClassVar[set[str]] = {"unknown_action_not_retryable"}  # the built-ins keep them all

    def setUp(self) -> None:
        self.enterContext(override_settings(AUTOMATE_LLM_BUDGETS={}))
        super().setUp()

    def sample_actions(self) -> dict[str, dict[str, Any]]:
        return {"chat": {"provider": "echo", "prompt": "ping", "max_tokens": 16}}

    def failure_cases(self) -> list[tuple[str, dict[str, Any]]]:
        return [
            ("chat", {"provider": "no_such_provider", "prompt": "x"}),
            ("chat", {"prompt": "x", "max_tokens": 0}),
        ]


# --- secrets backends ---------------------------------------------------------------------------


class TestEnvSecretsBackend(SecretsBackendContractTest):
    backend_cls = EnvSecretsBackend
    secrets: ClassVar[dict[str, str]] = SECRETS

    def populate(self, backend: SecretsBackend) -> None:
        for key, value in self.secrets.items():
            os.environ["AUTOMATE_SECRET_" + key] = value

    def cleanup(self, backend: SecretsBackend) -> None:
        for key in self.secrets:
            os.environ.pop("AUTOMATE_SECRET_" + key, None)


class TestFileSecretsBackend(SecretsBackendContractTest):
    backend_cls = FileSecretsBackend
    secrets: ClassVar[dict[str, str]] = SECRETS

    def make_backend(self) -> SecretsBackend:
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        return FileSecretsBackend(self.directory.name)

    def populate(self, backend: SecretsBackend) -> None:
        for key, value in self.secrets.items():
            with open(os.path.join(self.directory.name, key), "w", encoding="utf-8") as f:
                f.write(value + "\n")


@pytest.mark.django_db(transaction=True)  # the thread pool's connections must see the rows
class TestDbSecretsBackend(SecretsBackendContractTest):
    backend_cls = DbSecretsBackend
    secrets: ClassVar[dict[str, str]] = SECRETS

    def setUp(self) -> None:
        self.enterContext(override_settings(AUTOMATE_SECRETS_ENCRYPTION_KEYS=[DB_KEY]))
        super().setUp()

    def populate(self, backend: SecretsBackend) -> None:
        for key, value in self.secrets.items():
            db.set_secret(key, value)


class TestVaultSecretsBackend(SecretsBackendContractTest):
    backend_cls = VaultSecretsBackend
    secrets: ClassVar[dict[str, str]] = {f"app/{k.lower()}": v for k, v in SECRETS.items()}

    def make_backend(self) -> SecretsBackend:
        self.server = FakeServer().start()
        self.addCleanup(self.server.stop)
        return VaultSecretsBackend({"url": self.server.url, "token": "root-token"})

    def populate(self, backend: SecretsBackend) -> None:
        vault = FakeVault(self.server)
        for key, value in self.secrets.items():
            vault.data[key] = {"value": value}
            self.server.route("GET", f"/v1/secret/data/{key}", vault.read)
        self.server.route("GET", f"/v1/secret/data/{self.missing_key}", vault.read)
        for key in self.secrets:
            self.server.route("GET", f"/v1/secret/data/{key}_missing", vault.read)


# --- LLM providers ------------------------------------------------------------------------------


class TestEchoProvider(LLMProviderContractTest):
    provider_cls = EchoProvider
    invalid_options: ClassVar[list[dict[str, Any]]] = []


class _ServedProvider(LLMProviderContractTest):
    path: ClassVar[str] = ""
    invalid_options: ClassVar[list[dict[str, Any]]] = [{"__automate_contract_unknown_option__": 1}]
    contract_opt_in: ClassVar[set[str]] = {"invalid_options_not_retryable"}

    def make_provider(self) -> LLMProvider:
        self.server = FakeServer().start()
        self.addCleanup(self.server.stop)
        self.server.route("POST", self.path, openai_ok if "chat" in self.path else anthropic_ok)
        assert self.provider_cls is not None
        base = self.server.url + ("/v1" if "chat" in self.path else "")
        return self.provider_cls({"base_url": base, "model": "m", "api_key": "k"})  # type: ignore[call-arg]


class TestOpenAIProvider(_ServedProvider):
    provider_cls = OpenAIProvider
    path = "/v1/chat/completions"


class TestAnthropicProvider(_ServedProvider):
    provider_cls = AnthropicProvider
    path = "/v1/messages"
