"""SQL read at scrape time by ``/metrics``, ``/readyz`` and the KEDA scaler (kept in step with it).

Every statement here runs on each scrape of every web process, so each one reads a partial index
whose predicate the ``WHERE`` clause repeats exactly, or a BRIN index over a recent time range:
its cost follows the size of the queue, never the size of the history (completed jobs, old runs).
A test checks the plans with ``EXPLAIN``.
"""

from __future__ import annotations

# One round trip for the whole outbox picture. Each subquery matches one partial index of
# OutboxJob (automate_outbox_claimable, automate_outbox_leased, automate_outbox_dead; a running
# job always holds a lease, so "lease_expires_at IS NOT NULL" selects the leased index), so
# PostgreSQL can answer from the index; ``completed`` is left out on purpose: it is the history.
# ``due`` is what workers should be running now (ready or retry, available_at passed);
# ``oldest_due_age`` is how long the oldest of those has waited past its availability.
OUTBOX_DEPTH = """
SELECT
    (SELECT count(*) FROM automate_outbox_job
      WHERE status IN ('ready', 'retry') AND status = 'ready') AS ready,
    (SELECT count(*) FROM automate_outbox_job
      WHERE status IN ('ready', 'retry') AND status = 'retry') AS retry,
    (SELECT count(*) FROM automate_outbox_job
      WHERE status IN ('ready', 'retry') AND available_at <= now()) AS due,
    (SELECT count(*) FROM automate_outbox_job
      WHERE lease_expires_at IS NOT NULL AND status = 'running') AS running,
    (SELECT count(*) FROM automate_outbox_job WHERE status = 'dead') AS dead,
    (SELECT coalesce(extract(epoch FROM now() - min(available_at)), 0)::float8
       FROM automate_outbox_job
      WHERE status IN ('ready', 'retry') AND available_at <= now()) AS oldest_due_age
"""

# Per queue (issue 13): jobs waiting (ready or retry, due or not), jobs due now and how long the
# oldest due job has waited past its availability. Reads the partial index of claimable rows by
# queue (automate_outbox_by_queue: its predicate is repeated, its leading column groups), so the
# cost follows the claimable queue, not the history; an empty queue has no row.
QUEUE_DEPTH = """
SELECT queue, count(*) AS waiting,
       count(*) FILTER (WHERE available_at <= now()) AS due,
       coalesce(extract(epoch FROM now() - min(available_at) FILTER (WHERE available_at <= now())), 0)::float8
           AS oldest_due_age
FROM automate_outbox_job
WHERE status IN ('ready', 'retry')
GROUP BY queue
ORDER BY queue
"""

# Run outcomes of the last five minutes, over every worker on every host (the per-process
# counters only know their own process). The BRIN index automate_run_started_brin (migration
# 0003_ops_run_started_brin) keeps this to the few most recent block ranges of the table.
RECENT_RUNS = """
SELECT status, count(*) FROM automate_run
 WHERE started_at > now() - interval '5 minutes'
 GROUP BY status
"""
RECENT_RUNS_WINDOW_SECONDS = 300

# The scaling signal for workers, as KEDA's postgresql trigger reads it (the same text is in
# deploy/kubernetes/worker-scaledobject.yaml; a test keeps the two equal): jobs due now plus
# jobs running, so the replica count follows the work in flight, not only the backlog.
WORKER_DEMAND = (
    "SELECT (SELECT count(*) FROM automate_outbox_job"
    " WHERE status IN ('ready', 'retry') AND available_at <= now())"
    " + (SELECT count(*) FROM automate_outbox_job WHERE lease_expires_at IS NOT NULL AND status = 'running')"
)

# /readyz: migrations recorded as applied (compared with the files on disk, read once).
APPLIED_MIGRATIONS = "SELECT app, name FROM django_migrations"

# /readyz: the database answers.
PING = "SELECT 1"

# Open waits by kind and the age of the oldest of each (the partial index automate_wait_open_age
# holds only open waits).
WAITING_RUNS = """
SELECT kind, count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
FROM automate_run_wait WHERE status = 'open'
GROUP BY kind
"""
