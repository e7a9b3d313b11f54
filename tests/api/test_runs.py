"""``/api/v1/runs``: filters, keyset pages (complete, no repeats, opaque cursors), one run with
masked steps, every replay mode, cancel, and the audit entries of the writes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone

from automate_core.masking import masker
from automate_core.models import AuditEntry, Event, ExecutionRun, OutboxJob, StepRun, Workflow
from tests.api.conftest import MakeToken, bearer

FLOW = {
    "name": "flow",
    "trigger": {"source": "shop"},
    "steps": [{"name": "s", "connector": "log", "action": "info", "params": {"message": "hi"}}],
}


@pytest.fixture
async def runs(live_db: None, load: Any) -> list[ExecutionRun]:
    """Runs of two workflows from two sources, with every end state, started over 3 hours."""
    await sync_to_async(load)({"workflows": [FLOW, {**FLOW, "name": "other", "trigger": {"source": "crm"}}]})

    def make() -> list[ExecutionRun]:
        made = []
        flows = {w.name: w for w in Workflow.objects.select_related("current_version")}
        for i in range(30):
            source, name = ("shop", "flow") if i % 3 else ("crm", "other")
            event = Event.objects.create(
                source=source, event_type=f"order.{i % 2}", payload={"i": i}, trace_id=f"{i:032x}"
            )
            status = ["succeeded", "failed", "cancelled"][i % 3] if i < 27 else "running"
            run = ExecutionRun.objects.create(
                workflow=flows[name],
                workflow_name=name,
                version=flows[name].current_version,
                event=event,
                status=status,
                trace_id=event.trace_id,
                error="boom" if status == "failed" else "",
            )
            ExecutionRun.objects.filter(pk=run.pk).update(
                started_at=timezone.now() - timedelta(minutes=6 * (30 - i))
            )
            made.append(run)
        return made

    return await sync_to_async(make)()


@pytest.fixture
async def reader(make_token: MakeToken) -> str:
    return str(await make_token("runs:read"))


@pytest.fixture
async def writer(make_token: MakeToken) -> str:
    return str(await make_token("runs:read", "runs:write", name="ops"))


async def every_page(api: httpx.AsyncClient, token: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await api.get("/runs", params=query, headers=bearer(token))
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


async def test_pages_cover_every_run_once_newest_first(
    api: httpx.AsyncClient, runs: list[ExecutionRun], reader: str
) -> None:
    for limit in (1, 7, 30, 200):
        items = await every_page(api, reader, limit=limit)
        assert [i["id"] for i in items] == sorted((r.pk for r in runs), reverse=True), limit
    first = (await api.get("/runs", params={"limit": 5}, headers=bearer(reader))).json()
    assert first["items"][0]["source"] in ("shop", "crm") and first["items"][0]["version"] == 1


FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({"workflow": "flow"}, lambda r, e: r.workflow_name == "flow"),
    ({"workflow": "nope"}, lambda r, e: False),
    ({"status": "failed"}, lambda r, e: r.status == "failed"),
    ({"source": "crm"}, lambda r, e: e.source == "crm"),
    ({"event_type": "order.1"}, lambda r, e: e.event_type == "order.1"),
    ({"trace_id": f"{4:032x}"}, lambda r, e: e.trace_id == f"{4:032x}"),
    (
        {"workflow": "flow", "status": "succeeded", "event_type": "order.0"},
        lambda r, e: r.workflow_name == "flow" and r.status == "succeeded" and e.event_type == "order.0",
    ),
]


async def test_filters(api: httpx.AsyncClient, runs: list[ExecutionRun], reader: str) -> None:
    events = {e.pk: e async for e in Event.objects.all()}
    for params, wanted in FILTERS:
        got = [i["id"] for i in await every_page(api, reader, limit=4, **params)]
        expected = sorted((r.pk for r in runs if wanted(r, events[r.event_id])), reverse=True)
        assert got == expected, params


async def test_time_filters(api: httpx.AsyncClient, runs: list[ExecutionRun], reader: str) -> None:
    recent = await every_page(api, reader, since="61m")  # started 6..60 minutes ago: the last 10
    assert [i["id"] for i in recent] == sorted((r.pk for r in runs[-10:]), reverse=True)
    since = (timezone.now() - timedelta(minutes=121)).isoformat()
    until = (timezone.now() - timedelta(minutes=61)).isoformat()
    window = await every_page(api, reader, since=since, until=until)
    assert [i["id"] for i in window] == sorted((r.pk for r in runs[10:20]), reverse=True)


BAD_QUERIES: list[dict[str, Any]] = [
    {"cursor": "zzz"},
    {"cursor": "!!"},
    {"cursor": "am9iOjU"},  # a jobs cursor ("job:5"): not a runs cursor
    {"cursor": "cnVuOi0x"},  # "run:-1"
    {"cursor": "cnVuOmFiYw"},  # "run:abc"
    {"limit": 0},
    {"limit": 201},
    {"limit": "x"},
    {"status": "exploded"},
    {"since": "yesterday"},
    {"until": "5 parsecs"},
    {"since": "99999999999d"},
    {"since": "9999999999999999w"},
    {"until": "99999-01-01"},
    {"trace_id": "x" * 33},
]


async def test_bad_queries_are_400(api: httpx.AsyncClient, runs: list[ExecutionRun], reader: str) -> None:
    for params in BAD_QUERIES:
        response = await api.get("/runs", params=params, headers=bearer(reader))
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"] in ("invalid_request", "invalid_cursor"), response.text


def plan_nodes(plan: Any) -> list[dict[str, Any]]:
    from tests.console.test_plans import nodes  # partitions named as their tables

    return nodes(plan)


async def test_the_list_reads_indexes_not_the_runs_table(live_db: None) -> None:
    """Every page, filtered or not, starts from an index on the runs table (EXPLAIN, 200 000 runs
    with their events: on a table much smaller the planner may rightly prefer reading it all):
    the primary key walked backwards, or the trace id index."""

    from automate_core.api.runs import RunFilter, list_query

    def plans() -> list[list[dict[str, Any]]]:
        found = []
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO automate_event (id, source, event_type, payload, headers, trace_id, received_at)"
                " SELECT i, 's' || (i % 5), 't', '{}', '{}', md5(i::text), now()"
                " FROM generate_series(1, 200000) i"
            )
            cursor.execute(
                "INSERT INTO automate_run (workflow_id, workflow_name, event_id, attempt, status, error,"
                " trace_id, mode, started_at) SELECT i % 3 + 1, 'w', i, 1,"
                " CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'succeeded' END, '',"
                " md5(i::text), '', now() - i * interval '1 second' FROM generate_series(1, 200000) AS i"
            )
            cursor.execute("ANALYZE automate_run")
            cursor.execute("ANALYZE automate_event")
            cursor.execute("SELECT min(id) FROM automate_run")  # run ids are history ids (big)
            first = cursor.fetchone()[0]
            for filters in (
                RunFilter(),
                RunFilter(after=first + 100000),
                RunFilter(status="failed"),
                RunFilter(status="failed", after=first + 50000),
                RunFilter(trace_id="abc"),
                RunFilter(workflow="w", workflow_id=3),
                RunFilter(source="s1", event_type="t"),
            ):
                sql, params = list_query(filters, 51)
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
                raw = cursor.fetchone()[0]
                found.append(plan_nodes(json.loads(raw) if isinstance(raw, str) else raw))
        return found

    def holding_rows() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT tableoid::regclass::text FROM automate_run")
            return {r[0] for r in cursor.fetchall()}

    found = await sync_to_async(plans)()
    filled = await sync_to_async(holding_rows)()
    for plan in found:
        # the day partitions ahead (and the legacy one) are empty: reading one whole costs nothing
        on_runs = [n for n in plan if n.get("Relation Partition") in filled]
        assert on_runs and all(n["Node Type"] != "Seq Scan" for n in on_runs), on_runs
        used = {n.get("Index Name") for n in on_runs}
        assert used & {"automate_run_pkey", "automate_run_trace"}, on_runs
        if "automate_run_trace" not in used:  # the primary key gives the order: no sort of the table
            assert not any(n["Node Type"] == "Sort" for n in plan), plan


async def test_one_run_with_its_steps_masked(
    api: httpx.AsyncClient, runs: list[ExecutionRun], reader: str
) -> None:
    run = runs[1]
    masker.register("sk-live-very-secret-value")
    now = timezone.now()
    await StepRun.objects.acreate(
        run=run,
        position=0,
        name="call",
        connector="http",
        action="post",
        status="failed",
        attempt=2,
        input={"headers": {"Authorization": "Bearer sk-live-very-secret-value"}},
        output=None,
        error="401 for sk-live-very-secret-value",
        started_at=now,
        finished_at=now,
        duration_ms=3.5,
    )
    response = await api.get(f"/runs/{run.pk}", headers=bearer(reader))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == run.pk and body["status"] == "failed" and body["error"] == "boom"
    step = body["steps"][0]
    assert step["input"] == {"headers": {"Authorization": "Bearer ***"}} and step["error"] == "401 for ***"
    assert "sk-live-very-secret-value" not in response.text
    assert (await api.get("/runs/99999999", headers=bearer(reader))).status_code == 404


async def test_every_replay_mode(api: httpx.AsyncClient, runs: list[ExecutionRun], writer: str) -> None:
    failed, succeeded = runs[1], runs[2 + 0 * 1]
    assert failed.status == "failed"
    for mode, run, extra in (
        ("original", succeeded, {}),
        ("current", succeeded, {}),
        ("resume", failed, {}),
        ("edited", failed, {"payload": {"i": "edited"}}),
    ):
        response = await api.post(
            f"/runs/{run.pk}/replay", json={"mode": mode, **extra}, headers=bearer(writer)
        )
        assert response.status_code == 202, (mode, response.text)
        new = await ExecutionRun.objects.select_related("event").aget(pk=response.json()["run_id"])
        assert (new.mode, new.parent_id, new.status) == (mode, run.pk, "queued")
        assert new.job_id is not None
        assert await OutboxJob.objects.filter(pk=new.job_id, payload={"run": new.pk}).aexists()
        if mode == "edited":
            assert new.event.payload == {"i": "edited"} and new.event_id != run.event_id
        else:
            assert new.event_id == run.event_id
    entries = [e async for e in AuditEntry.objects.filter(action="runs.replay").order_by("id")]
    assert [e.details["mode"] for e in entries] == ["original", "current", "resume", "edited"]
    assert all(e.actor.startswith("token:ops#") and e.target.startswith("run:") for e in entries)


async def test_replays_that_cannot_be(api: httpx.AsyncClient, runs: list[ExecutionRun], writer: str) -> None:
    succeeded, running = runs[2], runs[27]
    cases = [
        (succeeded.pk, {"mode": "resume"}, 409),  # only a failed run resumes
        (running.pk, {"mode": "current"}, 409),  # still running
        (succeeded.pk, {"mode": "edited"}, 400),  # no payload
        (succeeded.pk, {"mode": "current", "payload": {}}, 400),
        (succeeded.pk, {"mode": "sideways"}, 400),
        (succeeded.pk, {"mode": "current", "extra": 1}, 400),
        (99999999, {"mode": "current"}, 404),
    ]
    before = await ExecutionRun.objects.acount()
    for run_id, body, status in cases:
        response = await api.post(f"/runs/{run_id}/replay", json=body, headers=bearer(writer))
        assert response.status_code == status, (body, response.text)
    assert await ExecutionRun.objects.acount() == before
    assert not await AuditEntry.objects.aexists()


async def test_cancel(api: httpx.AsyncClient, runs: list[ExecutionRun], writer: str) -> None:
    running, ended = runs[27], runs[2]
    response = await api.post(f"/runs/{running.pk}/cancel", headers=bearer(writer))
    assert response.status_code == 200 and response.json() == {"run_id": running.pk, "status": "cancelled"}
    assert (await ExecutionRun.objects.aget(pk=running.pk)).status == "cancelled"
    again = await api.post(f"/runs/{running.pk}/cancel", headers=bearer(writer))
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert (await api.post(f"/runs/{ended.pk}/cancel", headers=bearer(writer))).status_code == 409
    assert (await api.post("/runs/99999999/cancel", headers=bearer(writer))).status_code == 404
    assert [e.target async for e in AuditEntry.objects.filter(action="runs.cancel")] == [f"run:{running.pk}"]


def test_the_status_filter_lists_every_run_status() -> None:
    import typing

    from automate_core.api.runs import RunState
    from automate_core.models import RunStatus

    assert set(typing.get_args(RunState)) == {s.value for s in RunStatus}


async def test_a_source_limited_token_reads_its_sources_only(
    api: httpx.AsyncClient, runs: list[ExecutionRun], make_token: MakeToken
) -> None:
    key = await make_token("events:write", "runs:read", "runs:write", sources=["crm"])
    events = {e.pk: e.source async for e in Event.objects.all()}
    listed = await every_page(api, key, limit=4)
    assert [i["id"] for i in listed] == sorted(
        (r.pk for r in runs if events[r.event_id] == "crm"), reverse=True
    )
    shop_run = next(r for r in runs if events[r.event_id] == "shop")
    crm_run = next(r for r in runs if events[r.event_id] == "crm")
    assert (await api.get(f"/runs/{shop_run.pk}", headers=bearer(key))).status_code == 404
    assert (await api.get(f"/runs/{crm_run.pk}", headers=bearer(key))).status_code == 200
    refused = await api.post(f"/runs/{crm_run.pk}/replay", json={"mode": "current"}, headers=bearer(key))
    assert refused.status_code == 403 and refused.json()["error"] == "source_limited"
    assert (await api.get("/workflows", headers=bearer(key))).status_code == 403  # no scope either
