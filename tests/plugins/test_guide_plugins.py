"""Plugins written from the public guide only pass their contract suites, set up as the guide shows.

``guide_plugins`` holds one plugin of each kind written to the letter of
``extending-django-automate.md``; the test classes here set nothing but the plugin class (the
guide's ``adapter_cls = MyERPAdapter``), then declare more data, then opt in to the optional checks,
to show that each layer passes or fails exactly as documented.
"""

from __future__ import annotations

import os
import unittest
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError, UnknownActionError
from automate_core.exceptions import LLMInvalidOptionsError
from automate_core.plugins import registry
from automate_governance.secrets.interfaces import SecretsBackend
from automate_llm.providers.base import LLMProvider
from automate_testing.contracts import (
    ConnectorContractTest,
    LLMProviderContractTest,
    SecretsBackendContractTest,
)
from tests.plugins.guide_plugins import EchoProvider, HashiCorpVaultBackend, MyAsyncERPAdapter, MyERPAdapter
from tests.plugins.test_contract_suites import outcome

OPTIONAL = "test_contract_optional_"


def skip_reasons(case: type[unittest.TestCase]) -> dict[str, str]:
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
    result = unittest.TestResult()
    suite.run(result)
    return {str(getattr(t, "_testMethodName", "")): reason for t, reason in result.skipped}


@pytest.mark.parametrize("adapter", [MyERPAdapter, MyAsyncERPAdapter], ids=["sync", "async"])
def test_a_guide_literal_connector_passes_as_the_guide_sets_it_up(adapter: type[ConnectorAdapter]) -> None:
    class TestMyERP(ConnectorContractTest):
        adapter_cls = adapter

        def test_execute_success(self) -> None:  # as in the guide
            pass

    result = outcome(TestMyERP)
    assert result["failed"] == set()
    assert {"test_contract_identity", "test_contract_unknown_action_raises_connector_error",
            "test_contract_instantiates_without_io", "test_execute_success"} <= result["passed"]  # fmt: skip
    reasons = skip_reasons(TestMyERP)
    # what goes beyond the guide is skipped, and says how to opt in; undeclared data, what to declare
    assert {n for n in reasons if n.startswith(OPTIONAL)} == {
        "test_contract_optional_unknown_action_not_retryable",
        "test_contract_optional_config_errors_are_config_errors",
    }
    assert (
        "contract_opt_in = {'unknown_action_not_retryable'}"
        in reasons["test_contract_optional_unknown_action_not_retryable"]
    )
    assert "declare valid_config" in reasons["test_contract_validate_config"]


@pytest.mark.parametrize("adapter", [MyERPAdapter, MyAsyncERPAdapter], ids=["sync", "async"])
def test_a_guide_literal_connector_with_its_configs_declared_passes(adapter: type[ConnectorAdapter]) -> None:
    class TestMyERP(ConnectorContractTest):
        adapter_cls = adapter
        valid_config: ClassVar[dict[str, Any] | None] = {"base_url": "https://erp.example.com"}
        invalid_configs: ClassVar[list[dict[str, Any]]] = [{}, {"url": "https://erp.example.com"}]

        def sample_actions(self) -> dict[str, dict[str, Any]]:
            return {"create_order": {"sku": "A-1"}}

        def failure_cases(self) -> list[tuple[str, dict[str, Any]]]:
            return [("create_order", {})]

    result = outcome(TestMyERP)
    assert result["failed"] == set()
    assert {"test_contract_validate_config", "test_contract_sync_and_async_agree",
            "test_contract_sample_results_are_json_and_inputs_untouched"} <= result["passed"]  # fmt: skip


def test_optional_connector_checks_run_when_opted_in_and_tell_the_plugins_apart() -> None:
    class Strict(MyERPAdapter):
        code = "strict_erp"

        def execute(self, action: str, params: dict, context: dict) -> Any:
            if action != "create_order":
                raise UnknownActionError(f"strict_erp has no action {action!r}")
            return super().execute(action, params, context)

    def suite(adapter: type[ConnectorAdapter]) -> type[ConnectorContractTest]:
        class TestOptIn(ConnectorContractTest):
            adapter_cls = adapter
            invalid_configs: ClassVar[list[dict[str, Any]]] = [{}]
            contract_opt_in: ClassVar[frozenset[str] | set[str]] = {"unknown_action_not_retryable"}

        return TestOptIn

    assert outcome(suite(Strict))["failed"] == set()
    # the guide's plain ConnectorError is retryable: opted in, that check fails, and only it
    assert outcome(suite(MyERPAdapter))["failed"] == {"test_contract_optional_unknown_action_not_retryable"}

    class TestConfigErrors(ConnectorContractTest):
        adapter_cls = MyERPAdapter  # refuses with ConnectorError, not ConnectorConfigError
        invalid_configs: ClassVar[list[dict[str, Any]]] = [{}]
        contract_opt_in: ClassVar[frozenset[str] | set[str]] = {"config_errors_are_config_errors"}

    assert outcome(TestConfigErrors)["failed"] == {"test_contract_optional_config_errors_are_config_errors"}

    class TestTypo(ConnectorContractTest):
        adapter_cls = Strict
        contract_opt_in: ClassVar[frozenset[str] | set[str]] = {"unknown_action_not_retriable"}

    assert outcome(TestTypo)["failed"] == {"test_contract_opt_ins_exist"}


def test_any_refusal_of_an_invalid_config_keeps_the_guide() -> None:
    """The guide names no error type for ``validate_config``: refusing with a ``ValueError`` keeps
    its contract (``ConnectorConfigError`` is the optional check)."""

    class ValueErrorERP(MyERPAdapter):
        code = "value_error_erp"

        def validate_config(self, config: dict) -> None:
            if "base_url" not in config:
                raise ValueError("base_url is required")

    class TestValueError(ConnectorContractTest):
        adapter_cls = ValueErrorERP
        valid_config: ClassVar[dict[str, Any] | None] = {"base_url": "https://erp.example.com"}
        invalid_configs: ClassVar[list[dict[str, Any]]] = [{}]

    class TestValueErrorStrict(TestValueError):
        contract_opt_in: ClassVar[frozenset[str] | set[str]] = {"config_errors_are_config_errors"}

    assert outcome(TestValueError)["failed"] == set()
    assert "test_contract_validate_config" in outcome(TestValueError)["passed"]
    assert outcome(TestValueErrorStrict)["failed"] == {
        "test_contract_optional_config_errors_are_config_errors"
    }


def test_a_connector_that_refuses_no_invalid_config_still_fails() -> None:
    class Lax(MyERPAdapter):
        code = "lax_erp"

        def validate_config(self, config: dict) -> None:
            return None  # accepts anything

    class Picky(MyERPAdapter):
        code = "picky_erp"

        def validate_config(self, config: dict) -> None:
            raise ConnectorError("nothing is good enough")

    class TestLax(ConnectorContractTest):
        adapter_cls = Lax
        invalid_configs: ClassVar[list[dict[str, Any]]] = [{}]

    class TestPicky(ConnectorContractTest):
        adapter_cls = Picky
        valid_config: ClassVar[dict[str, Any] | None] = {"base_url": "https://erp.example.com"}

    assert outcome(TestLax)["failed"] == {"test_contract_validate_config"}
    assert outcome(TestPicky)["failed"] == {"test_contract_validate_config"}


@pytest.fixture
def vault_secrets() -> Iterator[dict[str, str]]:
    values = {"ERP_KEY": "erp-key-123", "PEM": " -----BEGIN-----\nabc é\n-----END----- "}
    yield values
    for key in values:
        os.environ.pop("GUIDE_VAULT_" + key, None)


def test_a_guide_literal_secrets_backend_passes(vault_secrets: dict[str, str]) -> None:
    class TestVault(SecretsBackendContractTest):
        backend_cls = HashiCorpVaultBackend

    bare = outcome(TestVault)
    assert bare["failed"] == set()
    assert {"test_contract_identity", "test_contract_missing_key_raises_secret_not_found",
            "test_contract_values_never_leak"} <= bare["passed"]  # fmt: skip
    assert "declare secrets" in skip_reasons(TestVault)["test_contract_returns_exact_values_sync_and_async"]

    class TestVaultWithSecrets(SecretsBackendContractTest):
        backend_cls = HashiCorpVaultBackend
        secrets: ClassVar[dict[str, str]] = vault_secrets

        def populate(self, backend: SecretsBackend) -> None:
            for key, value in self.secrets.items():
                os.environ["GUIDE_VAULT_" + key] = value

    full = outcome(TestVaultWithSecrets)
    assert full["failed"] == set()
    assert {"test_contract_returns_exact_values_sync_and_async", "test_contract_concurrent_reads_agree",
            "test_contract_missing_key_is_not_a_value"} <= full["passed"]  # fmt: skip


def test_a_guide_literal_llm_provider_passes() -> None:
    class TestEcho(LLMProviderContractTest):
        provider_cls = EchoProvider

    result = outcome(TestEcho)
    assert result["failed"] == set()
    assert {"test_contract_identity", "test_contract_chat_returns_text_in_both_forms",
            "test_contract_count_tokens"} <= result["passed"]  # fmt: skip

    class Refusing(EchoProvider):
        def chat(self, messages: list, options: dict) -> str:
            if options:
                raise LLMInvalidOptionsError(f"unknown options {sorted(options)}")
            return super().chat(messages, options)

    class TestRefusing(LLMProviderContractTest):
        provider_cls: ClassVar[type[LLMProvider] | None] = Refusing
        invalid_options: ClassVar[list[dict[str, Any]]] = [{"temperature_x": 1}]
        contract_opt_in: ClassVar[frozenset[str] | set[str]] = {"invalid_options_not_retryable"}

    class TestEchoOptIn(TestRefusing):
        provider_cls = EchoProvider  # accepts any option: declared invalid ones are not refused

    assert outcome(TestRefusing)["failed"] == set()
    lenient = outcome(TestEchoOptIn)["failed"]
    assert {"test_contract_invalid_options_are_llm_errors",
            "test_contract_optional_invalid_options_not_retryable"} <= lenient  # fmt: skip


@pytest.mark.parametrize(
    ("group", "plugin"),
    [
        (registry.secrets_backends, HashiCorpVaultBackend),
        (registry.llm_providers, EchoProvider),
        (registry.connectors, MyERPAdapter),
    ],
)
def test_the_registry_loads_guide_literal_plugins_by_their_entry_point_name(group: Any, plugin: type) -> None:
    """The guide shows no ``code`` for a secrets backend or an LLM provider: it is known by its
    entry point's name (a declared ``code`` must still match it)."""
    name = getattr(plugin, "code", "") or "vault"
    group().validate(name, plugin)  # no PluginLoadError
    if getattr(plugin, "code", ""):
        with pytest.raises(Exception, match="entry point is named"):
            group().validate("other_name", plugin)
