"""SQL of the admission controls (``execution.controls``)."""

from __future__ import annotations

from typing import LiteralString

# Rate limit: a fixed window per (workflow, key), aligned on multiples of the period since the
# epoch. One upsert counts this run in the current window (a new window starts at 1) and says
# where the window ends; the row lock serialises concurrent workers on the same key.
RATE_LIMIT_COUNT: LiteralString = """
INSERT INTO automate_admission_state AS s (workflow_id, kind, key, at, count)
VALUES (%(workflow_id)s, 'rate_limit', %(key)s,
        to_timestamp(floor(extract(epoch FROM now()) / %(period)s) * %(period)s), 1)
ON CONFLICT (workflow_id, kind, key) DO UPDATE
SET count = CASE WHEN s.at = EXCLUDED.at THEN s.count + 1 ELSE 1 END, at = EXCLUDED.at
RETURNING count, at + make_interval(secs => %(period)s)
"""

# Throttle: GCRA. ``at`` is the key's theoretical arrival time (TAT); each run pushes it one
# emission interval (period / limit) past max(TAT, now). The run may start once TAT has come
# within ``burst`` intervals: its start is max(now, new TAT - burst * interval). So with burst 1
# runs start one interval apart, at most ``limit`` per period; the row lock of the upsert
# serialises the workers of one key, and the statement runs in the transaction that queues the
# delayed run, so a turn is never handed out without its run (nor a run without its turn).
THROTTLE_TAKE: LiteralString = """
INSERT INTO automate_admission_state AS s (workflow_id, kind, key, at, count)
VALUES (%(workflow_id)s, 'throttle', %(key)s, now() + make_interval(secs => %(interval)s), 1)
ON CONFLICT (workflow_id, kind, key) DO UPDATE
SET at = greatest(s.at, now()) + make_interval(secs => %(interval)s), count = s.count + 1
RETURNING greatest(now(), at - make_interval(secs => %(interval)s * %(burst)s)),
          extract(epoch FROM at - make_interval(secs => %(interval)s * %(burst)s) - now())::float8
"""

# The event job's claim, held for the transaction (a takeover's claim waits for its commit, so
# the new claim sees what this one admitted).
HOLD_CLAIM: LiteralString = """
SELECT 1 FROM automate_outbox_job_live
WHERE id = %(job_id)s AND attempts = %(claim)s AND status = 'running'
FOR SHARE
"""

# On a later claim of an event job: the runs an earlier claim already admitted for this event,
# by workflow, and whether that claim's own job holds them (an inline run: the retry resumes it)
# or a run job does (handed off, delayed or skipped: nothing more to do).
ADMITTED: LiteralString = """
SELECT workflow_id, bool_or(job_id = %(job_id)s)
FROM automate_run
WHERE event_id = %(event_id)s AND workflow_id = ANY(%(workflow_ids)s) AND mode = ''
GROUP BY workflow_id
"""

# A run handed off to a run job: queued, with its job on the workflow's queue, priority and fair
# key, available at ``available_at`` (a throttled run's turn, else now).
HAND_OFF: LiteralString = """
WITH ids AS (
    SELECT automate_history_id('automate_run_id_seq') AS run_id,
           nextval(pg_get_serial_sequence('automate_outbox_job', 'id')) AS job_id
), run AS (
    INSERT INTO automate_run
        (id, workflow_id, workflow_name, version_id, event_id, job_id, attempt, status, error,
         trace_id, mode, started_at)
    SELECT ids.run_id, %(workflow_id)s, %(workflow_name)s, %(version_id)s, %(event_id)s, ids.job_id,
           0, 'queued', %(note)s, %(trace_id)s, '', now()
    FROM ids
    RETURNING id, job_id
), job AS (
    INSERT INTO automate_outbox_job_live
        (id, event_id, kind, status, attempts, releases, max_attempts, available_at, lease_owner,
         last_error, payload, queue, priority, fair_key, created_at, updated_at)
    SELECT run.job_id, %(event_id)s, 'event', 'ready', 0, 0, %(max_attempts)s,
           coalesce(%(available_at)s::timestamptz, now()),
           '', '', jsonb_build_object('run', run.id), %(queue)s, %(priority)s, %(fair_key)s, now(), now()
    FROM run
    RETURNING id
)
SELECT run.id, job.id FROM run JOIN job ON job.id = run.job_id
"""

# A run recorded as skipped (rate limit reached, singleton held), under the event job's claim.
SKIP_RUN: LiteralString = """
INSERT INTO automate_run
    (workflow_id, workflow_name, version_id, event_id, job_id, attempt, status, error, trace_id,
     mode, started_at, finished_at)
SELECT %(workflow_id)s, %(workflow_name)s, %(version_id)s, %(event_id)s, %(job_id)s, %(attempt)s,
       'skipped', %(reason)s, %(trace_id)s, '', now(), now()
WHERE EXISTS (
    SELECT 1 FROM automate_outbox_job_live AS j
    WHERE j.id = %(job_id)s AND j.attempts = %(claim)s AND j.status = 'running'
)
RETURNING id
"""

# A queued run (a run job's) recorded as skipped instead of started.
SKIP_QUEUED_RUN: LiteralString = """
UPDATE automate_run SET status = 'skipped', error = %(reason)s, attempt = %(attempt)s,
       started_at = now(), finished_at = now()
WHERE id = %(run_id)s AND status = 'queued'
RETURNING id
"""

# Singleton: the lock is slot -1 of the workflow's concurrency slots (a limit's slots are 0..N-1),
# tied to the holder's claim like any slot (``execution.queries.ACQUIRE_SLOT``). Taken when no row
# holds it or its holder's claim is over (the job moved on, or its lease expired: a killed worker).
SINGLETON_LOCK: LiteralString = """
INSERT INTO automate_concurrency_slot AS s (workflow_id, key, slot, job_id, job_attempt, acquired_at)
VALUES (%(workflow_id)s, %(key)s, -1, %(job_id)s, %(attempt)s, now())
ON CONFLICT (workflow_id, key, slot) DO UPDATE
SET job_id = EXCLUDED.job_id, job_attempt = EXCLUDED.job_attempt, acquired_at = now()
WHERE (s.job_id = EXCLUDED.job_id AND s.job_attempt = EXCLUDED.job_attempt) OR NOT EXISTS (
    SELECT 1 FROM automate_outbox_job_live AS j
    WHERE j.id = s.job_id AND j.attempts = s.job_attempt AND j.status = 'running'
      AND j.lease_expires_at > now()
)
RETURNING slot
"""

# The lock's holder: its job and the run it is carrying out for this workflow (cancel mode).
SINGLETON_HOLDER: LiteralString = """
SELECT s.job_id, r.id, r.event_id
FROM automate_concurrency_slot AS s
LEFT JOIN LATERAL (
    SELECT id, event_id FROM automate_run
    WHERE job_id = s.job_id AND workflow_id = s.workflow_id AND status IN ('running', 'queued')
    ORDER BY id DESC LIMIT 1
) AS r ON true
WHERE s.workflow_id = %(workflow_id)s AND s.key = %(key)s AND s.slot = -1
"""

# Cancel mode: the older run ends cancelled with the reason (it stops before its next step, as
# any cancelled run: its next step record reads the status).
CANCEL_RUN: LiteralString = """
UPDATE automate_run SET status = 'cancelled', error = %(reason)s, finished_at = now()
WHERE id = %(run_id)s AND status IN ('queued', 'running', 'waiting')
RETURNING id
"""
