"""Partitioning a live database (migration 0016): nothing lost, nothing rewritten, writers go on.

A database of the test's own is migrated to 0015 (plain run tables) and filled with a million
runs and a million steps; a writer keeps inserting runs and steps in another thread (the way the
journal does: ids from the table's default before the switch, from ``automate_history_id`` after)
while the conversion runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from automate_core.exceptions import PartitioningBlocked
from automate_core.history import convert, ids, tables
from benchmarks.databases import django_url
from tests.bench.conftest import AUTOMATE, drop, harness_env
from tests.conftest import database_url

ROWS = 1_000_000
TODAY = dt.datetime.now(dt.UTC).date()

FILL = f"""
INSERT INTO automate_run
    (workflow_name, event_id, attempt, status, error, trace_id, mode, started_at, finished_at)
SELECT 'wf', g, 1, 'succeeded', '', md5(g::text), '', now() - interval '1 hour', now()
FROM generate_series(1, {ROWS}) AS g;
INSERT INTO automate_step_run (run_id, position, name, connector, action, status, attempt, error,
                               started_at, finished_at, duration_ms)
SELECT id, 1, 's', 'log', 'log', 'succeeded', 1, '', started_at, finished_at, 1.0 FROM automate_run;
ANALYZE automate_run, automate_step_run;
"""

WRITE = """
WITH run AS (
    INSERT INTO automate_run (id, workflow_name, event_id, attempt, status, error, trace_id, mode)
    SELECT CASE WHEN to_regclass('automate_run_legacy') IS NULL THEN nextval('automate_run_id_seq')
                ELSE automate_history_id('automate_run_id_seq') END,
           'writer', 0, 1, 'running', '', 'w', ''
    RETURNING id
)
INSERT INTO automate_step_run (run_id, position, name, connector, action, status, attempt, error,
                               started_at, finished_at, duration_ms)
SELECT id, 1, 's', 'log', 'log', 'succeeded', 1, '', now(), now(), 1.0 FROM run
RETURNING run_id
"""

# what the switch must not rebuild: the tables' files and their indexes
STORAGE = """
SELECT c.relname, c.relfilenode, array_agg(i.indexrelid::regclass::text || ':' || ic.relfilenode ORDER BY 1)
FROM pg_class AS c JOIN pg_index AS i ON i.indrelid = c.oid JOIN pg_class AS ic ON ic.oid = i.indexrelid
WHERE c.oid = ANY(%s::regclass[])
GROUP BY c.relname, c.relfilenode
"""


@contextlib.contextmanager
def migrated_to(suffix: str, migration: str, home: Path) -> Iterator[str]:
    """A database of the test's own (``<test db>_<suffix>``), migrated to ``migration``; dropped after."""
    base = database_url()
    params = conninfo_to_dict(base)
    name = f"{params['dbname']}_{suffix}"
    drop(base, name)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo("", **{**params, "dbname": name})
    env = {**harness_env(home), "DATABASE_URL": django_url(url)}
    done = subprocess.run(
        [AUTOMATE.replace("automate", "python"), "-m", "django", "migrate", "automate_core", migration],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        yield url
    finally:
        drop(base, name)


@pytest.fixture(scope="module")
def plain_db(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_to("convert", "0015", Path(tmp_path_factory.mktemp("home"))) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FILL)
            conn.execute(ids.CREATE_FUNCTION)
        yield url


class Writer(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ids: list[int] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.first = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                try:
                    row = conn.execute(WRITE).fetchone()
                    assert row is not None
                    self.ids.append(row[0])
                    self.first.set()
                except psycopg.Error as exc:
                    self.errors.append(str(exc))


def test_a_live_table_of_a_million_runs_is_partitioned_without_rewriting_or_losing_a_row(
    plain_db: str,
) -> None:
    with psycopg.connect(plain_db, autocommit=True) as conn:
        before = {r[0]: r[1:] for r in conn.execute(STORAGE, [[t.name for t in tables.RUN_RECORDS]])}
        writer = Writer(plain_db)
        writer.start()
        assert writer.first.wait(30)
        cur = conn.cursor()
        convert.prepare(cur, TODAY, tables.RUN_RECORDS)
        convert.switch(cur, TODAY, ahead=2, group=tables.RUN_RECORDS)
        switched = len(writer.ids)
        while len(writer.ids) < switched + 20 and not writer.errors:  # the writer goes on after it
            writer.join(0.05)
        writer.stop.set()
        writer.join(30)
        assert writer.errors == []

        # nothing rewritten: the old tables are the legacy partitions, with the same files and indexes
        after = {r[0]: r[1:] for r in conn.execute(STORAGE, [[t.legacy for t in tables.RUN_RECORDS]])}
        for table in tables.RUN_RECORDS:
            old_file, old_indexes = before[table.name]
            new_file, new_indexes = after[table.legacy]
            assert new_file == old_file
            files = {entry.rsplit(":", 1)[1] for entry in new_indexes}
            # every index of the old table is there, unbuilt; the steps' (id, run_id) key was built
            # beside them, concurrently, before the switch, and replaced their old key (id)
            kept = {e.rsplit(":", 1)[1] for e in old_indexes if not e.startswith(f"{tables.STEPS.name}_pkey")}
            assert kept <= files and len(files) == len(old_indexes)

        # nothing lost: every old row and every row the writer wrote, each once
        runs = conn.execute("SELECT count(*), count(DISTINCT id) FROM automate_run").fetchone()
        assert runs == (ROWS + len(writer.ids), ROWS + len(writer.ids))
        steps = conn.execute("SELECT count(*) FROM automate_step_run").fetchone()
        assert steps == (ROWS + len(writer.ids),)
        written = conn.execute("SELECT id FROM automate_run WHERE workflow_name = 'writer'").fetchall()
        assert sorted(r[0] for r in written) == sorted(writer.ids)

        # old rows (and the writer's before the switch) in the legacy partition, new ones in today's
        placed: dict[str, int] = dict(
            conn.execute("SELECT tableoid::regclass::text, count(*) FROM automate_run GROUP BY 1").fetchall()
        )
        new_ids = [i for i in writer.ids if i >= ids.bound(TODAY)]
        assert len(new_ids) >= 20 and all(ids.day_of(i) == TODAY for i in new_ids)
        assert placed == {
            tables.RUNS.legacy: ROWS + len(writer.ids) - len(new_ids),
            tables.RUNS.partition(TODAY): len(new_ids),
        }
        steps_placed: dict[str, int] = dict(
            conn.execute(
                "SELECT tableoid::regclass::text, count(*) FROM automate_step_run GROUP BY 1"
            ).fetchall()
        )
        assert steps_placed.get(tables.STEPS.partition(TODAY)) == len(new_ids)
        # the days ahead are there, and a second conversion finds nothing to do
        names = {
            r[1] for r in conn.execute(tables.LIST_PARTITIONS.replace("%(tables)s", "%s"), [["automate_run"]])
        }
        assert {tables.RUNS.partition(TODAY + dt.timedelta(days=n)) for n in range(3)} <= names
        assert convert.convert(conn.cursor(), ahead=2) is False


def test_the_switch_waits_its_turn_behind_a_long_transaction_and_says_so(
    plain_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    # (a switch never gets past its lock while a transaction holds the tables: nothing changes)
    tables_busy = threading.Event()
    release = threading.Event()

    def blocker() -> None:
        with psycopg.connect(plain_db) as conn:  # a transaction holding a lock on the run table
            conn.execute("SELECT count(*) FROM automate_run WHERE id = 1")
            tables_busy.set()
            release.wait(60)
            conn.rollback()

    thread = threading.Thread(target=blocker, daemon=True)
    thread.start()
    assert tables_busy.wait(30)
    caplog.set_level(logging.WARNING, logger="automate.history")
    with psycopg.connect(plain_db, autocommit=True) as conn:
        cur = conn.cursor()
        with pytest.raises(PartitioningBlocked, match="a long transaction holds them; nothing was changed"):
            convert.switch(cur, TODAY, ahead=0, group=tables.RUN_RECORDS, lock_timeout_ms=50, attempts=2)
        assert [r.message for r in caplog.records if "busy" in r.message] == [
            "partitioning: automate_step_run, automate_run are busy (attempt 1 of 2); trying again",
            "partitioning: automate_step_run, automate_run are busy (attempt 2 of 2); trying again",
        ]
        # rolled back whole: the tables are as they were
        count = conn.execute("SELECT count(*) FROM automate_run").fetchone()
        assert count is not None and count[0] > ROWS
    release.set()
    thread.join(30)
