"""The contract suites can fail: deliberately broken plugins fail the checks that concern them.

The suites run in process through unittest (as ``python -m unittest`` would run them); the broken
classes are defined inside the tests so pytest does not collect them as tests of this module.
"""

from __future__ import annotations

import unittest
from typing import Any, ClassVar

from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError
from automate_core.exceptions import SecretNotFoundError
from automate_governance.secrets.interfaces import SecretsBackend
from automate_llm.providers.base import LLMProvider
from automate_testing.contracts import (
    ConnectorContractTest,
    LLMProviderContractTest,
    SecretsBackendContractTest,
)


def outcome(case: type[unittest.TestCase]) -> dict[str, set[str]]:
    """Run a suite; the names of its checks by outcome (failed, skipped, passed)."""
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
    names = {getattr(t, "_testMethodName", "") for t in suite}
    result = unittest.TestResult()
    suite.run(result)

    def name(test: Any) -> str:  # a failing subtest counts for its check
        test = getattr(test, "test_case", test)
        return str(getattr(test, "_testMethodName", getattr(test, "description", "")))

    failed = {name(t) for t, _ in result.failures + result.errors}
    skipped = {name(t) for t, _ in result.skipped}
    return {"failed": failed, "skipped": skipped, "passed": names - failed - skipped}


def test_a_broken_connector_fails_its_contract() -> None:
    class Broken(ConnectorAdapter):
        code = "Broken Code!"
        name = ""
        actions: ClassVar[tuple[str, ...]] = ("fetch",)

        def execute(self, action: str, params: dict, context: dict) -> Any:
            if action == "fetch":
                return {"value": params["key"]}  # KeyError when the param is missing
            raise NotImplementedError(action)

        def validate_config(self, config: dict) -> Any:
            return False  # should raise ConnectorConfigError

    class TestBroken(ConnectorContractTest):
        adapter_cls = Broken
        invalid_configs: ClassVar[list[dict[str, Any]]] = [{"nonsense": True}]

    result = outcome(TestBroken)
    assert {
        "test_contract_identity",
        "test_contract_unknown_action_raises_connector_error",
        "test_contract_failures_are_connector_errors",
        "test_contract_validate_config",
    } <= result["failed"]
    assert "test_contract_instantiates_without_io" in result["passed"]


def test_a_connector_doing_io_in_init_or_blocking_the_loop_fails() -> None:
    class Greedy(ConnectorAdapter):
        code = "greedy"
        name = "Greedy"

        def __init__(self) -> None:
            import socket

            socket.create_connection(("127.0.0.1", 9), timeout=0.1)

        def execute(self, action: str, params: dict, context: dict) -> Any:
            raise ConnectorError("no", retryable=False)

    class Blocking(ConnectorAdapter):
        code = "blocking"
        name = "Blocking"

        async def execute(self, action: str, params: dict, context: dict) -> Any:
            import time

            if action != "wait":
                raise ConnectorError("unknown", retryable=False)
            time.sleep(0.01)  # noqa: ASYNC251 (the mistake this test is about)
            return {}

    class TestGreedy(ConnectorContractTest):
        adapter_cls = Greedy

    class TestBlocking(ConnectorContractTest):
        adapter_cls = Blocking

        def sample_actions(self) -> dict[str, dict[str, Any]]:
            return {"wait": {}}

    assert "test_contract_instantiates_without_io" in outcome(TestGreedy)["failed"]
    assert "test_contract_sync_and_async_agree" in outcome(TestBlocking)["failed"]


def test_a_leaky_secrets_backend_fails_its_contract() -> None:
    class Leaky(SecretsBackend):
        code = "leaky"
        name = "Leaky"
        store: ClassVar[dict[str, str]] = {"API_KEY": "super-secret-value"}

        def get_secret(self, key: str) -> str:
            if key not in self.store:
                raise SecretNotFoundError(f"{key} not found; known: {self.store}")  # leaks values
            return self.store[key]

        def __repr__(self) -> str:
            return f"<Leaky {self.store}>"

    class Lenient(SecretsBackend):
        code = "lenient"
        name = "Lenient"

        def get_secret(self, key: str) -> str:
            return {"API_KEY": "value-123"}.get(key)  # type: ignore[return-value]  # None when missing

    class TestLeaky(SecretsBackendContractTest):
        backend_cls = Leaky
        secrets: ClassVar[dict[str, str]] = {"API_KEY": "super-secret-value"}

    class TestLenient(SecretsBackendContractTest):
        backend_cls = Lenient
        secrets: ClassVar[dict[str, str]] = {"API_KEY": "value-123"}

    leaky = outcome(TestLeaky)
    assert leaky["failed"] == {"test_contract_values_never_leak"}
    assert "test_contract_missing_key_raises_secret_not_found" in outcome(TestLenient)["failed"]


def test_a_broken_llm_provider_fails_its_contract() -> None:
    class Broken(LLMProvider):
        code = "broken_llm"
        name = "Broken"

        def chat(self, messages: list, options: dict) -> str:
            return {"text": "hi"}  # type: ignore[return-value]  # not a str

        async def achat(self, messages: list, options: dict) -> str:
            return "something else"

        def count_tokens(self, text: str) -> int:
            return len(text) / 4  # type: ignore[return-value]  # a float

    class TestBroken(LLMProviderContractTest):
        provider_cls = Broken
        invalid_options: ClassVar[list[dict[str, Any]]] = [{"__automate_contract_unknown_option__": 1}]

    failed = outcome(TestBroken)["failed"]
    assert {"test_contract_chat_returns_text_in_both_forms", "test_contract_count_tokens",
            "test_contract_invalid_options_are_llm_errors"} <= failed  # fmt: skip


def test_opting_out_takes_a_reason_and_overrides_must_opt_out() -> None:
    class Fine(ConnectorAdapter):
        code = "fine"
        name = "Fine"

        def execute(self, action: str, params: dict, context: dict) -> Any:
            raise ConnectorError("unknown", retryable=False)

    class WithReason(ConnectorContractTest):
        adapter_cls = Fine
        contract_skips: ClassVar[dict[str, str]] = {"test_contract_validate_config": "no configuration"}

    class WithoutReason(ConnectorContractTest):
        adapter_cls = Fine
        contract_skips: ClassVar[dict[str, str]] = {"test_contract_validate_config": " "}

    class SilentOverride(ConnectorContractTest):
        adapter_cls = Fine

        def test_contract_unknown_action_raises_connector_error(self) -> None:
            pass

    skipped = {n for n in outcome(WithReason)["skipped"] if not n.startswith("test_contract_optional_")}
    assert skipped == {"test_contract_validate_config"}
    assert "test_contract_validate_config" in outcome(WithoutReason)["failed"]
    assert "test_contract_no_silent_overrides" in outcome(SilentOverride)["failed"]


def test_bases_are_not_collected_and_subclasses_are() -> None:
    assert ConnectorContractTest.__test__ is False
    assert SecretsBackendContractTest.__test__ is False
    assert LLMProviderContractTest.__test__ is False

    class Child(ConnectorContractTest):
        adapter_cls = ConnectorAdapter

    class Grandchild(Child):
        def test_mine(self) -> None:
            pass

    assert Child.__test__ is True and Grandchild.__test__ is True
    # under unittest a base imported into a test module skips itself instead of failing
    result = outcome(ConnectorContractTest)
    assert result["failed"] == set()
    assert [s for s in result["skipped"] if s.startswith("setUpClass")], result
