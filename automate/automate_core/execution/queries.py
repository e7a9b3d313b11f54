"""SQL of the execution stage: the run journal and the concurrency slots."""

from __future__ import annotations

from typing import LiteralString

# The fence of every run record a job writes: the job is still running at the claim (its
# ``attempts``) that writes. A worker whose lease was taken over (frozen, cut off, slow) finds
# ``attempts`` moved on and writes nothing more; runs without a job (test mode) pass. ``FOR SHARE``
# holds the job row until the write commits, so a rescue or a new claim (both lock the row) waits
# for it, and the new claim reads this run as it ends, never as it was a moment before.
_CLAIM_HELD: LiteralString = """
    %(claim)s::int IS NULL OR EXISTS (
        SELECT 1 FROM automate_outbox_job
        WHERE id = %(job_id)s AND attempts = %(claim)s AND status = 'running'
        FOR SHARE
    )
"""

# A new run, only while the job's claim holds (no row back: the claim was taken over).
START_RUN: LiteralString = (
    """
INSERT INTO automate_run
    (workflow_id, workflow_name, version_id, event_id, job_id, attempt, status, error, trace_id,
     mode, parent_id, started_at)
SELECT %(workflow_id)s, %(workflow_name)s, %(version_id)s, %(event_id)s, %(job_id)s, %(attempt)s,
       'running', '', %(trace_id)s, %(mode)s, %(parent_id)s, now()
WHERE """
    + _CLAIM_HELD
    + """
RETURNING id
"""
)

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

# The step's record, and in the same round trip the run's status: a run cancelled meanwhile
# reads 'cancelled' here and stops before its next step.
RECORD_STEP: LiteralString = """
INSERT INTO automate_step_run
    (run_id, position, name, connector, action, status, attempt, input, output, error,
     started_at, finished_at, duration_ms)
VALUES (%(run_id)s, %(position)s, %(name)s, %(connector)s, %(action)s, %(status)s, %(attempt)s,
        %(input)s::jsonb, %(output)s::jsonb, %(error)s, %(started_at)s, %(finished_at)s,
        %(duration_ms)s)
RETURNING (SELECT status FROM automate_run WHERE id = %(run_id)s)
"""

# Guarded by status (a run cancelled while its last step ran stays cancelled) and by the claim:
# a run whose job was taken over ends ``failed`` as superseded, never ``succeeded``, so the new
# claim resumes it (reusing the steps recorded as done) and the event keeps one succeeded run.
FINISH_RUN: LiteralString = (
    """
WITH fence AS (SELECT ("""
    + _CLAIM_HELD
    + """) AS held)
UPDATE automate_run AS r
SET status = CASE WHEN fence.held THEN %(status)s ELSE 'failed' END,
    error = CASE WHEN fence.held THEN %(error)s
                 ELSE 'superseded: the job''s lease was taken over while this run was ending; '
                      || 'the new claim resumes it' END,
    finished_at = now()
FROM fence
WHERE r.id = %(run_id)s AND r.status = 'running'
RETURNING r.status
"""
)

# On a job's retry: the latest run of each workflow this job already ran (automate_run_job).
PREVIOUS_RUNS: LiteralString = """
SELECT DISTINCT ON (workflow_id) id, workflow_id, version_id, status, mode, parent_id
FROM automate_run
WHERE job_id = %(job_id)s AND workflow_id IS NOT NULL
ORDER BY workflow_id, id DESC
"""

# The last record of each step of a run, in order (to resume after its failed step).
RUN_STEPS: LiteralString = """
SELECT DISTINCT ON (position) position, name, status, output
FROM automate_step_run WHERE run_id = %(run_id)s
ORDER BY position, id DESC
"""

# A run whose worker died mid-run is closed when its job's next attempt takes over. A worker that
# was only frozen finds it so at its next step record, and stops.
ABANDON_RUN: LiteralString = """
UPDATE automate_run
SET status = 'failed', finished_at = now(),
    error = 'abandoned: its worker stopped during the run; attempt ' || (attempt + 1) || ' resumes it'
WHERE id = %(run_id)s AND status = 'running'
"""

# Take a free slot of a workflow's concurrency limit for this claim (job id + attempt).
# A slot is free when no row holds it, or when its holder's claim is over: the job is not
# running at that attempt any more, or its lease expired (a killed worker). Two claims racing
# for the same free slot serialise on its unique index: the second re-checks the holder under
# the row lock (ON CONFLICT ... WHERE), finds it live and gets no row back.
ACQUIRE_SLOT: LiteralString = """
WITH live AS (
    SELECT s.slot FROM automate_concurrency_slot AS s
    JOIN automate_outbox_job AS j
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
    SELECT 1 FROM automate_outbox_job AS j
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
