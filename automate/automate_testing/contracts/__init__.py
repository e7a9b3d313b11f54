"""Contract test suites for plugin authors: ``ConnectorContractTest``, ``SecretsBackendContractTest``
and ``LLMProviderContractTest``.

Subclass one, set the class attribute, and run ``pytest`` (or ``python -m unittest``); no Django
settings module of yours is needed::

    from automate_testing.contracts import ConnectorContractTest
    from my_app.adapters import MyERPAdapter

    class TestMyERP(ConnectorContractTest):
        adapter_cls = MyERPAdapter

        def test_execute_success(self):
            ...

The base classes themselves are never collected as tests; a subclass that sets the attribute
is, with your own tests beside the contract's ``test_contract_*`` checks. Opt out of a check only
with a reason: ``contract_skips = {"test_contract_x": "why it does not apply"}``.
"""

from __future__ import annotations

from automate_testing import _django

_django.ensure_configured()

from automate_testing.contracts._base import CODE_PATTERN, ContractTest, no_io  # noqa: E402
from automate_testing.contracts.connectors import ConnectorContractTest  # noqa: E402
from automate_testing.contracts.llm import LLMProviderContractTest  # noqa: E402
from automate_testing.contracts.secrets import SecretsBackendContractTest  # noqa: E402

__all__ = [
    "CODE_PATTERN",
    "ConnectorContractTest",
    "ContractTest",
    "LLMProviderContractTest",
    "SecretsBackendContractTest",
    "no_io",
]
