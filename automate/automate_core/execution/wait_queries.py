"""SQL of durable waits (``execution.waits``): each transition guarded by the state it expects.

A wait goes ``open`` -> ``resolved`` | ``timed_out`` | ``cancelled`` exactly once: every statement
that ends one names ``status = 'open'``, so of a deadline, an event, an answer and a cancel racing
for the same wait one row lock decides, and the losers match nothing. The run goes ``running`` ->
``waiting`` (fenced by the job's claim, like every run record) and back ``waiting`` -> ``running``
under the claim of its wake job, once.
"""

from __future__ import annotations

from typing import LiteralString

# running -> waiting: the run parks on a new wait, fenced by the claim of the job that runs it.
# The wake job (an event job of the run's event, ``payload = {"wake": id}``) becomes available at
# the deadline (``infinity`` when there is none: only a resolution makes it available). The wait
# id is drawn first so the job can name it. ON CONFLICT: a step opens one wait per run, ever.
OPEN_WAIT: LiteralString = """
WITH ids AS (
    SELECT nextval(pg_get_serial_sequence('automate_run_wait', 'id')) AS wait_id
), parked AS (
    UPDATE automate_run AS r SET status = 'waiting'
    WHERE r.id = %(run_id)s AND r.status = 'running'
      AND (%(claim)s::int IS NULL OR EXISTS (
          SELECT 1 FROM automate_outbox_job_live AS j
          WHERE j.id = %(job_id)s AND j.attempts = %(claim)s AND j.status = 'running'))
    RETURNING r.id, r.event_id
), job AS (
    -- the wake job goes on the queue of the job that parks the run, with its priority and fair
    -- key: the workers of that queue carry the run on (a --queue worker resumes its own runs)
    INSERT INTO automate_outbox_job_live
        (event_id, kind, status, attempts, releases, max_attempts, available_at, lease_owner,
         last_error, payload, created_at, updated_at, queue, priority, fair_key)
    SELECT parked.event_id, 'event', 'ready', 0, 0, %(max_attempts)s,
           coalesce(%(deadline)s::timestamptz, 'infinity'), '', '',
           jsonb_build_object('wake', ids.wait_id), now(), now(),
           coalesce(cur.queue, 'default'), coalesce(cur.priority, 0), coalesce(cur.fair_key, '')
    FROM parked CROSS JOIN ids LEFT JOIN automate_outbox_job_live AS cur ON cur.id = %(job_id)s
    RETURNING id
)
INSERT INTO automate_run_wait
    (id, run_id, step_name, kind, status, deadline, job_id, source, event_type, path, value,
     token_hash, prompt, on_timeout, child_run_id, result, resolved_by, created_at)
SELECT ids.wait_id, %(run_id)s, %(step_name)s, %(kind)s, 'open', %(deadline)s, job.id,
       %(source)s, %(event_type)s, %(path)s, %(value)s, %(token_hash)s, %(prompt)s,
       %(on_timeout)s, %(child_run_id)s, NULL, '', now()
FROM ids, job
ON CONFLICT (run_id, step_name) DO NOTHING
RETURNING id, job_id
"""

# One wait, by id.
WAIT_COLUMNS: LiteralString = """
    id, run_id, step_name, kind, status, deadline, job_id, source, event_type, path, value,
    prompt, on_timeout, child_run_id, result, resolved_by, resolved_at, created_at
"""
GET_WAIT: LiteralString = "SELECT" + WAIT_COLUMNS + "FROM automate_run_wait WHERE id = %(wait_id)s"

# open -> timed_out, by the wake job once the deadline has passed.
TIME_OUT: LiteralString = (
    """
UPDATE automate_run_wait SET status = 'timed_out', resolved_at = now(), resolved_by = 'deadline'
WHERE id = %(wait_id)s AND status = 'open' AND deadline <= now()
RETURNING"""
    + WAIT_COLUMNS
)

# open -> resolved by an incoming event: every open wait on this source and type whose payload
# path equals its value, each an index lookup (automate_wait_open_event); the event's id and
# payload become the wait's result. The wake jobs are made available in the same statement.
MATCH_EVENT: LiteralString = """
WITH candidates AS (
    SELECT p.path, %(payload)s::jsonb #>> string_to_array(p.path, '.') AS value
    FROM unnest(%(paths)s::text[]) AS p(path)
), resolved AS (
    UPDATE automate_run_wait AS w
    SET status = 'resolved', resolved_at = now(), resolved_by = 'event ' || %(event_id)s,
        result = jsonb_build_object('event_id', %(event_id)s::bigint, 'payload', %(payload)s::jsonb,
                                    'timed_out', false)
    FROM candidates AS c
    WHERE w.status = 'open' AND w.kind = 'event' AND w.source = %(source)s
      AND w.event_type = %(event_type)s AND w.path = c.path AND w.value = c.value
      AND c.value IS NOT NULL
    RETURNING w.id, w.job_id
), woken AS (
    UPDATE automate_outbox_job_live AS j SET available_at = now(), updated_at = now()
    FROM resolved WHERE j.id = resolved.job_id AND j.status IN ('ready', 'retry')
    RETURNING j.id
)
SELECT id FROM resolved
"""

# A wait that opens with a look-back: the newest event of that source and type received within
# the window whose payload path equals the value (events older than the run's own are allowed:
# the author asked for them).
LOOK_BACK: LiteralString = """
SELECT id, payload FROM automate_event
WHERE source = %(source)s AND event_type = %(event_type)s
  AND received_at >= now() - make_interval(secs => %(seconds)s)
  AND payload #>> string_to_array(%(path)s, '.') = %(value)s
ORDER BY received_at DESC, id DESC
LIMIT 1
"""

# open -> resolved with a given result (an approval's answer, a look-back event, a child run's
# end). By id, or by an approval link's token hash; an approval past its deadline is refused.
RESOLVE: LiteralString = """
WITH resolved AS (
    UPDATE automate_run_wait
    SET status = 'resolved', resolved_at = now(), resolved_by = %(by)s, result = %(result)s::jsonb
    WHERE status = 'open' AND kind = %(kind)s
      AND (id = %(wait_id)s OR token_hash = %(token_hash)s)
      AND (deadline IS NULL OR deadline > now())
    RETURNING id, job_id
), woken AS (
    UPDATE automate_outbox_job_live AS j SET available_at = now(), updated_at = now()
    FROM resolved WHERE j.id = resolved.job_id AND j.status IN ('ready', 'retry')
)
SELECT id FROM resolved
"""

# A called run ended: the open call wait of its calling run (a run has at most one open wait).
CHILD_FINISHED: LiteralString = """
WITH resolved AS (
    UPDATE automate_run_wait
    SET status = 'resolved', resolved_at = now(), resolved_by = 'run ' || %(child_run_id)s,
        result = %(result)s::jsonb
    WHERE run_id = %(parent_id)s AND kind = 'call' AND status = 'open'
    RETURNING id, job_id
), woken AS (
    UPDATE automate_outbox_job_live AS j SET available_at = now(), updated_at = now()
    FROM resolved WHERE j.id = resolved.job_id AND j.status IN ('ready', 'retry')
)
SELECT id FROM resolved
"""

# waiting -> running under the wake job's claim, and the wait's step recorded with its outcome,
# in one statement: a crash after it leaves the outcome in the run records (a resume reuses it).
RESUME_RUN: LiteralString = """
WITH w AS (
    SELECT run_id, step_name, created_at FROM automate_run_wait
    WHERE id = %(wait_id)s AND status IN ('resolved', 'timed_out')
), resumed AS (
    UPDATE automate_run AS r SET status = 'running', job_id = %(job_id)s, attempt = %(attempt)s
    FROM w
    WHERE r.id = w.run_id AND r.status = 'waiting' AND EXISTS (
        SELECT 1 FROM automate_outbox_job_live AS j
        WHERE j.id = %(job_id)s AND j.attempts = %(claim)s AND j.status = 'running')
    RETURNING r.id
), recorded AS (
    INSERT INTO automate_step_run
        (run_id, position, name, connector, action, status, attempt, input, output, error,
         started_at, finished_at, duration_ms)
    SELECT w.run_id, %(position)s, w.step_name, %(connector)s, '', %(status)s, 1, NULL,
           %(output)s::jsonb, %(error)s, w.created_at, now(),
           extract(epoch FROM now() - w.created_at) * 1000.0
    FROM w JOIN resumed ON resumed.id = w.run_id
)
SELECT id FROM resumed
"""

# A run is cancelled: its open waits close and their wake jobs come due (they find the run
# cancelled and complete).
CANCEL_WAITS: LiteralString = """
WITH closed AS (
    UPDATE automate_run_wait SET status = 'cancelled', resolved_at = now(), resolved_by = %(by)s
    WHERE run_id = %(run_id)s AND status = 'open'
    RETURNING job_id
)
UPDATE automate_outbox_job_live AS j SET available_at = now(), updated_at = now()
FROM closed WHERE j.id = closed.job_id AND j.status IN ('ready', 'retry')
"""

# call: the child run, queued on the called workflow's current version with its input, and the
# job that carries it out; written in the transaction that parks the caller (OPEN_WAIT), so
# either both exist or neither does.
QUEUE_CHILD_RUN: LiteralString = """
WITH ids AS (
    SELECT automate_history_id('automate_run_id_seq') AS run_id,
           nextval(pg_get_serial_sequence('automate_outbox_job', 'id')) AS job_id
), child AS (
    INSERT INTO automate_run
        (id, workflow_id, workflow_name, version_id, event_id, job_id, attempt, status, error,
         trace_id, mode, parent_id, input, started_at)
    SELECT ids.run_id, w.id, w.name, w.current_version_id, %(event_id)s, ids.job_id, 0, 'queued', '',
           %(trace_id)s, 'call', %(parent_id)s, %(input)s::jsonb, now()
    FROM automate_workflow AS w, ids
    WHERE w.name = %(workflow)s AND w.current_version_id IS NOT NULL
    RETURNING id, job_id, version_id
), job AS (
    -- the child's run job goes on the child workflow's queue with its priority when it names
    -- them, else on the calling job's queue
    INSERT INTO automate_outbox_job_live
        (id, event_id, kind, status, attempts, releases, max_attempts, available_at, lease_owner,
         last_error, payload, created_at, updated_at, queue, priority)
    SELECT child.job_id, %(event_id)s, 'event', 'ready', 0, 0,
           coalesce((v.definition -> 'retry' ->> 'max_attempts')::int, 5),
           now(), '', '', jsonb_build_object('run', child.id), now(), now(),
           coalesce(v.definition ->> 'queue', cur.queue, 'default'),
           coalesce((v.definition ->> 'priority')::int, cur.priority, 0)
    FROM child
    LEFT JOIN automate_workflow_version AS v ON v.id = child.version_id
    LEFT JOIN automate_outbox_job_live AS cur ON cur.id = %(parent_job_id)s
    RETURNING id
)
SELECT child.id FROM child JOIN job ON job.id = child.job_id
"""
