"""Dead letters: one definition (``observability.dead_letters``), counted the same by the
dashboard's card, the outbox list's card and its link, ``automate dead`` and the
``automate_dead_letters`` gauge, over every way a dead job gets resolved or stays open."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from automate_core import definitions
from automate_core.models import Event, ExecutionRun, OutboxJob, Workflow
from automate_core.observability import dead_letters, exposition
from tests.console.test_plans import BIG, explain, indexes, nodes, scans_of_big_tables

JOBS = "/admin/automate_core/outboxjob/"
DASHBOARD = "/admin/automate/dashboard/"


@dataclass
class Case:
    open: set[int] = field(default_factory=set)  # dead letters
    resolved: set[int] = field(default_factory=set)  # dead, but resolved since


def workflows() -> tuple[Workflow, Workflow]:
    step = {"name": "s", "connector": "log", "action": "info", "params": {"message": "hi"}}
    definitions.load({
        "workflows": [
            {"name": name, "trigger": {"source": "shop", "event_type": "order.*"}, "steps": [step]}
            for name in ("billing", "shipping")
        ]
    })  # fmt: skip
    return Workflow.objects.get(name="billing"), Workflow.objects.get(name="shipping")


def new_event() -> Event:
    return Event.objects.create(source="shop", event_type="order.created", payload={}, trace_id="d" * 32)


def dead(on: Event | None, *, kind: str = "event", replay_of: OutboxJob | None = None) -> OutboxJob:
    return OutboxJob.objects.create(
        event=on, kind=kind, status="dead", attempts=5, last_error="boom", replay_of=replay_of
    )


def a_run(
    wf: Workflow, on: Event, status: str, *, job: OutboxJob | None = None, parent: ExecutionRun | None = None
) -> ExecutionRun:
    return ExecutionRun.objects.create(
        workflow=wf, workflow_name=wf.name, event=on, job=job, status=status, trace_id="d" * 32, parent=parent
    )


def every_case() -> Case:
    """Each way a dead job is resolved, and each near miss that leaves it a dead letter."""
    billing, shipping = workflows()
    case = Case()

    # nothing ran, or a Django task: only a replay resolves it
    case.open.add(dead(new_event()).pk)
    case.open.add(dead(None, kind="task").pk)

    # replayed: resolved; the replay died too: the replay is the dead letter now
    replayed = dead(new_event())
    OutboxJob.objects.create(event=replayed.event, status="completed", replay_of=replayed)
    case.resolved.add(replayed.pk)
    twice = dead(new_event())
    case.resolved.add(twice.pk)
    case.open.add(dead(twice.event, replay_of=twice).pk)

    # the failed run resumed (or replayed from the start) successfully: resolved
    e = new_event()
    job = dead(e)
    failed = a_run(billing, e, "failed", job=job)
    a_run(billing, e, "succeeded", parent=failed)
    case.resolved.add(job.pk)

    # a later delivery of the same event to the same workflow succeeded (no parent link): resolved
    e = new_event()
    job = dead(e)
    a_run(billing, e, "failed", job=job)
    a_run(billing, e, "succeeded")
    case.resolved.add(job.pk)

    # replayed with an edited payload (a new event) and that succeeded: resolved
    e = new_event()
    job = dead(e)
    failed = a_run(billing, e, "failed", job=job)
    a_run(billing, new_event(), "succeeded", parent=failed)
    case.resolved.add(job.pk)

    # a failed run next to a skipped one, the failed one resumed: resolved
    e = new_event()
    job = dead(e)
    a_run(shipping, e, "skipped", job=job)
    failed = a_run(billing, e, "failed", job=job)
    a_run(billing, e, "succeeded", parent=failed)
    case.resolved.add(job.pk)

    # near misses, each a dead letter still:
    e = new_event()  # the resume failed too
    job = dead(e)
    failed = a_run(billing, e, "failed", job=job)
    a_run(billing, e, "failed", parent=failed)
    case.open.add(job.pk)
    e = new_event()  # one of two failed workflows fixed, not the other
    job = dead(e)
    failed = a_run(billing, e, "failed", job=job)
    a_run(shipping, e, "failed", job=job)
    a_run(billing, e, "succeeded", parent=failed)
    case.open.add(job.pk)
    e = new_event()  # the same workflow succeeded, but on another event
    job = dead(e)
    a_run(billing, e, "failed", job=job)
    a_run(billing, new_event(), "succeeded")
    case.open.add(job.pk)
    e = new_event()  # another workflow succeeded on the same event
    job = dead(e)
    a_run(billing, e, "failed", job=job)
    a_run(shipping, e, "succeeded")
    case.open.add(job.pk)
    e = new_event()  # the success came before the failure, not after it
    earlier = a_run(billing, e, "succeeded")
    job = dead(e)
    later_failure = a_run(billing, e, "failed", job=job)
    assert earlier.pk < later_failure.pk
    case.open.add(job.pk)
    e = new_event()  # the resume is still running
    job = dead(e)
    failed = a_run(billing, e, "failed", job=job)
    a_run(billing, e, "running", parent=failed)
    case.open.add(job.pk)

    # not dead at all: never counted, whatever their runs
    OutboxJob.objects.create(event=new_event(), status="completed")
    OutboxJob.objects.create(event=new_event(), status="retry", last_error="503")
    return case


def admin() -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def card_value(page: str, css: str) -> int:
    """The number on the card with this class."""
    match = re.search(
        rf'class="automate-card {css}[^"]*"[^>]*>\s*<div class="value">(?:<a [^>]*>)?(\d+)', page
    )
    assert match, f"no {css} card on the page"
    return int(match.group(1))


def listed_ids(page: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'name="_selected_action" value="(\d+)"', page)}


def cli(*args: str) -> str:
    out = io.StringIO()
    call_command("automate", "dead", *args, stdout=out)
    return out.getvalue()


def the_four_in_django(case: Case) -> dict[str, Any]:
    client = admin()
    dashboard = client.get(DASHBOARD).content.decode()
    jobs_page = client.get(JOBS).content.decode()
    link = re.search(r'class="automate-card automate-dead-letters[^"]*" href="([^"]+)"', jobs_page)
    assert link, "the list's dead-letters card links nowhere"
    linked = client.get(JOBS + link.group(1).replace("&amp;", "&")).content.decode()
    listed = json.loads(cli("--json", "--limit", "1000"))
    return {
        "dashboard card": card_value(dashboard, "automate-dead-letters"),
        "list card": card_value(jobs_page, "automate-dead-letters"),
        "list the card links to": listed_ids(linked),
        "automate dead": {row["id"] for row in listed},
        "automate dead (header)": int(cli().split()[0]),
        "function": set(dead_letters.dead_letters().values_list("pk", flat=True)),
    }


@pytest.mark.usefixtures("live_db")
async def test_the_card_the_list_the_cli_and_the_gauge_agree(settings: Any) -> None:
    settings.AUTOMATE_METRICS_DB_CACHE_SECONDS = 0.0
    settings.AUTOMATE_METRICS_ALLOWED_IPS = ["127.0.0.1"]  # the scraper, named (none by default)
    exposition.database_gauges.cache_clear()
    case = await sync_to_async(every_case)()
    seen = await sync_to_async(the_four_in_django)(case)

    from asgi.asgi import application

    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        page = (await client.get("/metrics")).text
    gauge = re.search(r"^automate_dead_letters (\S+)$", page, re.M)
    assert gauge, page[-2000:]

    assert (len(case.open), len(case.resolved)) == (9, 6)  # as docs/operations.md says
    assert seen["function"] == case.open
    assert seen["list the card links to"] == seen["automate dead"] == case.open
    counts = {name: seen[name] for name in ("dashboard card", "list card", "automate dead (header)")}
    assert counts == dict.fromkeys(counts, len(case.open))
    assert float(gauge.group(1)) == len(case.open)
    # the status gauge still counts every dead job, resolved or not
    assert f'automate_outbox_jobs{{status="dead"}} {float(len(case.open) + len(case.resolved))}' in page


@pytest.mark.django_db
def test_resolved_dead_jobs_are_listed_only_when_asked_and_say_how(admin_client: Client) -> None:
    case = every_case()
    everything = {
        row["id"]: row for row in json.loads(cli("--json", "--include-resolved", "--limit", "1000"))
    }
    assert set(everything) == case.open | case.resolved
    assert {pk for pk, row in everything.items() if row["dead_letter"]} == case.open
    text = cli("--include-resolved", "--limit", "1000")
    assert "resolved: its event was run again successfully" in text and "replayed as job" in text
    page = admin_client.get(JOBS, {"dead_letters": "resolved"}).content.decode()
    assert listed_ids(page) == case.resolved
    assert page.count('class="automate-resolved"') == len(case.resolved)


@pytest.mark.django_db
def test_bulk_replay_skips_dead_jobs_whose_event_was_run_again() -> None:
    case = every_case()
    replayable = case.open  # every dead letter, by definition not replayed yet
    preview = cli("replay", "--all", "--dry-run")
    assert preview.startswith(f"{len(replayable)} dead jobs would be replayed")
    assert "whose event was run again successfully since were skipped" in preview
    cli("replay", "--all")
    newly = set(
        OutboxJob.objects.filter(replay_of__isnull=False, status="ready").values_list("replay_of", flat=True)
    )
    assert newly == replayable  # none of the resolved ones
    assert dead_letters.count() == 0


def test_nothing_left_says_why_when_dead_jobs_were_resolved(db: None) -> None:
    assert cli() == "No dead jobs.\n"
    e = new_event()
    replayed = dead(e)
    OutboxJob.objects.create(event=e, status="completed", replay_of=replayed)
    out = cli()
    assert out.startswith("No dead jobs not resolved (1 matching dead jobs were resolved since")
    assert "--include-resolved" in out


# Partial indexes holding only dead jobs and only replays: reading one whole is bounded by them.
SMALL_PARTIAL = {"automate_outbox_dead", "automate_outbox_replayed_once"}


def unbounded_reads(plan: list[dict[str, Any]], allowed: frozenset[str] = frozenset()) -> list[str]:
    """Scans of a big table that no condition bounds: a sequential scan, or an index read whole
    (what a hashed subquery over every run looks like with sequential scans disabled)."""
    return [
        f"{node['Node Type']} {node.get('Index Name', node['Relation Name'])}"
        for node in plan
        if node.get("Relation Name") in BIG
        and node.get("Index Name") not in SMALL_PARTIAL | allowed
        and "Index Cond" not in node
    ]


@pytest.mark.django_db
def test_the_definition_reads_indexes_only() -> None:
    every_case()
    plan = explain(dead_letters.DEAD_LETTERS_COUNT)
    assert scans_of_big_tables(plan) == [] and unbounded_reads(plan) == []
    assert indexes(plan) >= SMALL_PARTIAL


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{}, {"dead_letters": "open"}, {"dead_letters": "resolved"}])
def test_the_outbox_list_and_its_dead_letter_filters_read_indexes_only(query: dict[str, str]) -> None:
    from django.contrib.admin.sites import site
    from django.test import RequestFactory

    every_case()
    request = RequestFactory().get(JOBS, query)
    request.user = get_user_model().objects.create_superuser("planner", "p@example.com", "pw")
    changelist = site._registry[OutboxJob].get_changelist_instance(request)
    page = changelist.get_queryset(request)[:50]  # the page the list shows, with its marks
    sql, params = page.query.sql_with_params()
    plan = explain(sql, params)
    assert plan[0]["Node Type"] == "Limit"  # the page: 50 rows, newest first by the primary key
    # the queue's key and each day of completed jobs' (id, completed_at), read backwards and merged
    pages = frozenset({"automate_outbox_job_pkey", "automate_outbox_job_done_pkey"})
    assert scans_of_big_tables(plan) == [] and unbounded_reads(plan, pages) == [], query
    assert "automate_outbox_dead" in indexes(plan)


def rows_read(plan: list[dict[str, Any]], table: str) -> int:
    """Rows a plan run with EXPLAIN ANALYZE read from ``table`` (kept or filtered out, all loops)."""
    return int(
        sum(
            (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get("Actual Loops", 1)
            for node in plan
            if node.get("Relation Name") == table
        )
    )


@pytest.mark.django_db
def test_the_count_reads_the_dead_jobs_runs_not_the_history() -> None:
    """2,000 dead jobs among 50,000 runs of history: the count reads about the dead jobs' runs."""
    from django.db import connection

    billing, _ = workflows()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO automate_event (source, event_type, payload, headers, trace_id)"
            " SELECT 'shop', 'order.created', '{}', '{}', 'history' FROM generate_series(1, 50000)"
        )
        cursor.execute(
            "INSERT INTO automate_run (event_id, workflow_id, workflow_name, attempt, mode, status, error,"
            " trace_id) SELECT id, %s, 'billing', 1, '', 'succeeded', '', 'history' FROM automate_event",
            [billing.pk],
        )
        cursor.execute(  # 2,000 of those events: a dead job with a failed run, 500 of them resumed
            "WITH dead AS (INSERT INTO automate_outbox_job (event_id, kind, status, attempts, max_attempts,"
            " last_error, lease_owner, payload) SELECT id, 'event', 'dead', 5, 5, 'boom', '', NULL"
            " FROM automate_event ORDER BY id LIMIT 2000 RETURNING id, event_id)"
            " INSERT INTO automate_run (event_id, job_id, workflow_id, workflow_name, attempt, mode, status,"
            " error, trace_id) SELECT event_id, id, %s, 'billing', 5, '', 'failed', 'boom', 'dead' FROM dead",
            [billing.pk],
        )
        cursor.execute(
            "INSERT INTO automate_run (event_id, workflow_id, workflow_name, attempt, mode, status, error,"
            " trace_id, parent_id) SELECT event_id, workflow_id, 'billing', 1, 'resume', 'succeeded', '',"
            " 'resumed', id FROM automate_run WHERE status = 'failed' ORDER BY id LIMIT 500"
        )
        cursor.execute("ANALYZE automate_run")
        cursor.execute("ANALYZE automate_outbox_job")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + dead_letters.DEAD_LETTERS_COUNT)
        raw = cursor.fetchone()[0]
    plan = nodes(json.loads(raw) if isinstance(raw, str) else raw)
    assert dead_letters.count() == 1500
    runs = ExecutionRun.objects.count()
    assert runs == 52500
    # per dead job: its failed run, the runs of its event and workflow, the replays of its run
    assert rows_read(plan, "automate_run") <= 3 * 2000 + 2 * 500, rows_read(plan, "automate_run")
