"""The partitioned history tables, their partitions' names and bounds, and the SQL that makes them.

Events (``automate_event``) and run records (``automate_run``) are partitioned on their id, a
time-ordered history id (``history.ids``); step records (``automate_step_run``) on their run's id,
with the same bounds, so that a run and its steps are in partitions of the same day and go
together. Each day (UTC) is one partition per table, ``automate_run_p20261207``; what was written
before a table was partitioned (migrations 0016 and 0017) is one partition below its first day,
``automate_run_legacy``.

The SQL here names only tables and partitions built from these fixed names and dates: nothing in
it comes from a user.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from automate_core.history import ids


@dataclass(frozen=True, slots=True)
class HistoryTable:
    name: str
    #: the column the table is partitioned on (a history id)
    key: str
    #: the sequence its own ids come from
    sequence: str
    #: its primary key: a partitioned table's must hold the partition key
    primary_key: tuple[str, ...]
    #: indexes of the unpartitioned table the partitioned parent does without (the legacy
    #: partition keeps them as its own)
    left_behind: tuple[str, ...] = ()

    def partition(self, day: dt.date) -> str:
        return f"{self.name}_p{day:%Y%m%d}"

    @property
    def legacy(self) -> str:
        return f"{self.name}_legacy"


RUNS = HistoryTable("automate_run", "id", "automate_run_id_seq", ("id",))
STEPS = HistoryTable("automate_step_run", "run_id", "automate_step_run_id_seq", ("id", "run_id"))
#: The dedupe of (source, idempotency key) cannot be a unique index across partitions: it is the
#: key table ``automate_event_key`` (ingest.queries), and the event table keeps no index for it.
EVENTS = HistoryTable(
    "automate_event",
    "id",
    "automate_event_id_seq",
    ("id",),
    left_behind=("automate_event_idempotency", "automate_event_held_keys"),
)
#: Partitioned together by migration 0016 (one switch), and by 0017.
RUN_RECORDS = (STEPS, RUNS)
EVENT_RECORDS = (EVENTS,)
#: In the order their partitions are dropped (steps before the runs they belong to, runs before
#: the events they ran on).
TABLES = (STEPS, RUNS, EVENTS)

_PARTITION = re.compile(r"^(automate_[a-z_]+)_p(\d{8})$")

#: A run partition is kept past its age while any of its runs is not over, or ended recently
#: (a run that slept for weeks and finished yesterday is yesterday's history).
RUN_PARTITION_IN_USE = """
SELECT EXISTS (
    SELECT 1 FROM {partition}
    WHERE status IN ('queued', 'running', 'waiting')
       OR finished_at >= %(cutoff)s OR started_at >= %(cutoff)s
)
"""

#: An event partition is kept past its age while anything still names one of its events: a job
#: (the settled ones go first, outbox.retention), a run (a replay of an old event runs on it
#: today), a debounce window or batch. %(lower)s and %(upper)s are the partition's bounds.
EVENT_PARTITION_IN_USE = """
SELECT EXISTS (SELECT 1 FROM automate_outbox_job WHERE event_id >= %(lower)s AND event_id < %(upper)s)
    OR EXISTS (SELECT 1 FROM automate_run WHERE event_id >= %(lower)s AND event_id < %(upper)s)
    OR EXISTS (SELECT 1 FROM automate_event_group_member
               WHERE event_id >= %(lower)s AND event_id < %(upper)s)
"""

#: The partitions of the history tables, with their parents (pg_inherits), oldest first.
LIST_PARTITIONS = """
SELECT parent.relname, child.relname
FROM pg_inherits AS i
JOIN pg_class AS parent ON parent.oid = i.inhparent
JOIN pg_class AS child ON child.oid = i.inhrelid
WHERE parent.relname = ANY(%(tables)s) AND parent.relnamespace = child.relnamespace
  AND parent.relnamespace = 'public'::regnamespace
ORDER BY child.relname
"""

#: Partitions whose DETACH ... CONCURRENTLY was interrupted (its connection lost): FINALIZE them.
PENDING_DETACH = """
SELECT parent.relname, child.relname
FROM pg_inherits AS i
JOIN pg_class AS parent ON parent.oid = i.inhparent
JOIN pg_class AS child ON child.oid = i.inhrelid
WHERE parent.relname = ANY(%(tables)s) AND i.inhdetachpending
"""

#: Which of them are partitioned (before migrations 0016 and 0017, or in a database set up by
#: hand, they are plain tables)
PARTITIONED = """
SELECT c.relname FROM pg_partitioned_table AS p JOIN pg_class AS c ON c.oid = p.partrelid
WHERE c.relname = ANY(%(tables)s) AND c.relnamespace = 'public'::regnamespace
"""


def parse_partition(name: str) -> tuple[str, dt.date] | None:
    """``automate_run_p20261207`` -> ("automate_run", 2026-12-07); None for any other name."""
    match = _PARTITION.match(name)
    if not match:
        return None
    return match.group(1), dt.datetime.strptime(match.group(2), "%Y%m%d").date()


def create_partition(table: HistoryTable, day: dt.date) -> list[str]:
    """A day's partition, made as a table of its own and attached: ATTACH takes only a SHARE
    UPDATE EXCLUSIVE lock on the parent (ingest and the journal go on), where CREATE TABLE ...
    PARTITION OF would take an ACCESS EXCLUSIVE one. The new table is empty, so the attach checks
    nothing and builds the parent's indexes on it at once."""
    name = table.partition(day)
    lower, upper = ids.bound(day), ids.bound(day + dt.timedelta(days=1))
    return [
        f"CREATE TABLE IF NOT EXISTS {name} (LIKE {table.name} INCLUDING DEFAULTS INCLUDING STORAGE)",
        f"ALTER TABLE {table.name} ATTACH PARTITION {name} FOR VALUES FROM ({lower}) TO ({upper})",
    ]


def days_to_create(today: dt.date, ahead: int, existing: set[str], table: HistoryTable) -> list[dt.date]:
    return [
        day
        for day in (today + dt.timedelta(days=n) for n in range(ahead + 1))
        if table.partition(day) not in existing
    ]
