"""Every code snippet in docs/extending.md is tested.

* The contract classes (the seed's) must match the real base classes: same methods, parameter
  names, abstract methods.
* The walkthrough's files (``# file: <path>`` on their first line) are written out as a package,
  installed with pip, their tests (and the seed's test snippet) run under plain pytest, and their
  workflow file runs through the worker against a local stand-in for the ERP.
* Settings snippets are evaluated and checked against the code that reads them; the seed's
  ``pyproject.toml`` fragment names the real entry-point groups; the ``llm`` step validates.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import re
import sys
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from asgiref.sync import sync_to_async

from automate_connectors.adapters.base import ConnectorAdapter
from automate_core import definitions
from automate_core.cli import plugins as plugins_cli
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, StepRun
from automate_core.plugins import registry
from automate_governance import budgets
from automate_governance.secrets.interfaces import SecretsBackend
from automate_llm.providers.base import LLMProvider
from tests.plugins.packaging import pip_install, plain_pytest, run_worker_until
from tests.plugins.servers import FakeServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"
FENCE = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.S | re.M)
REAL = {"ConnectorAdapter": ConnectorAdapter, "SecretsBackend": SecretsBackend, "LLMProvider": LLMProvider}


def snippets(lang: str) -> list[str]:
    out = []
    for found, code in FENCE.findall(DOC.read_text(encoding="utf-8")):
        if found == lang:
            lines = code.splitlines()
            indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
            out.append("\n".join(x[indent:] for x in lines) + "\n")
    return out


def file_of(code: str) -> str | None:
    first = code.splitlines()[0] if code.strip() else ""
    return first.removeprefix("# file: ").strip() if first.startswith("# file: ") else None


def kind(code: str) -> str:
    if file_of(code):
        return "file"
    tree = ast.parse(code)
    if all(isinstance(node, ast.Assign) for node in tree.body):
        return "settings"
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    if classes and all(c.name in REAL for c in classes):
        return "contract"
    if "ContractTest" in code:
        return "test module"
    return "untested"


def test_every_python_snippet_is_tested() -> None:
    kinds = [kind(code) for code in snippets("python")]
    assert "untested" not in kinds, "a python snippet in docs/extending.md falls in no tested category"
    assert kinds.count("contract") == 3 and kinds.count("test module") == 1
    assert {lang for lang, _ in FENCE.findall(DOC.read_text())} <= {"python", "toml", "yaml", "sh", ""}


def test_the_documented_contracts_are_the_real_ones() -> None:
    for code in (c for c in snippets("python") if kind(c) == "contract"):
        namespace: dict[str, Any] = {"ABC": ABC, "abstractmethod": abstractmethod, "Any": Any}
        exec(compile(code, "extending.md", "exec"), namespace)
        for name, real in REAL.items():
            documented = namespace.get(name)
            if documented is None:
                continue
            assert documented.__abstractmethods__ == real.__abstractmethods__, name
            for attr, func in vars(documented).items():
                if not inspect.isfunction(func):
                    continue
                params = list(inspect.signature(func).parameters)
                assert params == list(inspect.signature(getattr(real, attr)).parameters), f"{name}.{attr}"
            for attr in getattr(documented, "__annotations__", {}):
                assert attr in getattr(real, "__annotations__", {}) or hasattr(real, attr), f"{name}.{attr}"


def test_the_seed_entry_point_groups_are_the_real_ones() -> None:
    groups = {registry.CONNECTORS, registry.SECRETS_BACKENDS, registry.LLM_PROVIDERS}
    for code in snippets("toml"):
        data = tomllib.loads(code)
        assert set(data["project"]["entry-points"]) <= groups


def test_settings_snippets_mean_what_the_guide_says(settings: Any) -> None:
    values: dict[str, Any] = {}
    for code in (c for c in snippets("python") if kind(c) == "settings"):
        exec(compile(code, "extending.md", "exec"), {}, values)
    assert set(values["AUTOMATE_PLUGINS"]) <= {
        registry.CONNECTORS,
        registry.SECRETS_BACKENDS,
        registry.LLM_PROVIDERS,
    }
    assert all(reason.strip() for reason in values["contract_skips"].values())
    settings.AUTOMATE_LLM_BUDGETS = values["AUTOMATE_LLM_BUDGETS"]
    found = {(limit.scope, limit.key, limit.tokens) for limit in budgets.limits("triage", 7)}
    assert found == {("global", "", 2_000_000), ("workflow", "triage", 50_000), ("run", "7", 20_000)}
    assert ("workflow", "other", 200_000) in {
        (x.scope, x.key, x.tokens) for x in budgets.limits("other", None)
    }


@pytest.mark.django_db
def test_the_llm_step_snippet_is_a_valid_step() -> None:
    [step_code] = [c for c in snippets("yaml") if not file_of(c)]
    [step] = yaml.safe_load(step_code)
    definitions.validate_step("docs", step)


# --- the walkthrough, as a user follows it ---------------------------------------------------------


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The walkthrough's files written out as a project, and where pip installed it."""
    project = tmp_path_factory.mktemp("walkthrough") / "project"
    files = {file_of(c): c for c in snippets("python") + snippets("toml") + snippets("yaml") if file_of(c)}
    seed_test = next(c for c in snippets("python") if kind(c) == "test module")
    files["tests/test_seed_snippet.py"] = seed_test
    for name, code in files.items():
        assert name is not None
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code, encoding="utf-8")
    assert {"pyproject.toml", "my_app/adapters.py", "my_app/secrets.py", "workflow.yaml"} <= set(files)
    site = pip_install(project, project.parent)
    return project, site


def test_the_walkthrough_tests_pass(walkthrough: tuple[Path, Path]) -> None:
    project, site = walkthrough
    result = plain_pytest(project / "tests", site, project.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    # 8 + 1 (connector), 8 (secrets), 8 + 1 (the seed's TestMyERP and its own test)
    assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout


@pytest.fixture
def installed(walkthrough: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    project, site = walkthrough
    monkeypatch.syspath_prepend(str(site))
    for reg in registry.all_registries():
        reg.refresh()
    yield project
    monkeypatch.undo()
    for reg in registry.all_registries():
        reg.refresh()
    for name in [m for m in sys.modules if m == "my_app" or m.startswith("my_app.")]:
        del sys.modules[name]


@pytest.mark.usefixtures("live_db")
async def test_the_walkthrough_workflow_runs(
    installed: Path,
    load: Callable[[dict[str, Any]], Any],
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    settings.AUTOMATE_SECRETS_BACKENDS = ["env", "team_passwords"]  # as the walkthrough says
    out = io.StringIO()
    plugins_cli.run({"json": True}, out)
    rows = {r["code"]: r for r in json.loads(out.getvalue())}
    assert (rows["my_erp"]["mode"], rows["my_erp"]["distribution"]) == ("async", "my-app-automate 1.0.0")
    assert (rows["team_passwords"]["mode"], rows["team_passwords"]["status"]) == ("sync", "ok")

    monkeypatch.setenv("MY_APP_SECRETS", json.dumps({"ERP_KEY": "erp-key-0001"}))
    server.reply("POST", "/api/orders", 201, {"id": "ERP-1"})
    data = definitions.read(installed / "workflow.yaml")
    step = data["workflows"][0]["steps"][0]
    assert step["params"]["base_url"] == "https://erp.example.com/api"
    step["params"]["base_url"] = server.url + "/api"  # the test's stand-in for the ERP
    await sync_to_async(load)(data)
    result = await sync_to_async(emit)("shop", "order.paid", {"id": 5, "amount": 12})
    await run_worker_until(lambda: OutboxJob.objects.filter(status__in=["completed", "dead"]).exists())

    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    steps = [s async for s in StepRun.objects.filter(run=run).order_by("position")]
    assert run.status == "succeeded", (run.error, [s.error for s in steps])
    assert steps[1].output == {"logged": "order 5 is ERP order ERP-1", "level": "info"}
    assert server.requests[0].headers["x-api-key"] == "erp-key-0001"
    assert server.requests[0].json() == {"reference": "5", "amount": 12}
    assert steps[0].input == {"base_url": server.url + "/api", "api_key": "***", "order_id": 5, "amount": 12}
