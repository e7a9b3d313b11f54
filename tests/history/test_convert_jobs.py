"""Partitioning the outbox's job table of a live database (migration 0018): nothing lost, nothing
rewritten, the queue goes on.

A database of the test's own is migrated to 0017 and filled with a million jobs: 900,000 completed
(a day of history) and 100,000 waiting. While the conversion runs, a web process and a worker of
the previous release go on: one inserts new jobs, the other claims and completes them with the
previous release's statements (which name ``automate_outbox_job`` and complete by an update). They
must never fail, and every job must be there once afterwards. Then this release's statements claim
and complete on the converted table, and its completed jobs are in today's partition.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from automate_core.history import settled, tables
from automate_core.outbox import queries
from tests.history.test_convert import STORAGE, migrated_to

ROWS = 1_000_000
WAITING = 100_000
TODAY = dt.datetime.now(dt.UTC).date()

FILL = f"""
INSERT INTO automate_outbox_job
    (kind, status, attempts, max_attempts, available_at, lease_owner, last_error, created_at,
     updated_at, completed_at)
SELECT 'task', CASE WHEN g > {ROWS - WAITING} THEN 'ready' ELSE 'completed' END,
       CASE WHEN g > {ROWS - WAITING} THEN 0 ELSE 1 END, 5,
       now() - make_interval(secs => ({ROWS} - g) * 0.05), '', '',
       now() - make_interval(secs => ({ROWS} - g) * 0.05), now(),
       CASE WHEN g > {ROWS - WAITING} THEN NULL ELSE now() - make_interval(secs => ({ROWS} - g) * 0.05) END
FROM generate_series(1, {ROWS}) AS g;
ANALYZE automate_outbox_job;
"""

# the previous release's statements (before migration 0018): enqueue, claim, complete
PREVIOUS_ENQUEUE = """
INSERT INTO automate_outbox_job (event_id, kind, status, attempts, releases, max_attempts, available_at,
                                 lease_owner, last_error, payload, queue, priority, created_at, updated_at)
VALUES (NULL, 'task', 'ready', 0, 0, 5, now(), '', '', '{"writer": true}', 'default', 0, now(), now())
RETURNING id
"""
PREVIOUS_CLAIM = """
WITH candidates AS (
    SELECT id FROM automate_outbox_job
    WHERE status IN ('ready', 'retry') AND available_at <= now()
    ORDER BY claim_rank, id
    LIMIT 50
    FOR UPDATE SKIP LOCKED
)
UPDATE automate_outbox_job AS j
SET status = 'running', attempts = j.attempts + 1, lease_owner = 'old',
    lease_expires_at = now() + interval '30 seconds', updated_at = now()
FROM candidates WHERE j.id = candidates.id
RETURNING j.id, j.attempts
"""
PREVIOUS_COMPLETE = """
UPDATE automate_outbox_job AS j
SET status = 'completed', completed_at = now(), updated_at = now(), lease_owner = '', lease_expires_at = NULL
FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS s(id, attempts)
WHERE j.id = s.id AND j.attempts = s.attempts AND j.status = 'running' AND j.lease_owner = 'old'
RETURNING j.id
"""


@pytest.fixture(scope="module")
def plain_jobs(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_to("convert_jobs", "0017", Path(tmp_path_factory.mktemp("home"))) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FILL)
        yield url


class Previous(threading.Thread):
    """A process of the previous release: ``enqueue`` inserts jobs, else it claims and completes."""

    def __init__(self, url: str, enqueue: bool) -> None:
        super().__init__(daemon=True)
        self.url, self.enqueue = url, enqueue
        self.ids: list[int] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.first = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                try:
                    if self.enqueue:
                        row = conn.execute(PREVIOUS_ENQUEUE).fetchone()
                        assert row is not None
                        self.ids.append(row[0])
                    else:
                        with conn.transaction():
                            claimed = conn.execute(PREVIOUS_CLAIM).fetchall()
                        ids, attempts = [r[0] for r in claimed], [r[1] for r in claimed]
                        done = conn.execute(PREVIOUS_COMPLETE, {"ids": ids, "attempts": attempts}).fetchall()
                        assert sorted(r[0] for r in done) == sorted(ids)
                        self.ids += ids
                    self.first.set()
                except psycopg.Error as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    return


def test_a_live_table_of_a_million_jobs_is_partitioned_while_the_previous_release_works_on(
    plain_jobs: str,
) -> None:
    with psycopg.connect(plain_jobs, autocommit=True) as conn:
        before = {r[0]: r[1:] for r in conn.execute(STORAGE, [[settled.PARENT]])}
        writer, worker = Previous(plain_jobs, enqueue=True), Previous(plain_jobs, enqueue=False)
        for thread in (writer, worker):
            thread.start()
            assert thread.first.wait(30)
        assert settled.convert_jobs(conn.cursor(), ahead=2) is True
        switched = (len(writer.ids), len(worker.ids))
        while (len(writer.ids) < switched[0] + 20 or len(worker.ids) < switched[1] + 100) and not (
            writer.errors or worker.errors
        ):  # both go on after the switch
            worker.join(0.05)
        for thread in (writer, worker):
            thread.stop.set()
            thread.join(30)
        assert writer.errors == [] and worker.errors == []

        # nothing rewritten: the old table is the queue's partition, with its file and its indexes
        (after,) = conn.execute(STORAGE, [[settled.LIVE]]).fetchall()
        old_file, old_indexes = before[settled.PARENT]
        assert after[1] == old_file
        assert {e.rsplit(":", 1)[1] for e in after[2]} == {e.rsplit(":", 1)[1] for e in old_indexes}

        # nothing lost: every old job and every job the writer wrote, each once; the previous
        # release's completions stay in the queue's partition
        count = conn.execute("SELECT count(*), count(DISTINCT id) FROM automate_outbox_job").fetchone()
        assert count == (ROWS + len(writer.ids),) * 2
        mine = "SELECT id FROM automate_outbox_job WHERE payload ->> 'writer' = 'true'"
        assert sorted(r[0] for r in conn.execute(mine)) == sorted(writer.ids)
        where: dict[str, int] = dict(
            conn.execute(
                "SELECT tableoid::regclass::text, count(*) FROM automate_outbox_job GROUP BY 1"
            ).fetchall()
        )
        assert where == {settled.LIVE: ROWS + len(writer.ids)}
        completed = conn.execute(
            "SELECT count(*) FROM automate_outbox_job WHERE status = 'completed' AND id = ANY(%s)",
            [worker.ids],
        ).fetchone()
        assert completed == (len(worker.ids),)

        # this release on the converted table: its claim reads the queue, its completion moves
        claim = {"limit": 30, "owner": "new", "lease": 30.0}
        rows = conn.execute(queries.CLAIM_BATCH, claim).fetchall()
        assert len(rows) == 30
        ids, attempts = [r[0] for r in rows], [r[2] for r in rows]
        complete = {"ids": ids, "attempts": attempts, "results": [None] * 30, "owner": "new"}
        assert sorted(r[0] for r in conn.execute(queries.COMPLETE, complete)) == sorted(ids)
        moved = conn.execute(
            "SELECT tableoid::regclass::text, count(*), bool_and(status = 'completed' AND settled)"
            " FROM automate_outbox_job WHERE id = ANY(%s) GROUP BY 1",
            [ids],
        ).fetchall()
        assert moved == [(settled.partition(TODAY), 30, True)]
        # a new job through the parent (the ORM's way) lands in the queue and is claimable
        new = conn.execute(PREVIOUS_ENQUEUE).fetchone()
        assert new is not None and new[0] > max(writer.ids)
        assert conn.execute(
            "SELECT tableoid::regclass::text FROM automate_outbox_job WHERE id = %s", new
        ).fetchone() == (settled.LIVE,)
        # the days ahead are there, the replay link has no constraint left, a second run does nothing
        days = {r[1] for r in conn.execute(tables.LIST_PARTITIONS, {"tables": [settled.DONE]})}
        assert {settled.partition(TODAY + dt.timedelta(days=n)) for n in range(3)} <= days
        fks = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = %s::regclass",
            [settled.LIVE],
        ).fetchone()
        assert fks == (0,)
        assert settled.convert_jobs(conn.cursor(), ahead=2) is False
