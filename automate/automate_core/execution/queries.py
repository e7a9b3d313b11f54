"""SQL of the run journal."""

from __future__ import annotations

from typing import LiteralString

START_RUN: LiteralString = """
INSERT INTO automate_run
    (workflow_id, workflow_name, event_id, job_id, attempt, status, error, trace_id, started_at)
VALUES (%(workflow_id)s, %(workflow_name)s, %(event_id)s, %(job_id)s, %(attempt)s, 'running', '',
        %(trace_id)s, now())
RETURNING id
"""

RECORD_STEP: LiteralString = """
INSERT INTO automate_step_run
    (run_id, position, name, connector, action, status, input, output, error,
     started_at, finished_at, duration_ms)
VALUES (%(run_id)s, %(position)s, %(name)s, %(connector)s, %(action)s, %(status)s,
        %(input)s::jsonb, %(output)s::jsonb, %(error)s, %(started_at)s, %(finished_at)s,
        %(duration_ms)s)
"""

FINISH_RUN: LiteralString = """
UPDATE automate_run SET status = %(status)s, error = %(error)s, finished_at = now()
WHERE id = %(run_id)s
"""

SUCCEEDED_WORKFLOWS: LiteralString = """
SELECT DISTINCT workflow_id FROM automate_run
WHERE event_id = %(event_id)s AND status = 'succeeded' AND workflow_id IS NOT NULL
"""
