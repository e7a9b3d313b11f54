"""SQL the operator's console runs on every page load, each statement bounded by an index.

The admin serves people, not the hot path, so it runs on Django's connection; but its tables grow
with every event, so nothing here may read a table whole: each statement says which index bounds
it, and tests check the plans with ``EXPLAIN``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.utils import OperationalError

# The distinct sources of events, by a "skip scan" of the (source, event_type) B-tree index
# automate_event_src_type: one index descent per source, never a pass over the events. PostgreSQL
# (before 18) does not skip-scan by itself; the recursive CTE asks for "the next source after
# this one" until there is none.
DISTINCT_SOURCES = """
WITH RECURSIVE sources(source) AS (
    (SELECT source FROM automate_event ORDER BY source LIMIT 1)
    UNION ALL
    SELECT (SELECT e.source FROM automate_event e WHERE e.source > s.source ORDER BY e.source LIMIT 1)
      FROM sources s
     WHERE s.source IS NOT NULL
)
SELECT source FROM sources WHERE source IS NOT NULL
"""

# The dashboard: per minute of the last hour, events received, runs started by outcome, jobs that
# died. Each count reads only the last hour: events and runs through their BRIN indexes on the
# time column (automate_event_received_brin, automate_run_started_brin), dead jobs through the
# partial index automate_outbox_dead. Minutes with nothing are rows of zeros (generate_series).
THROUGHPUT = """
WITH minutes AS (
    SELECT generate_series(date_trunc('minute', now()) - interval '59 minutes',
                           date_trunc('minute', now()), interval '1 minute') AS minute
), events AS (
    SELECT date_trunc('minute', received_at) AS minute, count(*) AS received
      FROM automate_event
     WHERE received_at >= date_trunc('minute', now()) - interval '59 minutes'
     GROUP BY 1
), runs AS (
    SELECT date_trunc('minute', started_at) AS minute,
           count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE status = 'failed') AS failed
      FROM automate_run
     WHERE started_at >= date_trunc('minute', now()) - interval '59 minutes'
     GROUP BY 1
), dead AS (
    SELECT date_trunc('minute', updated_at) AS minute, count(*) AS dead
      FROM automate_outbox_job
     WHERE status = 'dead' AND updated_at >= date_trunc('minute', now()) - interval '59 minutes'
     GROUP BY 1
)
SELECT m.minute,
       coalesce(e.received, 0), coalesce(r.succeeded, 0), coalesce(r.failed, 0), coalesce(d.dead, 0)
  FROM minutes m
  LEFT JOIN events e USING (minute)
  LEFT JOIN runs r USING (minute)
  LEFT JOIN dead d USING (minute)
 ORDER BY m.minute
"""

# How long the capped count of a filtered list may take before the list shows the planner's
# estimate instead (a filter no index serves, on a big table).
COUNT_TIMEOUT_MS = 300


@contextmanager
def without_jit() -> Iterator[None]:
    """Run the block's statements without PostgreSQL's JIT compiler (in a transaction).

    A list with a subquery per row (the workflows' last runs and day counts) has a planner cost
    above ``jit_above_cost`` although it reads few rows: compiling it took ~170 ms of a 215 ms
    statement here. The console's statements are all small, bounded reads: JIT never pays.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


def distinct_sources() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(DISTINCT_SOURCES)
        return [row[0] for row in cursor.fetchall()]


def throughput() -> list[tuple[Any, int, int, int, int]]:
    """(minute, events received, runs succeeded, runs failed, jobs dead) for the last 60 minutes."""
    with connection.cursor() as cursor:
        cursor.execute(THROUGHPUT)
        return [tuple(row) for row in cursor.fetchall()]


def capped_count(queryset: QuerySet[Any], cap: int) -> int | None:
    """``min(count, cap + 1)`` of the queryset, or None when that takes over COUNT_TIMEOUT_MS.

    Reading at most ``cap + 1`` rows costs the same on ten rows as on ten million, unless the
    filter is so selective that no index finds the rows: then the statement timeout stops it.
    """
    sql, params = queryset.order_by().values("pk")[: cap + 1].query.sql_with_params()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # local to the transaction, and set back after it in case an outer transaction goes on
            cursor.execute("SELECT current_setting('statement_timeout')")
            before = cursor.fetchone()[0]
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{COUNT_TIMEOUT_MS}ms"])
            cursor.execute(f"SELECT count(*) FROM ({sql}) AS capped", params)
            count = int(cursor.fetchone()[0])
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [before])
            return count
    except OperationalError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
            raise
        return None  # the statement timeout (the savepoint's rollback also took the setting back)


def estimated_count(queryset: QuerySet[Any]) -> int:
    """The planner's row estimate for the queryset (no rows read)."""
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])
