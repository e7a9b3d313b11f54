-- Data for timing the dead-letter count (automate_core/observability/dead_letters.py) against
-- history: 500,000 events, each with a completed job and a succeeded run, plus 2,000 dead jobs
-- with a failed run each, 1,000 of them resumed successfully and 300 replayed (700 dead letters).
-- On an empty, migrated database (it truncates the events, runs and jobs):
--   psql "$DATABASE_URL" -f benchmarks/console/dead_letters.sql
-- then time DEAD_LETTERS_COUNT, e.g. in psql with \timing on.
\set ON_ERROR_STOP on
TRUNCATE automate_run, automate_outbox_job, automate_event RESTART IDENTITY CASCADE;
INSERT INTO automate_event (id, source, event_type, payload, headers, trace_id)
  SELECT g, 'shop', 'order.created', '{}', '{}', md5(g::text) FROM generate_series(1, 500000) g;
INSERT INTO automate_outbox_job (id, event_id, kind, status, attempts, max_attempts, last_error, lease_owner)
  SELECT g, g, 'event', 'completed', 1, 5, '', '' FROM generate_series(1, 500000) g;
INSERT INTO automate_run (event_id, job_id, workflow_id, workflow_name, attempt, mode, status, error, trace_id)
  SELECT g, g, 1, 'w', 1, '', 'succeeded', '', md5(g::text) FROM generate_series(1, 500000) g;
INSERT INTO automate_outbox_job (id, event_id, kind, status, attempts, max_attempts, last_error, lease_owner)
  SELECT 1000000 + g, g, 'event', 'dead', 5, 5, 'boom', '' FROM generate_series(1, 2000) g;
INSERT INTO automate_run (event_id, job_id, workflow_id, workflow_name, attempt, mode, status, error, trace_id)
  SELECT g, 1000000 + g, 2, 'w2', 5, '', 'failed', 'boom', md5(g::text) FROM generate_series(1, 2000) g;
INSERT INTO automate_run (event_id, job_id, workflow_id, workflow_name, attempt, mode, status, error, trace_id, parent_id)
  SELECT r.event_id, NULL, 2, 'w2', 1, 'resume', 'succeeded', '', r.trace_id, r.id
    FROM automate_run r WHERE r.status = 'failed' AND r.event_id <= 1000;
SELECT setval(pg_get_serial_sequence('automate_outbox_job', 'id'), (SELECT max(id) FROM automate_outbox_job));
INSERT INTO automate_outbox_job (event_id, kind, status, attempts, max_attempts, last_error, lease_owner, replay_of_id)
  SELECT g, 'event', 'completed', 1, 5, '', '', 1000000 + g FROM generate_series(1701, 2000) g;
ANALYZE automate_event; ANALYZE automate_outbox_job; ANALYZE automate_run;
