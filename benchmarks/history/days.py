"""Day partitions for a benchmark database, as a deployment that keeps DAYS days of history has.

``python -m benchmarks.history.days URL DAYS``: makes each partitioned history table (events, runs,
steps) hold the partitions of today, the days ahead (``AUTOMATE_HISTORY_PARTITIONS_AHEAD``) and
DAYS more, with the platform's own maintenance (``history.partitions.ensure_ahead_sync``): only
missing ones are made, so preparing a database twice leaves it as once. Empty days ahead cost the
planner what days behind do (a statement that cannot be pruned plans every partition), so a fresh
benchmark database with 30 days more plans like one that retains 30 days.
"""

from __future__ import annotations

import sys

import psycopg

from automate_core.conf import Defaults
from automate_core.history import partitions, tables

COUNT = "SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass"


def ensure_days(url: str, days: int, ahead: int = Defaults.HISTORY_PARTITIONS_AHEAD) -> int:
    """Partitions through ``ahead + days`` days from today on every history table; returns the
    partitions each table has (the legacy one included)."""
    with psycopg.connect(url) as conn:  # one transaction, as the migrations run it
        with conn.cursor() as cur:
            partitions.ensure_ahead_sync(cur, ahead + days)
        row = conn.execute(COUNT, [tables.RUNS.name]).fetchone()
    return int(row[0]) if row else 0


if __name__ == "__main__":
    url, days = sys.argv[1], int(sys.argv[2])
    print(f"{url.rsplit('/', 1)[-1]}: {ensure_days(url, days)} partitions per history table")
