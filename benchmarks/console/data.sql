-- Data for benchmarks/console/pages.py: 2M events over the 14 days up to now (in id order),
-- 5 sources, 20 types, the newest 100k with idempotency keys; 1M runs of the first two workflows
-- (2 % failed); 1M jobs (2k dead). Load two workflows first (any), then:
--   psql "$DATABASE_URL" -f benchmarks/console/data.sql
\timing on
INSERT INTO automate_event (source, event_type, payload, headers, idempotency_key, trace_id, received_at)
SELECT (ARRAY['shop','github','stripe','slack','erp'])[1 + i % 5], 'type.' || (i % 20),
       jsonb_build_object('id', i, 'amount', i % 1000), '{}'::jsonb,
       CASE WHEN i > 1900000 THEN 'key-' || i END, md5(i::text),
       now() - interval '14 days' + (i * interval '14 days' / 2000000)
  FROM generate_series(1, 2000000) AS i;
INSERT INTO automate_run (workflow_id, workflow_name, event_id, attempt, status, error, trace_id, mode, started_at, finished_at)
SELECT (SELECT min(id) FROM automate_workflow) + (i % 2), 'wf', e.id, 1,
       CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'succeeded' END, '', e.trace_id, '', e.received_at, e.received_at + interval '100 ms'
  FROM (SELECT id, trace_id, received_at, row_number() OVER (ORDER BY id) AS i FROM automate_event WHERE id % 2 = 0) e;
INSERT INTO automate_outbox_job (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error, created_at, updated_at, completed_at)
SELECT id, 'event', CASE WHEN id % 1000 = 1 THEN 'dead' ELSE 'completed' END, 1, 5, received_at, '',
       CASE WHEN id % 1000 = 1 THEN 'step post: ConnectorError: 503' ELSE '' END, received_at, received_at, received_at
  FROM automate_event WHERE id % 2 = 1;
VACUUM ANALYZE automate_event; VACUUM ANALYZE automate_run; VACUUM ANALYZE automate_outbox_job;
