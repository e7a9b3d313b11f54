"""The example third-party package (examples/acme-automate), installed with pip the way a user
installs a plugin, is discovered through its entry points, passes its own test suite, and runs
end to end in a workflow through the worker."""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from automate_core.cli import plugins as plugins_cli
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, StepRun
from automate_core.plugins import registry
from tests.plugins.packaging import pip_install, plain_pytest, run_worker_until
from tests.plugins.servers import FakeServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-automate"


@pytest.fixture(scope="session")
def acme_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install --target``: the package and its dist-info (entry points) in a directory."""
    target = pip_install(EXAMPLE, tmp_path_factory.mktemp("acme"))
    assert list(target.glob("acme_automate-0.1.0.dist-info/entry_points.txt"))
    return target


@pytest.fixture
def acme_installed(acme_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(acme_site))
    for reg in registry.all_registries():
        reg.refresh()
    yield acme_site
    monkeypatch.undo()
    for reg in registry.all_registries():
        reg.refresh()
    for name in [m for m in sys.modules if m.startswith("acme_automate")]:
        del sys.modules[name]


def test_the_packages_own_suite_passes_under_plain_pytest(acme_site: Path, tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    shutil.copytree(EXAMPLE / "tests", tests)
    result = plain_pytest(tests, acme_site, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # 8 connector checks + 1 own test, 8 secrets checks + 1 own test
    assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout


@pytest.mark.usefixtures("acme_installed")
def test_automate_plugins_lists_the_installed_package() -> None:
    out = io.StringIO()
    plugins_cli.run({"json": True}, out)
    rows = {r["code"]: r for r in json.loads(out.getvalue())}
    tickets, secrets = rows["acme_tickets"], rows["acme_json"]
    assert (tickets["status"], tickets["mode"], tickets["distribution"]) == (
        "ok",
        "async",
        "acme-automate 0.1.0",
    )
    assert tickets["target"] == "acme_automate.tickets:AcmeTicketsConnector"
    assert (secrets["status"], secrets["mode"]) == ("ok", "sync")


@pytest.mark.usefixtures("live_db", "acme_installed")
async def test_the_plugin_runs_in_a_workflow(
    load: Callable[[dict[str, Any]], Any],
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    settings.AUTOMATE_SECRETS_BACKENDS = ["env", "acme_json"]  # only configured backends answer
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"HELPDESK_TOKEN": "acme-token-0042"}))
    monkeypatch.setenv("ACME_SECRETS_FILE", str(secrets_file))
    server.reply("POST", "/tickets", 201, {"id": 99, "url": "https://helpdesk.example.com/t/99"})
    workflow = {
        "name": "acme-flow",
        "trigger": {"source": "shop", "event_type": "order.*"},
        "secrets": ["acme_json:HELPDESK_TOKEN"],
        "steps": [
            {"name": "ticket", "connector": "acme_tickets", "action": "create_ticket",
             "params": {"base_url": server.url, "token": "{{ secret('acme_json:HELPDESK_TOKEN') }}",
                        "title": "Order {{ event.payload.id }} failed", "priority": "high"}},
            {"name": "note", "connector": "log", "action": "info",
             "params": {"message": "opened ticket {{ steps.ticket.output.id }}"}},
        ],
    }  # fmt: skip
    await sync_to_async(load)({"workflows": [workflow]})
    result = await sync_to_async(emit)("shop", "order.failed", {"id": 7})

    await run_worker_until(lambda: OutboxJob.objects.filter(status__in=["completed", "dead"]).exists())

    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    steps = [s async for s in StepRun.objects.filter(run=run).order_by("position")]
    assert run.status == "succeeded", (run.error, [s.error for s in steps])
    assert steps[0].output == {"id": 99, "url": "https://helpdesk.example.com/t/99"}
    assert steps[1].output == {"logged": "opened ticket 99", "level": "info"}
    request = server.requests[0]
    assert request.headers["authorization"] == "Bearer acme-token-0042"
    assert request.json() == {"title": "Order 7 failed", "body": "", "priority": "high"}
    assert steps[0].input == {
        "base_url": server.url,
        "token": "***",
        "title": "Order 7 failed",
        "priority": "high",
    }
