"""Day partitions for a benchmark database, as a deployment that keeps DAYS days of history has.

``python -m benchmarks.history.days URL DAYS``: adds DAYS empty day partitions to each partitioned
history table (events, runs, steps), after the last one it has. Empty days ahead cost the planner
what days behind do (a statement that cannot be pruned plans every partition), so a fresh
benchmark database with 30 days added plans like one that retains 30 days.
"""

from __future__ import annotations

import datetime as dt
import sys

import psycopg

from automate_core.history import tables

LAST_DAY = """
SELECT max(substring(c.relname FROM '_p([0-9]{8})$'))
FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = %s::regclass
"""


def ensure_days(url: str, days: int) -> int:
    """Partitions through ``days`` days past the days ahead (``AUTOMATE_HISTORY_PARTITIONS_AHEAD``)
    on every history table, added only where missing: the same database prepared twice keeps the
    same partitions. Returns the partitions each table has."""
    from automate_core.conf import settings

    today = dt.datetime.now(dt.UTC).date()
    last = today + dt.timedelta(days=int(settings.HISTORY_PARTITIONS_AHEAD) + days)
    with psycopg.connect(url, autocommit=True) as conn:
        count = 0
        for table in tables.TABLES:
            have = {
                str(r[0])
                for r in conn.execute(
                    "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = %s::regclass",
                    [table.name],
                ).fetchall()
            }
            day = today
            while day <= last:
                if table.partition(day) not in have:
                    for statement in tables.create_partition(table, day):
                        conn.execute(statement.encode())
                day += dt.timedelta(days=1)
            found = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", [table.name]
            ).fetchone()
            count = int(found[0]) if found else 0
        return count


def add_days(url: str, days: int) -> int:
    """Add ``days`` partitions to every history table; returns the partitions each now has."""
    with psycopg.connect(url, autocommit=True) as conn:
        count = 0
        for table in tables.TABLES:
            row = conn.execute(LAST_DAY, [table.name]).fetchone()
            if row is None or row[0] is None:
                raise SystemExit(f"{table.name} has no day partition: migrate the database first.")
            last = dt.datetime.strptime(row[0], "%Y%m%d").date()
            for n in range(1, days + 1):
                for statement in tables.create_partition(table, last + dt.timedelta(days=n)):
                    conn.execute(statement.encode())
            found = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", [table.name]
            ).fetchone()
            count = int(found[0]) if found else 0
        return count


if __name__ == "__main__":
    url, days = sys.argv[1], int(sys.argv[2])
    print(f"{url.rsplit('/', 1)[-1]}: {add_days(url, days)} partitions per history table")
