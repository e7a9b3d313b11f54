"""Registries: lazy, tolerant of broken plugins, loud when a broken plugin is asked for."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automate_connectors.adapters.base import ConnectorAdapter
from automate_core import checks
from automate_core.cli import plugins as plugins_cli
from automate_core.exceptions import DuplicatePluginError, PluginLoadError, UnknownPluginError
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


# --- discovery from installed distributions -------------------------------------------------------


def _dist(root: Path, name: str, version: str, entry_points: str) -> None:
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)


PLUGIN_MODULE = """
from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError

class Dup(ConnectorAdapter):
    code = "dup"
    name = "Dup from {dist}"

    def execute(self, action, params, context):
        return {{"from": "{dist}"}}
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginRegistry[Any]]:
    """Two distributions on sys.path: both claim ``dup``; alpha also ships a broken ``broken``."""
    _dist(
        tmp_path,
        "alpha",
        "1.0",
        "[django_automate.connectors]\ndup = alpha_mod:Dup\nbroken = alpha_broken:X\n",
    )
    _dist(tmp_path, "beta", "2.0", "[django_automate.connectors]\ndup = beta_mod:Dup\n")
    (tmp_path / "alpha_mod.py").write_text(PLUGIN_MODULE.format(dist="alpha"))
    (tmp_path / "beta_mod.py").write_text(PLUGIN_MODULE.format(dist="beta"))
    (tmp_path / "alpha_broken.py").write_text("import does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh: PluginRegistry[Any] = PluginRegistry(registry.CONNECTORS, ConnectorAdapter, "aexecute", "execute")
    monkeypatch.setitem(registry._registries, registry.CONNECTORS, fresh)
    yield fresh
    for name in ("alpha_mod", "beta_mod", "alpha_broken"):
        sys.modules.pop(name, None)


def test_listing_is_lazy(installed: PluginRegistry[Any]) -> None:
    assert {"dup", "broken", "http"} <= set(installed.codes())
    assert "alpha_mod" not in sys.modules and "alpha_broken" not in sys.modules


def test_a_broken_plugin_is_recorded_and_named_use_fails_loudly(installed: PluginRegistry[Any]) -> None:
    with pytest.raises(PluginLoadError, match=r"'broken'.*from alpha.*ModuleNotFoundError") as first:
        installed.get("broken")
    with pytest.raises(PluginLoadError) as again:  # the recorded error, not a second import
        installed.get("broken")
    assert again.value is first.value
    assert installed.get("http").code == "http"  # the rest of the platform is unaffected


def test_duplicate_codes_fail_closed_until_settings_pick_one(
    installed: PluginRegistry[Any], settings: Any
) -> None:
    with pytest.raises(DuplicatePluginError, match=r"alpha 1\.0.*beta 2\.0"):
        installed.get("dup")
    settings.AUTOMATE_PLUGINS = {registry.CONNECTORS: {"dup": "beta_mod:Dup"}}
    installed.refresh()
    assert installed.get_class("dup").name == "Dup from beta"


def test_cli_and_system_check_show_broken_plugins(installed: PluginRegistry[Any]) -> None:
    out = io.StringIO()
    assert plugins_cli.run({"json": True}, out) == 1
    rows = {(r["group"], r["code"]): r for r in json.loads(out.getvalue())}
    broken = rows[(registry.CONNECTORS, "broken")]
    assert broken["status"] == "error" and "ModuleNotFoundError" in broken["error"]
    assert "alpha 1.0" in broken["distribution"]
    http = rows[(registry.CONNECTORS, "http")]
    assert (http["status"], http["mode"], http["target"]) == (
        "ok",
        "async",
        "automate_connectors.http:HttpConnector",
    )
    assert rows[(registry.SECRETS_BACKENDS, "db")]["mode"] == "sync"
    text = io.StringIO()
    plugins_cli.run({"json": False}, text)
    assert "ERROR: Plugin 'broken'" in text.getvalue()
    ids = {(m.id, m.obj) for m in checks.plugins_load()}
    assert ("automate.W001", f"{registry.CONNECTORS}:broken") in ids
    assert ("automate.W001", f"{registry.CONNECTORS}:dup") in ids


def test_settings_naming_a_missing_backend_is_an_error(settings: Any) -> None:
    settings.AUTOMATE_SECRETS_BACKENDS = ["env", "nope"]
    messages = checks.plugins_named_in_settings()
    assert [m.id for m in messages] == ["automate.E002"]
    assert "No plugin 'nope'" in messages[0].msg
    settings.AUTOMATE_SECRETS_BACKENDS = ["db"]
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = []
    assert [m.id for m in checks.plugins_named_in_settings()] == ["automate.E003"]


def test_mode_is_decided_once_per_class_by_the_mro_rule() -> None:
    class Dual(ConnectorAdapter):
        code, name = "dual", "Dual"

        def execute(self, action: str, params: dict, context: dict) -> Any:
            return "sync"

        async def aexecute(self, action: str, params: dict, context: dict) -> Any:
            return "async"

    class SyncOverride(Dual):  # overrides only execute: the inherited aexecute must not shadow it
        def execute(self, action: str, params: dict, context: dict) -> Any:
            return "sub-sync"

    assert (Good.plugin_mode, AsyncGood.plugin_mode, Dual.plugin_mode) == ("sync", "coroutine", "native")
    assert SyncOverride.plugin_mode == "sync"
