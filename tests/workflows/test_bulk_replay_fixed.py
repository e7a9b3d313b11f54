"""A bulk replay does not repeat the side effects of events that were fixed (or replayed) since.

``automate replay --workflow W --status failed --since 1h`` used to match every failed run, so an
event whose failed run had already been fixed by a later replay was replayed again (the receiver
got a second "ticket"), and an event replayed twice without success got two new replays. Now each
event counts once per workflow, by its latest run, and the preview says what it skipped.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from automate_core import definitions
from automate_core.execution import replay
from automate_core.models import BulkReplay, Event, ExecutionRun, RunMode, Workflow
from tests.workflows.conftest import workflow

pytestmark = pytest.mark.django_db


def automate(*args: str) -> str:
    out = io.StringIO()
    call_command("automate", *args, stdout=out)
    return out.getvalue()


def setup_runs() -> dict[str, list[ExecutionRun]]:
    """Four events of workflow ``wf`` (and one run of ``other``), each with its history of runs."""
    step = {"name": "s", "connector": "log", "action": "info", "params": {"message": "m"}}
    definitions.load({"workflows": [workflow("wf", step), workflow("other", step)]})
    wf, other = Workflow.objects.get(name="wf"), Workflow.objects.get(name="other")

    def history(*runs: tuple[Workflow, str]) -> list[ExecutionRun]:
        event = Event.objects.create(source="shop", event_type="order.created", payload={}, trace_id="t")
        return [
            ExecutionRun.objects.create(workflow=w, workflow_name=w.name, version=w.current_version,
                                        event=event, status=status, trace_id="t")
            for w, status in runs
        ]  # fmt: skip

    return {
        "fixed": history((wf, "failed"), (wf, "succeeded")),  # a later replay succeeded
        "twice": history((wf, "failed"), (wf, "failed")),  # replayed once, failed again
        "once": history((wf, "failed")),
        "other_fixed": history((wf, "failed"), (other, "succeeded")),  # another workflow's success
    }


def test_a_bulk_replay_skips_fixed_and_superseded_runs_and_says_so() -> None:
    runs = setup_runs()
    latest = {runs["twice"][1].pk, runs["once"][0].pk, runs["other_fixed"][0].pk}
    filters = {"workflow": "wf", "status": "failed", "since": "1h"}
    assert set(replay.matching_runs(filters).values_list("id", flat=True)) == latest
    assert replay.preview(filters) == {"replay": 3, "fixed": 1, "superseded": 1}

    shown = automate("replay", "--workflow", "wf", "--status", "failed", "--since", "1h")
    assert shown.startswith("3 runs match")
    assert "skipping 1 whose event's workflow has succeeded since" in shown
    assert "1 whose event was replayed again since" in shown and "--include-fixed" in shown
    assert not BulkReplay.objects.exists()  # a preview changes nothing

    started = automate("replay", "--workflow", "wf", "--status", "failed", "--since", "1h", "--yes")
    bulk = BulkReplay.objects.get()
    assert "started for 3 runs" in started and "skipping 1" in started
    assert replay.advance_bulk(bulk.pk)
    queued = ExecutionRun.objects.filter(bulk_replay=bulk)
    assert set(queued.values_list("parent_id", flat=True)) == latest  # each open event once
    # run again, the same bulk replay finds nothing left: the replays it queued are the latest now
    again = automate("replay", "--workflow", "wf", "--status", "failed", "--since", "1h")
    assert again.startswith("0 runs match") and "skipping 1 whose event's workflow" in again


def test_include_fixed_replays_every_matching_run() -> None:
    runs = setup_runs()
    shown = automate("replay", "--workflow", "wf", "--status", "failed", "--include-fixed")
    assert shown.startswith("5 runs match") and "skipping" not in shown
    automate("replay", "--workflow", "wf", "--status", "failed", "--include-fixed", "--yes")
    bulk = BulkReplay.objects.get()
    assert bulk.total == 5
    assert replay.advance_bulk(bulk.pk)
    parents = set(ExecutionRun.objects.filter(bulk_replay=bulk).values_list("parent_id", flat=True))
    assert parents == {r.pk for history in runs.values() for r in history if r.status == "failed"}


def test_a_run_fixed_after_the_bulk_replay_started_is_skipped_when_its_chunk_comes() -> None:
    runs = setup_runs()
    bulk = replay.start_bulk({"workflow": "wf", "status": "failed"}, RunMode.CURRENT)
    assert bulk.total == 3
    once = runs["once"][0]
    ExecutionRun.objects.create(workflow=once.workflow, workflow_name="wf", version=once.version,
                                event=once.event, status="succeeded", trace_id="t")  # fmt: skip
    assert replay.advance_bulk(bulk.pk)
    parents = set(ExecutionRun.objects.filter(bulk_replay=bulk).values_list("parent_id", flat=True))
    assert parents == {runs["twice"][1].pk, runs["other_fixed"][0].pk}


@pytest.mark.parametrize("mode", ["resume", "current", "original"])
def test_every_bulk_mode_skips_fixed_runs(mode: str) -> None:
    runs = setup_runs()
    automate("replay", "--workflow", "wf", "--status", "failed", "--mode", mode, "--yes")
    bulk = BulkReplay.objects.get()
    assert replay.advance_bulk(bulk.pk)
    parents = set(ExecutionRun.objects.filter(bulk_replay=bulk).values_list("parent_id", flat=True))
    assert runs["fixed"][0].pk not in parents and runs["twice"][0].pk not in parents
    assert len(parents) == 3
