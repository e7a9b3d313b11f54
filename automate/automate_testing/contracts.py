"""Contract test base classes for plugin authors.

Subclass one, set the class attribute, and run ``pytest`` (or ``python -m unittest``); no Django
settings module of yours is needed::

    from automate_testing.contracts import ConnectorContractTest
    from my_app.adapters import MyERPAdapter

    class TestMyERP(ConnectorContractTest):
        adapter_cls = MyERPAdapter

        def test_execute_success(self):
            ...

The base classes themselves are never collected as tests; a subclass that sets the attribute
is, with your own tests beside the contract's ``test_contract_*`` checks.
"""

from __future__ import annotations

import asyncio
import json
import re
import unittest
from typing import Any, ClassVar

from automate_testing import _django

_django.ensure_configured()

from automate_connectors.adapters.base import (  # noqa: E402
    ConnectorAdapter,
    ConnectorError,
)

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

__all__ = ["ConnectorContractTest"]


class _ContractBase(unittest.TestCase):
    """Shared mechanics: not collected itself; a subclass is, once it names its plugin class."""

    __test__ = False
    _plugin_attr: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._plugin_attr and getattr(cls, cls._plugin_attr, None) is not None:
            cls.__test__ = True

    @classmethod
    def setUpClass(cls) -> None:
        if getattr(cls, cls._plugin_attr, None) is None:
            raise unittest.SkipTest(f"{cls.__name__} is an abstract contract; set {cls._plugin_attr}.")
        super().setUpClass()

    @staticmethod
    def run_async(coro: Any) -> Any:
        return asyncio.run(coro)


class ConnectorContractTest(_ContractBase):
    """The checks every connector must pass."""

    _plugin_attr = "adapter_cls"
    adapter_cls: ClassVar[type[ConnectorAdapter] | None] = None
    #: Action name that the connector certainly does not support.
    unknown_action: ClassVar[str] = "__automate_contract_unknown__"

    def make_adapter(self) -> ConnectorAdapter:
        assert self.adapter_cls is not None
        return self.adapter_cls()

    def make_context(self) -> dict[str, Any]:
        return {"run_id": 0, "workflow": "contract", "step": "contract", "event_id": 0,
                "trace_id": "0" * 32, "attempt": 1, "dry_run": False}  # fmt: skip

    def test_contract_identity(self) -> None:
        cls = self.adapter_cls
        assert cls is not None
        code, name = getattr(cls, "code", None), getattr(cls, "name", None)
        self.assertIsInstance(code, str, f"{cls.__name__}.code must be a string")
        self.assertRegex(code or "", CODE_PATTERN, f"{cls.__name__}.code must match {CODE_PATTERN.pattern}")
        self.assertIsInstance(name, str, f"{cls.__name__}.name must be a string")
        self.assertTrue(name, f"{cls.__name__}.name must not be empty")

    def test_contract_instantiates_without_arguments(self) -> None:
        self.assertIsInstance(self.make_adapter(), ConnectorAdapter)

    def test_contract_unknown_action_raises_connector_error(self) -> None:
        adapter = self.make_adapter()
        with self.assertRaises(ConnectorError) as caught:
            self.run_async(adapter.aexecute(self.unknown_action, {}, self.make_context()))
        self.assertFalse(caught.exception.retryable, "an unknown action can never succeed on retry")

    def test_contract_validate_config_accepts_empty(self) -> None:
        adapter: Any = self.make_adapter()  # validate_config may return something by mistake
        result = adapter.validate_config({})
        self.assertIsNone(result, "validate_config returns None when valid and raises otherwise")

    def test_contract_result_is_json(self) -> None:
        """Results of the declared sample actions must be JSON (they are stored in run records)."""
        for action, params in self.sample_actions().items():
            with self.subTest(action=action):
                result = self.run_async(self.make_adapter().aexecute(action, params, self.make_context()))
                json.dumps(result)

    def sample_actions(self) -> dict[str, dict[str, Any]]:
        """Override: ``{action: params}`` that succeed offline, for the result checks."""
        return {}
