"""Registries: lazy, tolerant of broken plugins, loud when a broken plugin is asked for."""

from __future__ import annotations

from typing import Any

import pytest

from automate_connectors.adapters.base import ConnectorAdapter
from automate_core.exceptions import PluginLoadError, UnknownPluginError
from automate_core.plugins import registry
from automate_core.plugins.registry import PluginRegistry


class Good(ConnectorAdapter):
    code = "good"
    name = "Good"

    def execute(self, action: str, params: dict, context: dict) -> Any:
        return None


class AsyncGood(ConnectorAdapter):
    code = "agood"
    name = "Async"

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        return None


def test_builtins_are_registered_through_entry_points() -> None:
    assert {"http", "log"} <= set(registry.connectors().codes())
    assert "env" in registry.secrets_backends().codes()
    assert "echo" in registry.llm_providers().codes()


def test_unknown_code_names_what_is_installed() -> None:
    with pytest.raises(UnknownPluginError, match=r"Installed: .*http"):
        registry.connectors().get("does_not_exist")


def test_mode_is_decided_per_class() -> None:
    reg = registry.connectors()
    assert reg.is_async(AsyncGood)
    assert not reg.is_async(Good)


def test_invalid_classes_are_recorded_as_load_errors() -> None:
    reg: PluginRegistry[Any] = PluginRegistry("g", ConnectorAdapter, "aexecute", "execute")
    with pytest.raises(PluginLoadError, match="not a subclass"):
        reg.validate("x", object)
    with pytest.raises(PluginLoadError, match="entry point is named"):
        reg.validate("other", Good)

    class Abstract(ConnectorAdapter):
        code = "abstract"

    with pytest.raises(PluginLoadError, match="does not implement execute"):
        reg.validate("abstract", Abstract)
