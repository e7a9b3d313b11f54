"""Partitioning the run records of a live database, without a long lock (migration 0016).

The tables become partitioned parents; what they held becomes one partition of each
(``automate_run_legacy``, ``automate_step_run_legacy``) below the first day, and new rows go to
the day partitions. Nothing is copied. The phases and the locks they take:

1. **Constraints that cannot cross partitions go** (the run's parent and bulk-replay foreign
   keys; the code keeps them, like the other run references since migration 0008): an instant
   each.
2. **Proof that the old rows are below the first day** (the partition bound): a ``CHECK ...
   NOT VALID`` (an instant), then ``VALIDATE CONSTRAINT``, which reads the whole table under a
   SHARE UPDATE EXCLUSIVE lock: reads and writes go on. The step table's primary key must hold
   its partition key, so its ``(id, run_id)`` index is built ``CONCURRENTLY`` (writes go on).
3. **The switch**, one transaction on both tables under ACCESS EXCLUSIVE locks, taken with a
   ``lock_timeout`` (tried again when a long query holds them, so that writers never queue
   behind a waiting lock for long): rename each table to ``*_legacy`` with its indexes, create
   the partitioned parent under the old name with the same indexes, attach the old table as
   the legacy partition (the validated CHECK spares the scan; its indexes match the parent's
   and are attached, not built) and create the day partitions. Catalog work only: milliseconds
   whatever the size of the tables (``tests/history/test_convert.py`` measures what the
   concurrent writers see).

Run ids become history ids (``history.ids``) from the switch on; old ids stay as they were.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from automate_core.exceptions import PartitioningBlocked
from automate_core.history import ids, partitions, tables

logger = logging.getLogger("automate.history")

#: Foreign keys of the run records that a partitioned table would have to check across partitions.
FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.conname FROM pg_constraint AS c
WHERE c.contype = 'f'
  AND (c.conrelid = ANY(%s::regclass[]) OR c.confrelid = ANY(%s::regclass[]))
"""

INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisprimary
FROM pg_index AS i WHERE i.indrelid = %s::regclass ORDER BY 1
"""

SEQUENCE_STATE = "SELECT last_value, is_called FROM {sequence}"


def is_partitioned(cursor: Any) -> bool:
    cursor.execute(tables.IS_PARTITIONED.replace("%(tables)s", "%s"), [[t.name for t in tables.TABLES]])
    return bool(cursor.fetchone()[0] == len(tables.TABLES))


def _check_name(table: tables.HistoryTable) -> str:
    return f"{table.name}_legacy_range"


def _steps_key_index() -> str:
    return f"{tables.STEPS.name}_legacy_pk"


def prepare(cursor: Any, first_day: dt.date) -> None:
    """Phases 1 and 2, in autocommit: each statement is its own short transaction."""
    names = [t.name for t in tables.TABLES]
    cursor.execute(FOREIGN_KEYS, [names, names])
    for relation, constraint in cursor.fetchall():
        cursor.execute(f'ALTER TABLE {relation} DROP CONSTRAINT IF EXISTS "{constraint}"')
    b0 = ids.bound(first_day)
    for table in tables.TABLES:
        check = _check_name(table)
        cursor.execute("SELECT 1 FROM pg_constraint WHERE conname = %s", [check])
        if cursor.fetchone() is None:
            cursor.execute(
                f"ALTER TABLE {table.name} ADD CONSTRAINT {check} CHECK ({table.key} < {b0}) NOT VALID"
            )
        cursor.execute(f"ALTER TABLE {table.name} VALIDATE CONSTRAINT {check}")
    # An interrupted CONCURRENTLY build leaves an invalid index: drop it and build again.
    cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [_steps_key_index()])
    row = cursor.fetchone()
    if row is not None and not row[0]:
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_steps_key_index()}")
        row = None
    if row is None:
        cursor.execute(
            f"CREATE UNIQUE INDEX CONCURRENTLY {_steps_key_index()} "
            f"ON {tables.STEPS.name} ({', '.join(tables.STEPS.primary_key)})"
        )


def _switch_table(cursor: Any, table: tables.HistoryTable, b0: int) -> None:
    legacy = table.legacy
    cursor.execute(INDEXES, [table.name])
    indexes = cursor.fetchall()
    cursor.execute(SEQUENCE_STATE.format(sequence=table.sequence))
    last_value, is_called = cursor.fetchone()
    cursor.execute(f"ALTER TABLE {table.name} RENAME TO {legacy}")
    # the identity's sequence goes with the identity; a new one (same name) continues it
    cursor.execute(f"ALTER TABLE {legacy} ALTER COLUMN id DROP IDENTITY IF EXISTS")
    recreated = []
    for index, definition, primary in indexes:
        if index == _steps_key_index():
            continue
        cursor.execute(f'ALTER INDEX "{index}" RENAME TO "{(index + "_legacy")[:63]}"')
        if not primary:
            recreated.append(definition)
    cursor.execute(
        f"CREATE TABLE {table.name} (LIKE {legacy} INCLUDING DEFAULTS INCLUDING STORAGE) "
        f"PARTITION BY RANGE ({table.key})"
    )
    start = int(last_value) + (1 if is_called else 0)
    cursor.execute(f"CREATE SEQUENCE {table.sequence} START WITH {start} OWNED BY {table.name}.id")
    default = (
        f"automate_history_id('{table.sequence}'::regclass)"
        if table.key == "id"
        else f"nextval('{table.sequence}'::regclass)"
    )
    cursor.execute(f"ALTER TABLE {table.name} ALTER COLUMN id SET DEFAULT {default}")
    key = ", ".join(table.primary_key)
    cursor.execute(f"ALTER TABLE {table.name} ADD CONSTRAINT {table.name}_pkey PRIMARY KEY ({key})")
    for definition in recreated:  # on the parent alone: it has no partition yet
        cursor.execute(definition)
    cursor.execute(f"ALTER TABLE {table.name} ATTACH PARTITION {legacy} FOR VALUES FROM (MINVALUE) TO ({b0})")


def switch(
    cursor: Any, first_day: dt.date, ahead: int, lock_timeout_ms: int = 2000, attempts: int = 30
) -> None:
    """Phase 3, one transaction, tried again while another session holds the tables."""
    import psycopg

    b0 = ids.bound(first_day)
    for attempt in range(1, attempts + 1):
        cursor.execute("BEGIN")
        try:
            cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            cursor.execute(f"LOCK TABLE {tables.RUNS.name}, {tables.STEPS.name} IN ACCESS EXCLUSIVE MODE")
            # the parent's primary key (id, run_id) attaches to the partition's primary key: the
            # index built in phase 2 becomes it (an instant: no index is built under the lock)
            cursor.execute(
                f"ALTER TABLE {tables.STEPS.name} DROP CONSTRAINT IF EXISTS {tables.STEPS.name}_pkey"
            )
            cursor.execute(
                f"ALTER TABLE {tables.STEPS.name} ADD CONSTRAINT {_steps_key_index()} "
                f"PRIMARY KEY USING INDEX {_steps_key_index()}"
            )
            for table in tables.TABLES:
                _switch_table(cursor, table, b0)
            cursor.execute("RESET lock_timeout")
            partitions.ensure_ahead_sync(cursor, ahead, today=first_day)
            cursor.execute("COMMIT")
            return
        except psycopg.errors.LockNotAvailable:
            cursor.execute("ROLLBACK")
            logger.warning(
                "partitioning: the run tables are busy (attempt %d of %d); trying again", attempt, attempts
            )
            time.sleep(min(0.1 * attempt, 2.0))
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
    raise PartitioningBlocked(
        f"Could not lock automate_run and automate_step_run for the partitioning switch in {attempts} "
        "attempts: a long transaction holds them; nothing was changed. Run `automate migrate` again "
        "when it has ended (pg_stat_activity shows it)."
    )


def convert(cursor: Any, ahead: int, today: dt.date | None = None) -> bool:
    """All three phases; False when the tables are partitioned already (nothing to do)."""
    if is_partitioned(cursor):
        return False
    first_day = today or dt.datetime.now(dt.UTC).date()
    prepare(cursor, first_day)
    switch(cursor, first_day, ahead)
    return True
