"""The run journal's group commit: concurrent jobs share transactions, each write returns durable,
and one record the database refuses fails only its own write."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async

from automate_core import db
from automate_core.execution import grouped
from automate_core.execution.grouped import GroupedJournalWrites
from automate_core.execution.journal import RunJournal, StepRecord
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, StepRun, Workflow
from tests.worker.conftest import drain

pytestmark = pytest.mark.usefixtures("live_db")


def step(output: object) -> StepRecord:
    at = datetime.now(UTC)
    return StepRecord(0, "s", "log", "write", "succeeded", {"in": 1}, output, "", at, at)


journal_workflow: list[int] = []


@pytest.fixture(autouse=True)
async def one_workflow(live_db: None, workflow: Callable[..., Any]) -> None:
    await workflow({"name": "s", "connector": "log", "action": "info"})
    journal_workflow[:] = [(await Workflow.objects.aget()).pk]


async def start(journal: RunJournal, event_id: int) -> int:
    return await journal.start_run(
        workflow_id=journal_workflow[0],
        workflow_name="wf",
        event_id=event_id,
        job_id=None,
        attempt=1,
        trace_id="t",
    )


async def test_concurrent_runs_share_commits_and_are_all_durable(monkeypatch: pytest.MonkeyPatch) -> None:
    writes = GroupedJournalWrites(flushers=1)
    monkeypatch.setattr("automate_core.execution.journal.writer", lambda: writes)
    event_id = (await sync_to_async(emit)("shop", "order.created", {})).event_id
    journal = RunJournal()

    async def one_run(i: int) -> int:
        run_id = await start(journal, event_id)
        assert await journal.record_step(run_id, step({"i": i})) == "running"
        assert await journal.finish_run(run_id, "succeeded") == "succeeded"
        return run_id

    run_ids = await asyncio.gather(*(one_run(i) for i in range(50)))
    assert len(set(run_ids)) == 50
    assert writes.flushes < 50  # 150 writes; with one flusher they gather behind each other
    assert await ExecutionRun.objects.filter(status="succeeded").acount() == 50
    outputs = sorted([(s.output or {})["i"] async for s in StepRun.objects.filter(run_id__in=run_ids)])
    assert outputs == list(range(50))  # each step went to its own run


async def test_a_record_the_database_refuses_fails_only_its_own_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes = GroupedJournalWrites(flushers=1)
    monkeypatch.setattr("automate_core.execution.journal.writer", lambda: writes)
    event_id = (await sync_to_async(emit)("shop", "order.created", {})).event_id
    journal = RunJournal()
    runs = [await start(journal, event_id) for _ in range(3)]
    results = await asyncio.gather(
        journal.record_step(runs[0], step("fine")),
        journal.record_step(runs[1], step("nul \x00 is not storable in jsonb")),
        journal.record_step(runs[2], step("fine too")),
        return_exceptions=True,
    )
    assert results[0] == results[2] == "running"
    assert isinstance(results[1], Exception)
    assert [s.run_id async for s in StepRun.objects.order_by("run_id")] == [runs[0], runs[2]]


@pytest.mark.parametrize(("delay", "commits"), [(0.2, 1), (0.0, 2)])
async def test_a_one_step_run_is_one_commit_written_whole_at_its_end(
    monkeypatch: pytest.MonkeyPatch, workflow: Callable[..., Any], settings: Any, delay: float, commits: int
) -> None:
    """A plain run that ends within AUTOMATE_RUN_START_DELAY is written once, whole, with its step
    record: one journal commit. With the delay at 0 its start is written first, then its last step
    record with its end (nothing runs between those two: one write), so two commits."""
    settings.AUTOMATE_RUN_START_DELAY = delay
    await workflow({"name": "s", "connector": "log", "action": "info", "params": {"message": "hi"}})
    writes = GroupedJournalWrites(flushers=1)
    monkeypatch.setattr("automate_core.execution.journal.writer", lambda: writes)
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    assert writes.flushes == commits
    run = await ExecutionRun.objects.aget()
    recorded = await StepRun.objects.aget(run=run)
    assert (recorded.status, recorded.connector) == ("succeeded", "log")
    assert run.finished_at is not None
    assert run.started_at <= recorded.started_at <= recorded.finished_at <= run.finished_at


async def test_closing_a_run_reports_how_it_stood_when_its_last_step_was_recorded() -> None:
    """``close_run`` records the step whatever happened to the run meanwhile, and ends only a
    running run: a run cancelled (or abandoned by a new claim) while its last step ran keeps that
    status, and the caller learns it as ``record_step`` would have told it."""
    event_id = (await sync_to_async(emit)("shop", "order.created", {})).event_id
    journal = RunJournal()
    running, cancelled, abandoned = [await start(journal, event_id) for _ in range(3)]
    await ExecutionRun.objects.filter(pk=cancelled).aupdate(status="cancelled")
    await ExecutionRun.objects.filter(pk=abandoned).aupdate(status="failed", error="abandoned")
    answers = await asyncio.gather(
        *(
            journal.close_run(run_id, "succeeded", "", step({"run": run_id}))
            for run_id in (running, cancelled, abandoned)
        )
    )
    assert answers == [("running", "succeeded"), ("cancelled", None), ("failed", None)]
    statuses = {r.pk: r.status async for r in ExecutionRun.objects.all()}
    assert statuses == {running: "succeeded", cancelled: "cancelled", abandoned: "failed"}
    assert await StepRun.objects.filter(run_id__in=[running, cancelled, abandoned]).acount() == 3


async def test_a_flush_plans_only_the_day_partitions_of_its_runs() -> None:
    """The step records' and the runs' ends statements read runs by a constant array of ids, so
    the planner keeps only the partitions those ids name: their cost does not grow with the days
    of history kept (a per-row lookup would plan every partition of automate_run at every flush)."""
    event_id = (await sync_to_async(emit)("shop", "order.created", {})).event_id
    journal = RunJournal()
    run_id = await start(journal, event_id)
    today = f"automate_run_p{datetime.now(UTC):%Y%m%d}"
    records: dict[grouped.Kind, list[dict[str, Any]]] = {
        "step": [RunJournal._step_record(run_id, step({"x": 1}))],
        "finish": [{"run_id": run_id, "status": "succeeded", "error": "", "job_id": None, "claim": None}],
    }
    pool = await db.get_pool()
    async with pool.connection() as conn:
        partitions = await (
            await conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'automate_run'::regclass")
        ).fetchone()
        assert partitions is not None and partitions[0] >= 3  # legacy, today, the days ahead
        for kind, rows in records.items():
            statement = psycopg.AsyncClientCursor(conn).mogrify(
                grouped.STATEMENTS[kind], grouped._params(kind, rows)
            )
            cur = await conn.execute(("EXPLAIN (FORMAT JSON) " + statement).encode())
            found = await cur.fetchone()
            assert found is not None
            read = {n["Relation Name"] for n in _nodes(found[0][0]["Plan"]) if "Relation Name" in n}
            assert {r for r in read if re.fullmatch(r"automate_run_(p\d{8}|legacy)", r)} == {today}, (
                kind,
                read,
            )


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
