"""``ConnectorContractTest``: the checks every connector must pass."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from automate_connectors.adapters.base import ConnectorAdapter, ConnectorConfigError, ConnectorError
from automate_core.plugins.registry import CONNECTORS
from automate_testing.contracts._base import ContractTest, is_json, no_blocking_sleep, no_io, run, unguarded


class ConnectorContractTest(ContractTest):
    """Subclass, set ``adapter_cls``, add your own tests beside the ``test_contract_*`` checks.

    Hooks (all optional):

    * ``sample_actions()``: ``{action: params}`` that succeed offline; their results must be JSON,
      leave params and context untouched, and be the same through the sync and async entry points.
    * ``failure_cases()``: ``[(action, params)]`` that must fail, with a ``ConnectorError``.
    * ``valid_config`` / ``invalid_configs``: what ``validate_config`` accepts and refuses (by
      raising; the guide names no error type for it); unchecked until declared.
    * ``make_adapter()`` / ``make_context()``: how the adapter and a step context are built.

    Optional checks, beyond the guide (``contract_opt_in = {...}``):

    * ``unknown_action_not_retryable``: the error for an unknown action says ``retryable=False``
      (raise ``UnknownActionError``), so the job is not retried for nothing.
    * ``config_errors_are_config_errors``: ``invalid_configs`` are refused with
      ``ConnectorConfigError`` specifically.
    """

    __test__ = False
    _suite_base = True
    _plugin_attr = "adapter_cls"
    _group = CONNECTORS
    adapter_cls: ClassVar[type[ConnectorAdapter] | None] = None
    #: An action name the connector certainly does not support.
    unknown_action: ClassVar[str] = "__automate_contract_unknown__"
    #: A configuration ``validate_config`` must accept (None: not checked).
    valid_config: ClassVar[dict[str, Any] | None] = None
    #: Configurations ``validate_config`` must refuse (raise; with ``ConnectorConfigError`` under
    #: the optional ``config_errors_are_config_errors``).
    invalid_configs: ClassVar[list[dict[str, Any]]] = []

    def make_adapter(self) -> ConnectorAdapter:
        return self.plugin_cls()  # type: ignore[no-any-return]

    def make_context(self) -> dict[str, Any]:
        return {"run_id": 0, "workflow": "contract", "step": "contract", "event_id": 0,
                "trace_id": "0" * 32, "attempt": 1, "dry_run": False}  # fmt: skip

    def sample_actions(self) -> dict[str, dict[str, Any]]:
        """Override: ``{action: params}`` that succeed offline, for the result checks."""
        return {}

    def failure_cases(self) -> list[tuple[str, dict[str, Any]]]:
        """Override: ``[(action, params)]`` that must raise ``ConnectorError`` (network is blocked)."""
        return []

    # -- calling the author's code as written -----------------------------------------------------

    def call_raw(self, adapter: ConnectorAdapter, action: str, params: dict, context: dict) -> Any:
        """The author's own entry point, without the platform's wrapping of stray exceptions."""
        mode = type(adapter).plugin_mode
        if mode == "native":
            return run(unguarded(type(adapter).aexecute)(adapter, action, params, context))
        if mode == "coroutine":
            return run(adapter.execute(action, params, context))
        return adapter.execute(action, params, context)

    def call_async(self, adapter: ConnectorAdapter, action: str, params: dict, context: dict) -> Any:
        with no_blocking_sleep():
            return run(adapter.aexecute(action, params, context))

    # -- the checks ---------------------------------------------------------------------------

    def test_contract_instantiates_without_io(self) -> None:
        with no_io():
            adapter = self.make_adapter()
        self.assertIsInstance(adapter, ConnectorAdapter)

    def test_contract_unknown_action_raises_connector_error(self) -> None:
        """An action the connector does not have fails, with a ``ConnectorError`` (the guide: "Must
        raise ConnectorError on failure")."""
        self.unknown_action_error()

    def test_contract_optional_unknown_action_not_retryable(self) -> None:
        """Trying an unknown action again cannot help: its error says ``retryable=False``."""
        error = self.unknown_action_error()
        self.assertFalse(
            error.retryable,
            "an unknown action can never succeed on retry: raise UnknownActionError "
            "(or ConnectorError(..., retryable=False))",
        )

    def unknown_action_error(self) -> ConnectorError:
        adapter = self.make_adapter()
        with no_io(), self.assertRaises(ConnectorError) as caught:
            self.call_raw(adapter, self.unknown_action, {}, self.make_context())
        return caught.exception

    def test_contract_failures_are_connector_errors(self) -> None:
        """Missing params, the declared failure cases, and a remote that cannot be reached (the
        network is blocked) all surface as ``ConnectorError``: never a bare exception."""
        cases: list[tuple[str, dict[str, Any]]] = [(action, {}) for action in self.declared_actions()]
        cases += [(action, params) for action, params in self.sample_actions().items()]
        must_fail = self.failure_cases()
        for action, params in cases + must_fail:
            with self.subTest(action=action, params=params), no_io():
                try:
                    result = self.call_raw(
                        self.make_adapter(), action, copy.deepcopy(params), self.make_context()
                    )
                except ConnectorError:
                    continue
                except Exception as exc:
                    self.fail(f"{action}: raised {type(exc).__name__}: {exc}; raise ConnectorError instead.")
                self.assertNotIn((action, params), must_fail, f"{action} was expected to fail but returned")
                self.assertTrue(is_json(result), f"{action} returned something that is not JSON: {result!r}")

    def test_contract_validate_config(self) -> None:
        """``valid_config`` is accepted; each of ``invalid_configs`` is refused: ``validate_config``
        raises (what it raises is the optional ``config_errors_are_config_errors``)."""
        if self.valid_config is None and not self.invalid_configs:
            self.skipTest("declare valid_config and/or invalid_configs to check validate_config")
        adapter: Any = self.make_adapter()
        if self.valid_config is not None:
            try:
                adapter.validate_config(dict(self.valid_config))
            except Exception as exc:
                self.fail(f"valid_config was refused: {type(exc).__name__}: {exc}")
        for config in self.invalid_configs:
            with self.subTest(config=config):
                try:
                    adapter.validate_config(dict(config))
                except Exception:  # refused: what with is the optional check's business
                    continue
                self.fail(f"invalid config {config!r} was accepted: validate_config must raise")

    def test_contract_optional_config_errors_are_config_errors(self) -> None:
        """A refused configuration is a ``ConnectorConfigError`` (never retryable)."""
        if not self.invalid_configs:
            self.fail("declare invalid_configs for this check")
        adapter: Any = self.make_adapter()
        for config in self.invalid_configs:
            with self.subTest(config=config), self.assertRaises(ConnectorConfigError):
                adapter.validate_config(dict(config))

    def test_contract_sample_results_are_json_and_inputs_untouched(self) -> None:
        for action, params in self.sample_actions().items():
            with self.subTest(action=action):
                given, context = copy.deepcopy(params), self.make_context()
                result = self.call_async(self.make_adapter(), action, given, context)
                self.assertTrue(is_json(result), f"{action} returned something that is not JSON: {result!r}")
                self.assertEqual(given, params, f"{action} changed its params")
                self.assertEqual(context, self.make_context(), f"{action} changed the context")

    def test_contract_sync_and_async_agree(self) -> None:
        """The author's entry point and the platform's ``aexecute`` give the same result, and async
        code does not block the event loop with ``time.sleep``."""
        for action, params in self.sample_actions().items():
            with self.subTest(action=action):
                raw = self.call_raw(self.make_adapter(), action, copy.deepcopy(params), self.make_context())
                awaited = self.call_async(
                    self.make_adapter(), action, copy.deepcopy(params), self.make_context()
                )
                self.assertEqual(self.comparable(raw), self.comparable(awaited))

    def comparable(self, result: Any) -> Any:
        """Override to drop what legitimately differs between two calls (ids, timestamps)."""
        return result

    def declared_actions(self) -> list[str]:
        return list(getattr(self.plugin_cls, "actions", ()) or ())
