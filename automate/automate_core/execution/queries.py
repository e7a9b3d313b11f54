"""SQL of the execution stage: the run journal and the concurrency slots."""

from __future__ import annotations

from typing import LiteralString

# The run journal's writes are group-committed (``execution.grouped``): each statement takes the
# records of many concurrent jobs as one JSON document (an array of objects, one per record, read
# with ``jsonb_to_recordset``), and one transaction carries the statements of a flush. Every
# record says which claim writes it (``job_id``, ``claim`` = the job's ``attempts``; NULL for runs
# without a job), and the claim fences it: the job must still be running at that attempt. A worker
# whose lease was taken over (frozen, cut off, slow) finds ``attempts`` moved on and cannot start
# a run or end one ``succeeded``.

# New runs, each only while its job's claim holds. The ids are drawn first so that each record
# (``n``, its place in the document) learns its run's id; a record missing from the result was
# fenced off. A record may bring its id (``run_id``, drawn by its job's claim: a late start,
# execution.late_start); the others draw theirs here.
START_RUNS: LiteralString = """
WITH src AS (
    SELECT coalesce(u.run_id, automate_history_id('automate_run_id_seq')) AS id, u.*
    FROM jsonb_to_recordset(%(rows)s::jsonb)
         AS u(n int, run_id bigint, workflow_id bigint, workflow_name text, version_id bigint,
              event_id bigint, job_id bigint, claim int, attempt int, trace_id text, mode text,
              parent_id bigint, started_at timestamptz)
    WHERE u.claim IS NULL OR EXISTS (
        SELECT 1 FROM automate_outbox_job_live AS j
        WHERE j.id = u.job_id AND j.attempts = u.claim AND j.status = 'running'
    )
), inserted AS (
    INSERT INTO automate_run
        (id, workflow_id, workflow_name, version_id, event_id, job_id, attempt, status, error,
         trace_id, mode, parent_id, started_at)
    SELECT id, workflow_id, workflow_name, version_id, event_id, job_id, attempt, 'running', '',
           trace_id, mode, parent_id, coalesce(started_at, now())
    FROM src
)
SELECT n, id FROM src
"""

# Runs whose start was held (execution.late_start), written in one insert with the ids their
# claims drew: either ended (``status`` succeeded or failed: the whole run, at its end) or
# ``running`` (the start, with the step record that made it due). The claim fences them as it
# fences START_RUNS and FINISH_RUNS, but a fenced record is not dropped: its step ran, so the run
# is written ``failed`` as superseded (never ``succeeded``, never ``running``), with its step, and
# the worker stops; the job's new claim runs it again. Its step records go in the same transaction
# (RECORD_STEPS, after this statement).
WHOLE_RUNS: LiteralString = """
WITH src AS (
    SELECT u.*, u.claim IS NULL OR EXISTS (
               SELECT 1 FROM automate_outbox_job_live AS j
               WHERE j.id = u.job_id AND j.attempts = u.claim AND j.status = 'running'
           ) AS held
    FROM jsonb_to_recordset(%(rows)s::jsonb)
         AS u(run_id bigint, workflow_id bigint, workflow_name text, version_id bigint,
              event_id bigint, job_id bigint, claim int, attempt int, trace_id text, mode text,
              parent_id bigint, started_at timestamptz, status text, error text)
)
INSERT INTO automate_run
    (id, workflow_id, workflow_name, version_id, event_id, job_id, attempt, status, error,
     trace_id, mode, parent_id, started_at, finished_at)
SELECT run_id, workflow_id, workflow_name, version_id, event_id, job_id, attempt,
       CASE WHEN held THEN status ELSE 'failed' END,
       CASE WHEN held THEN error
            ELSE 'superseded: the job''s lease was taken over while this run went on; '
                 || 'the new claim runs it again' END,
       trace_id, mode, parent_id, started_at,
       CASE WHEN held AND status = 'running' THEN NULL ELSE now() END
FROM src
RETURNING id, status
"""

# A queued run (manual trigger, replay) as it is now.
QUEUED_RUN: LiteralString = """
SELECT workflow_id, version_id, mode, parent_id, status FROM automate_run WHERE id = %(run_id)s
"""

# A queued run starts, unless it was cancelled while it waited.
BEGIN_QUEUED_RUN: LiteralString = """
UPDATE automate_run SET status = 'running', attempt = %(attempt)s, started_at = now()
WHERE id = %(run_id)s AND status = 'queued'
RETURNING id
"""

# Step records, and with each its run's status: anything but 'running' tells the worker to stop
# before the next step ('cancelled'; 'failed' when a new claim of the job abandoned the run). A
# record is written whatever the status: a step that ran is history, and a resume reuses it. The
# statuses are read by the runs' ids as a constant array (%(ids)s), so the planner reads only the
# day partitions those ids name: a per-row subquery would be planned against every partition of
# automate_run, a cost that grows with the days retained (a test reads the plan). The SELECT sees
# the runs as they were before this statement, as a subquery of the INSERT would.
RECORD_STEPS: LiteralString = """
WITH inserted AS (
    INSERT INTO automate_step_run
        (run_id, position, name, connector, action, status, attempt, input, output, error,
         started_at, finished_at, duration_ms)
    SELECT run_id, position, name, connector, action, status, attempt, input::jsonb, output::jsonb,
           error, started_at, finished_at, duration_ms
    FROM jsonb_to_recordset(%(rows)s::jsonb)
         AS u(run_id bigint, position int, name text, connector text, action text, status text,
              attempt int, input text, output text, error text, started_at timestamptz,
              finished_at timestamptz, duration_ms float8)
)
SELECT r.id, r.status FROM automate_run AS r WHERE r.id = ANY(%(ids)s::bigint[])
"""

# Runs end, guarded by status (a run cancelled while its last step ran stays cancelled) and by
# the claim: a run whose job was taken over ends ``failed`` as superseded, never ``succeeded``, so
# the new claim resumes it (reusing the steps recorded as done). A new claim that finds the run
# still running abandons it (``ABANDON_RUN``); that UPDATE waits on this one's row lock and then
# re-reads the status, so the two never both win.
FINISH_RUNS: LiteralString = """
UPDATE automate_run AS r
SET status = CASE WHEN f.held THEN f.status ELSE 'failed' END,
    error = CASE WHEN f.held THEN f.error
                 ELSE 'superseded: the job''s lease was taken over while this run was ending; '
                      || 'the new claim resumes it' END,
    finished_at = now()
FROM (
    SELECT u.run_id, u.status, u.error,
           u.claim IS NULL OR EXISTS (
               SELECT 1 FROM automate_outbox_job_live AS j
               WHERE j.id = u.job_id AND j.attempts = u.claim AND j.status = 'running'
           ) AS held
    FROM jsonb_to_recordset(%(rows)s::jsonb)
         AS u(run_id bigint, status text, error text, job_id bigint, claim int)
) AS f
WHERE r.id = f.run_id AND r.id = ANY(%(ids)s::bigint[]) AND r.status = 'running'
RETURNING r.id, r.status
"""

# A run's status now (after an abandon found it no longer running).
RUN_STATUS: LiteralString = "SELECT status FROM automate_run WHERE id = %(run_id)s"

# On a job's retry: the latest run of each workflow this job already ran (the index of automate_run.job_id).
PREVIOUS_RUNS: LiteralString = """
SELECT DISTINCT ON (workflow_id) id, workflow_id, version_id, status, mode, parent_id, job_id
FROM automate_run
WHERE job_id = %(job_id)s AND workflow_id IS NOT NULL
ORDER BY workflow_id, id DESC
"""

# The same for a later claim of an event job: also the event's runs (mode '') that parked and woke,
# carried now by their wake job (RESUME_RUN moves ``job_id`` to it). Found by the job id alone,
# this job's retry (its completion lost with a killed worker, after the run woke) would not see
# such a run and would start the workflow a second time. Only a run carried by one of its own
# wake jobs qualifies: the failed run of a dead job that this job replays is not this job's.
PREVIOUS_EVENT_RUNS: LiteralString = """
SELECT DISTINCT ON (workflow_id) id, workflow_id, version_id, status, mode, parent_id, job_id
FROM automate_run AS r
WHERE workflow_id IS NOT NULL
  AND (job_id = %(job_id)s
       OR (event_id = %(event_id)s AND mode = '' AND EXISTS (
           SELECT 1 FROM automate_run_wait AS w WHERE w.run_id = r.id AND w.job_id = r.job_id)))
ORDER BY workflow_id, id DESC
"""

# The last record of each step of a run, by name (a construct's items and branches are records
# of their own, ``reserve[3]``, at their step's position), in order (to resume after its failed step).
RUN_STEPS: LiteralString = """
SELECT position, name, status, output FROM (
    SELECT DISTINCT ON (name) position, name, status, output, id
    FROM automate_step_run WHERE run_id = %(run_id)s
    ORDER BY name, id DESC
) AS latest
ORDER BY position, id
"""

# A queued run with what a called run needs (its input).
QUEUED_RUN_INPUT: LiteralString = "SELECT input FROM automate_run WHERE id = %(run_id)s"

# A run whose worker died mid-run is closed when its job's next attempt takes over. A worker that
# was only frozen finds it so at its next step record, and stops.
ABANDON_RUN: LiteralString = """
UPDATE automate_run
SET status = 'failed', finished_at = now(),
    error = 'abandoned: its worker stopped during the run; attempt ' || (attempt + 1) || ' resumes it'
WHERE id = %(run_id)s AND status = 'running'
RETURNING id
"""

# Take a free slot of a workflow's concurrency limit for this claim (job id + attempt).
# A slot is free when no row holds it, or when its holder's claim is over: the job is not
# running at that attempt any more, or its lease expired (a killed worker). Two claims racing
# for the same free slot serialise on its unique index: the second re-checks the holder under
# the row lock (ON CONFLICT ... WHERE), finds it live and gets no row back.
ACQUIRE_SLOT: LiteralString = """
WITH live AS (
    SELECT s.slot FROM automate_concurrency_slot AS s
    JOIN automate_outbox_job_live AS j
      ON j.id = s.job_id AND j.attempts = s.job_attempt AND j.status = 'running'
         AND j.lease_expires_at > now()
    WHERE s.workflow_id = %(workflow_id)s AND s.key = %(key)s
)
INSERT INTO automate_concurrency_slot AS s (workflow_id, key, slot, job_id, job_attempt, acquired_at)
SELECT %(workflow_id)s, %(key)s, n, %(job_id)s, %(attempt)s, now()
FROM generate_series(0, %(limit)s - 1) AS n
WHERE n NOT IN (SELECT slot FROM live)
ORDER BY n
LIMIT 1
ON CONFLICT (workflow_id, key, slot) DO UPDATE
SET job_id = EXCLUDED.job_id, job_attempt = EXCLUDED.job_attempt, acquired_at = now()
WHERE NOT EXISTS (
    SELECT 1 FROM automate_outbox_job_live AS j
    WHERE j.id = s.job_id AND j.attempts = s.job_attempt AND j.status = 'running'
      AND j.lease_expires_at > now()
)
RETURNING slot
"""

RELEASE_SLOT: LiteralString = """
DELETE FROM automate_concurrency_slot
WHERE workflow_id = %(workflow_id)s AND key = %(key)s AND slot = %(slot)s
  AND job_id = %(job_id)s AND job_attempt = %(attempt)s
"""
