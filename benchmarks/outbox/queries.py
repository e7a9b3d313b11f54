"""The benchmark's own SQL: backlog, synthetic history, progress and results."""

from __future__ import annotations

HISTORY_BEFORE = "2001-01-01"  # synthetic history rows are created before this

# N events and their jobs, as ingest writes them (one CTE), numbered from %(first)s.
ENQUEUE = """
WITH e AS (
    INSERT INTO automate_event (source, event_type, payload, headers, trace_id, received_at)
    SELECT 'bench', 'bench.created', jsonb_build_object('i', g), '{}'::jsonb, md5(g::text), now()
    FROM generate_series(%(first)s, %(first)s + %(n)s - 1) AS g
    RETURNING id
)
INSERT INTO automate_outbox_job
    (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error,
     created_at, updated_at)
SELECT id, 'event', 'ready', 0, 5, now(), '', '', now(), now() FROM e
"""

# Synthetic history: completed jobs from long ago (no events; the claim never reads them), where
# completed jobs are: in the day partition of their completion (history.settled; HISTORY_DAY).
HISTORY_DAY = "2000-01-01"
HISTORY = """
INSERT INTO automate_outbox_job
    (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error,
     created_at, updated_at, completed_at, settled)
SELECT NULL, 'event', 'completed', 1, 5, t, '', '', t, t, t, true
FROM generate_series(1, %(n)s) AS g, (SELECT timestamptz '2000-01-01 12:00+00' AS t) AS old
"""

# Jobs not completed yet, counted from the two small partial indexes (never the whole table, which
# may hold millions of history rows): polled twice a second while the workers drain.
PENDING = """
SELECT (SELECT count(*) FROM automate_outbox_job WHERE status IN ('ready', 'retry'))
     + (SELECT count(*) FROM automate_outbox_job WHERE lease_expires_at IS NOT NULL)
"""

RESULTS = """
SELECT count(*) FILTER (WHERE status = 'completed'),
       count(*) FILTER (WHERE attempts > 1),
       min(completed_at), max(completed_at),
       percentile_cont(ARRAY[0.5, 0.99])
           WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)),
       max(extract(epoch FROM completed_at - created_at))
FROM automate_outbox_job WHERE created_at >= %(since)s
"""

SERIES = """
SELECT floor(extract(epoch FROM completed_at - %(first)s) / %(bucket)s)::int AS slot, count(*)
FROM automate_outbox_job WHERE created_at >= %(since)s AND status = 'completed'
GROUP BY slot ORDER BY slot
"""
