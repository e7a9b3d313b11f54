"""The workflow commands as a user types them: export, diff, rollback, trigger, cancel, replay, runs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from automate_core import definitions
from automate_core.models import BulkReplay, Event, ExecutionRun, OutboxJob, Workflow
from tests.workflows.conftest import workflow

pytestmark = pytest.mark.django_db


def automate(*args: str) -> str:
    out = io.StringIO()
    call_command("automate", *args, stdout=out)
    return out.getvalue()


def load(message: str) -> None:
    step = {"name": "s", "connector": "log", "action": "info", "params": {"message": message}}
    definitions.load({"workflows": [workflow("wf", step)]})


def test_export_diff_rollback(tmp_path: Path) -> None:
    load("one")
    load("two")
    listing = automate("diff", "wf")
    assert "v2" in listing and "(current)" in listing and "v1" in listing
    assert "-      message: one\n+      message: two\n" in automate("diff", "wf", "1", "2")
    assert "No differences." in automate("diff", "wf", "2", "2")
    exported = yaml.safe_load(automate("export", "wf", "--version", "1"))
    assert exported["workflows"][0]["steps"][0]["params"] == {"message": "one"}
    target = tmp_path / "all.yaml"
    assert "0 sources, 1 workflow, 0 schedules written" in automate("export", "-o", str(target))
    assert "v3 is current (same definition as v1)" in automate("rollback", "wf", "--to", "1")
    assert Workflow.objects.get().current_version.definition["steps"][0]["params"]["message"] == "one"  # type: ignore[union-attr]
    definitions.load_file(target)  # the exported file loads back: v2's definition is v4
    assert Workflow.objects.get().current_version.number == 4  # type: ignore[union-attr]
    with pytest.raises(CommandError, match="No workflow named 'nope'"):
        automate("diff", "nope")


def test_trigger_cancel_and_runs() -> None:
    load("hi {{ event.payload.who }}")
    queued = automate("trigger", "wf", "--payload", '{"who": "Ada"}')
    run = ExecutionRun.objects.get()
    assert f"run #{run.pk} queued" in queued and run.status == "queued"
    assert Event.objects.get().payload == {"who": "Ada"}
    assert OutboxJob.objects.get().payload == {"run": run.pk}
    assert "cancelled" in automate("cancel", str(run.pk))
    listed = json.loads(automate("runs", "--json"))
    assert listed[0]["status"] == "cancelled" and listed[0]["mode"] == "manual" and listed[0]["version"] == 1
    assert "cancelled" in automate("runs", str(run.pk))
    with pytest.raises(CommandError, match="not valid JSON"):
        automate("trigger", "wf", "--payload", "{oops")


def test_bulk_replay_previews_then_starts_and_refuses_an_empty_filter() -> None:
    load("x")
    wf = Workflow.objects.get()
    for _ in range(3):  # three events (runs of one event would count once: its latest)
        event = Event.objects.create(source="shop", event_type="order.created", payload={}, trace_id="t")
        ExecutionRun.objects.create(
            workflow=wf,
            workflow_name="wf",
            version=wf.current_version,
            event=event,
            status="failed",
            trace_id="t",
        )
    with pytest.raises(CommandError, match="empty filter is refused"):
        automate("replay")
    preview = automate("replay", "--workflow", "wf", "--status", "failed")
    assert "3 runs match" in preview and "--yes" in preview
    assert not BulkReplay.objects.exists()  # a preview changes nothing
    started = automate("replay", "--workflow", "wf", "--mode", "resume", "--yes")
    bulk = BulkReplay.objects.get()
    assert f"bulk replay #{bulk.pk} started for 3 runs" in started
    assert OutboxJob.objects.filter(payload={"bulk_replay": bulk.pk}).exists()  # the workers do it
    progress = json.loads(automate("replay", "--progress", str(bulk.pk), "--json"))
    shown = automate("replay", "--progress", str(bulk.pk))
    assert f"bulk replay #{bulk.pk}: pending" in shown and "queued 0 of 3 runs (0%)" in shown
    assert progress["total"] == 3 and progress["queued"] == 0 and progress["status"] == "pending"
