"""Our own connectors pass the contract suite that we ship to plugin authors."""

from __future__ import annotations

from typing import Any

from automate_connectors.http import HttpConnector
from automate_connectors.log import LogConnector
from automate_testing.contracts import ConnectorContractTest


class TestLogConnector(ConnectorContractTest):
    adapter_cls = LogConnector

    def sample_actions(self) -> dict[str, dict[str, Any]]:
        return {"info": {"message": "hello"}}


class TestHttpConnector(ConnectorContractTest):
    adapter_cls = HttpConnector
