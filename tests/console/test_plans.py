"""The console's statements read indexes, never whole tables (checked with EXPLAIN).

With sequential scans disabled, PostgreSQL still takes one when no index can answer a statement,
so a plan without "Seq Scan" on the big tables means an index bounds the statement.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.db.models import QuerySet
from django.test import RequestFactory
from django.utils import timezone

from automate_core.admin import queries
from automate_core.admin.events import search
from automate_core.models import Event, EventKey, Workflow
from tests.console.rows import event

pytestmark = pytest.mark.django_db

BIG = ("automate_event", "automate_run", "automate_outbox_job", "automate_step_run", "automate_event_key")


def nodes(plan: Any) -> list[dict[str, Any]]:
    """A plan's nodes, with partitions named as their tables (run records are partitioned by day:
    ``automate_run_p20261207`` and its indexes are ``automate_run`` and the table's indexes)."""
    found = []
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.get("Plans", []))
    for node in found:
        for key in ("Relation Name", "Index Name"):
            if key in node:
                name = node[key]
                node[key] = root(name)
                if node[key] != name:
                    node[key.replace("Name", "Partition")] = name
    return found


def explain(sql: str | QuerySet[Any], params: Any = None) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the test's transaction
        if not isinstance(sql, str):  # unordered: the paginator's count, the filter's own cost
            sql, params = sql.order_by().query.sql_with_params()
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return nodes(json.loads(plan) if isinstance(plan, str) else plan)


def root(name: str) -> str:
    """A partition's (or a partition's index's) partitioned parent: the name the schema gives it
    (run records are partitioned by day: ``automate_run_p20261207`` is ``automate_run``)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(pg_partition_root(to_regclass(%s))::text, %s)", [name, name])
        return str(cursor.fetchone()[0])


def indexes(plan: list[dict[str, Any]]) -> set[str]:
    return {n["Index Name"] for n in plan if "Index Name" in n}


def scans_of_big_tables(plan: list[dict[str, Any]]) -> list[str]:
    return [
        n["Relation Name"] for n in plan if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in BIG
    ]


@pytest.fixture(autouse=True)
def some_rows() -> None:
    """Enough events (over days, with keys) that the planner's statistics look like a real table."""
    for source in ("shop", "github", "stripe"):
        event(source, "x", ago=timedelta(minutes=5))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO automate_event"
            " (source, event_type, payload, headers, idempotency_key, trace_id, received_at)"
            " SELECT 'shop', 'order.' || (i % 7), '{}', '{}', 'k' || i, md5(i::text),"
            " now() - i * interval '1 minute' FROM generate_series(1, 5000) AS i"
        )
        cursor.execute(
            "INSERT INTO automate_event_key (source, idempotency_key, event_id, trace_id, received_at)"
            " SELECT source, idempotency_key, id, trace_id, received_at FROM automate_event"
            " WHERE idempotency_key LIKE 'k%'"
        )
        cursor.execute("ANALYZE automate_event, automate_event_key")


def test_time_filters_read_the_brin_index() -> None:
    now = timezone.now()
    plan = explain(Event.objects.filter(received_at__gte=now - timedelta(hours=1), received_at__lt=now))
    assert "automate_event_received_brin" in indexes(plan)
    assert not scans_of_big_tables(plan)


def test_type_filter_and_key_search_read_the_source_indexes() -> None:
    sources = queries.distinct_sources()
    assert sorted(sources) == ["github", "shop", "stripe"]
    plan = explain(queries.DISTINCT_SOURCES)
    assert "automate_event_src_type" in indexes(plan) and not scans_of_big_tables(plan)
    typed = explain(Event.objects.filter(source__in=sources, event_type="order.created"))
    assert "automate_event_src_type" in indexes(typed) and not scans_of_big_tables(typed)
    # the console's search: a held key through the key table's primary key, then the events by id
    # or trace id
    held = explain(EventKey.objects.filter(source__in=sources, idempotency_key="k7"))
    assert "automate_event_key_pkey" in indexes(held) and not scans_of_big_tables(held), held
    searched = explain(Event.objects.filter(search("7")))
    assert not scans_of_big_tables(searched), searched
    assert "automate_event_pkey" in indexes(searched)
    assert any(i.startswith("automate_event_trace_id_af85df5a") for i in indexes(searched))


def test_dashboard_reads_the_last_hour_only() -> None:
    plan = explain(queries.THROUGHPUT)
    assert {"automate_event_received_brin", "automate_run_started_brin", "automate_outbox_dead"} <= indexes(
        plan
    )
    assert not scans_of_big_tables(plan)


def test_workflow_list_reads_each_workflows_runs_by_index() -> None:
    Workflow.objects.create(name="wf")
    request = RequestFactory().get("/admin/automate_core/workflow/")
    queryset = site._registry[Workflow].get_queryset(request).order_by("name")
    plan = explain(queryset)
    assert "automate_run_workflow_started" in indexes(plan)
    assert not scans_of_big_tables(plan)
