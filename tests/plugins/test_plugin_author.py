"""A plugin author's test module, in their own package with no settings, runs under plain pytest.

The module below is the seed document's example, written to a temporary package and run in a
fresh interpreter: once with a correct connector (the contract passes and the author's own test
runs) and once with a broken one (the contract must fail).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ADAPTER_OK = """
from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError

class MyERPAdapter(ConnectorAdapter):
    code = "my_erp"
    name = "My ERP"

    def execute(self, action, params, context):
        if action != "create_order":
            raise ConnectorError(f"unknown action {action}", retryable=False)
        return {"order": params.get("id")}
"""

ADAPTER_BROKEN = """
from automate_connectors.adapters.base import ConnectorAdapter

class MyERPAdapter(ConnectorAdapter):
    code = "My ERP!"
    name = ""

    def execute(self, action, params, context):
        return params[action]  # KeyError instead of ConnectorError
"""

TEST_MODULE = """
from automate_testing.contracts import ConnectorContractTest
from my_app.adapters import MyERPAdapter

class TestMyERP(ConnectorContractTest):
    adapter_cls = MyERPAdapter

    def test_execute_success(self):
        # Your specific test logic
        assert MyERPAdapter().execute("create_order", {"id": 1}, {}) == {"order": 1}
"""


def run_author_suite(tmp_path: Path, adapter_source: str) -> subprocess.CompletedProcess[str]:
    pkg = tmp_path / "my_app"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "adapters.py").write_text(textwrap.dedent(adapter_source))
    (tmp_path / "test_my_erp.py").write_text(textwrap.dedent(TEST_MODULE))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:django", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip


def test_seed_example_passes_with_a_correct_connector(tmp_path: Path) -> None:
    result = run_author_suite(tmp_path, ADAPTER_OK)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 passed" in result.stdout  # eight contract checks and the author's own test


def test_contract_fails_a_broken_connector(tmp_path: Path) -> None:
    result = run_author_suite(tmp_path, ADAPTER_BROKEN)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "test_contract_identity" in result.stdout
    assert "test_contract_unknown_action_raises_connector_error" in result.stdout
