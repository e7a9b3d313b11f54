"""SQL of the Django tasks backend."""

from __future__ import annotations

from typing import LiteralString

# A task is an outbox job of kind 'task' with no event; the payload names the task function and
# carries its arguments. Run through Django's connection, so it joins the caller's transaction:
# the task exists if and only if that transaction commits. available_at is run_after, or now;
# queue and priority are the task's (the database ranks the job from them, migration 0013).
# The outbox's statement trigger sends the NOTIFY that wakes the workers (on commit).
ENQUEUE_TASK: LiteralString = """
INSERT INTO automate_outbox_job_live
    (event_id, kind, status, attempts, releases, max_attempts, available_at, lease_owner,
     last_error, payload, queue, priority, created_at, updated_at)
VALUES (NULL, 'task', 'ready', 0, 0, %(max_attempts)s, coalesce(%(run_after)s, now()), '', '',
        %(payload)s::jsonb, %(queue)s, %(priority)s, now(), now())
RETURNING id, created_at
"""

TASK_RESULT: LiteralString = """
SELECT id, status, payload, result, created_at, updated_at, completed_at
FROM automate_outbox_job
WHERE id = %(id)s AND kind = 'task'
"""
