"""The small commands a new user tries: export round-trips sources, workflows can be disabled,
enabled and deleted, counts read right, empty listings say so, bulk replay progress reads as
text, and `/` lands somewhere useful."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from automate_core import definitions
from automate_core.cli.load import summary
from automate_core.cli.replay import describe_progress
from automate_core.cli.words import plural
from automate_core.models import Schedule, Step, WebhookSource, Workflow, WorkflowVersion

pytestmark = pytest.mark.django_db

FILE = {
    "sources": [
        {"slug": "shop", "name": "Shop", "scheme": "hmac_sha256", "secret_ref": "env:SHOP_HOOK",
         "config": {"event_type_header": "X-Shop-Event"}},
        {"slug": "crm", "scheme": "github", "secret_ref": "CRM_HOOK", "enabled": False},
    ],
    "workflows": [
        {"name": "orders", "trigger": {"source": "shop", "event_type": "order.*"},
         "steps": [{"name": "s", "connector": "log", "action": "info", "params": {"message": "hi"}}]},
        {"name": "leads", "enabled": False, "trigger": {"source": "crm"},
         "steps": [{"name": "s", "connector": "log", "action": "info", "params": {"message": "lead"}}]},
    ],
    "schedules": [{"name": "nightly", "cron": "0 3 * * *", "payload": {"x": 1}}],
}  # fmt: skip


def automate(*args: str) -> str:
    out = io.StringIO()
    call_command("automate", *args, stdout=out)
    return out.getvalue()


def state() -> dict[str, Any]:
    return {
        "sources": list(WebhookSource.objects.order_by("slug").values("slug", "name", "scheme", "secret_ref",
                                                                       "config", "enabled")),
        "workflows": list(Workflow.objects.order_by("name").values("name", "enabled", "source_pattern")),
        "steps": list(Step.objects.order_by("workflow__name").values("workflow__name", "name", "params")),
        "schedules": list(Schedule.objects.values("name", "cron", "payload", "event_type", "enabled")),
    }  # fmt: skip


def test_export_then_load_into_an_empty_installation_round_trips(tmp_path: Path) -> None:
    definitions.load(FILE)
    before = state()
    target = tmp_path / "all.yaml"
    assert (
        automate("export", "-o", str(target)) == f"2 sources, 2 workflows, 1 schedule written to {target}\n"
    )
    exported = yaml.safe_load(target.read_text())
    assert [s["slug"] for s in exported["sources"]] == ["crm", "shop"]
    for model in (Schedule, Workflow, WebhookSource):
        model.objects.all().delete()
    definitions.load_file(target)
    assert state() == before


def test_export_of_named_workflows_takes_the_sources_their_trigger_matches() -> None:
    definitions.load(FILE)
    exported = yaml.safe_load(automate("export", "orders"))
    assert [s["slug"] for s in exported["sources"]] == ["shop"] and "schedules" not in exported
    assert "sources" not in yaml.safe_load(automate("export", "orders", "--no-sources"))


def test_disable_enable_and_delete_a_workflow() -> None:
    definitions.load(FILE)
    listing = automate("workflow", "list")
    assert "leads" in listing and "disabled" in listing and "orders" in listing
    assert automate("workflow", "disable", "orders") == "orders: disabled\n"
    assert not Workflow.objects.get(name="orders").enabled
    assert automate("workflow", "enable", "orders", "leads") == "leads: enabled\norders: enabled\n"
    assert Workflow.objects.filter(enabled=True).count() == 2
    preview = automate("workflow", "delete", "orders")
    assert preview == "would delete orders: 1 step, 1 version (its 0 runs stay); add --yes to delete\n"
    assert Workflow.objects.filter(name="orders").exists()
    assert automate("workflow", "delete", "orders", "--yes").startswith("deleted orders: 1 step, 1 version")
    assert not Workflow.objects.filter(name="orders").exists()
    assert not WorkflowVersion.objects.filter(workflow__name="orders").exists()
    with pytest.raises(CommandError, match="No workflow named 'orders'"):
        automate("workflow", "disable", "orders")
    with pytest.raises(CommandError, match="needs one or more workflow names"):
        automate("workflow", "delete")


def test_counts_are_singular_for_one_and_empty_listings_say_so(settings: Any) -> None:
    assert [plural(n, "source") for n in (0, 1, 2)] == ["0 sources", "1 source", "2 sources"]
    counts = {"sources": 1, "workflows": 1, "versions": 1, "steps": 2, "schedules": 0}
    assert summary(counts) == "1 source, 1 workflow (1 new version), 2 steps, 0 schedules loaded"
    assert automate("workflow", "list").startswith("No workflows yet")
    settings.AUTOMATE_SECRETS_BACKENDS = {"env": {"BACKEND": "env"}, "db": {"BACKEND": "db"}}
    assert automate("secrets", "list").startswith("No secrets stored in the db backend (add one: printf")


def test_bulk_replay_progress_reads_as_text() -> None:
    state = {"id": 4, "status": "running", "mode": "current", "filter": {"workflow": "orders", "since": "2h"},
             "total": 8, "queued": 2, "runs": {"succeeded": 1, "failed": 1}}  # fmt: skip
    assert describe_progress(state) == (
        "bulk replay #4: running, mode current, filter since=2h, workflow=orders\n"
        "  queued 2 of 8 runs (25%)\n"
        "  runs: 1 failed, 1 succeeded\n"
    )
    empty = describe_progress({**state, "total": 0, "queued": 0, "runs": {}, "filter": {}})
    assert "filter all runs" in empty and "queued 0 of 0 runs\n" in empty and "runs: none yet" in empty


def test_the_start_page_in_development_and_the_console_otherwise(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DEBUG = False
    answer = Client().get("/")
    assert answer.status_code == 302 and answer["Location"] == "/admin/automate/dashboard/"
    settings.DEBUG = True
    monkeypatch.setenv("AUTOMATE_SECRET_DEMO_WEBHOOK", "demo-secret-for-the-page")
    page = Client().get("/").content.decode()
    assert 'href="/admin/automate/dashboard/"' in page and "/hooks/demo/" in page
    assert "X-Automate-Signature: sha256=" in page and "demo-secret-for-the-page" not in page
    monkeypatch.delenv("AUTOMATE_SECRET_DEMO_WEBHOOK")
    assert "/hooks/demo/" not in Client().get("/").content.decode()  # no demo: no curl
