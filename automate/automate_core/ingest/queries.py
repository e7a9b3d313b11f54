"""SQL of the ingest path, one named statement each."""

from __future__ import annotations

from typing import LiteralString

# One round trip writes the event and its job. A redelivery (same source and idempotency key)
# inserts nothing: ON CONFLICT skips the event row, so the job CTE sees no row either.
# The outbox table's statement trigger sends the NOTIFY that wakes the workers (on commit).
INSERT_EVENT: LiteralString = """
WITH event AS (
    INSERT INTO automate_event (source, event_type, payload, headers, idempotency_key, trace_id, received_at)
    VALUES (%(source)s, %(event_type)s, %(payload)s::jsonb, %(headers)s::jsonb,
            %(idempotency_key)s, %(trace_id)s, now())
    ON CONFLICT (source, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, trace_id
), job AS (
    INSERT INTO automate_outbox_job
        (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error,
         queue, priority, fair_key, created_at, updated_at)
    SELECT id, 'event', 'ready', 0, %(max_attempts)s, now(), '', '',
           %(queue)s, %(priority)s, %(fair_key)s, now(), now() FROM event
)
SELECT id, trace_id FROM event
"""

# The group commit: many webhooks, one statement, one commit (autocommit connection). The rows
# arrive as one JSON array (batcher.rows_document), so the statement text (and its server-side
# prepared plan) is the same whatever the batch size, and Python does no per-row escaping.
# Rows come back by trace_id, which is unique per request; a request whose trace_id is missing
# was a duplicate (of an older event, or of an earlier row of this same batch: ON CONFLICT DO
# NOTHING also skips those). json_to_recordset keeps the array's order, so ids follow arrival.
# A row names its job's queue, priority and fair key only when they are not the defaults
# (batcher.rows_document); the job is matched to its event by trace_id. The outbox's rank
# trigger runs only for jobs with a priority or a fair key (migration 0013).
INSERT_EVENTS: LiteralString = """
WITH input AS (
    SELECT * FROM json_to_recordset(%(rows)s::json)
        AS t(source text, event_type text, payload jsonb, headers jsonb, idempotency_key text, trace_id text,
             queue text, priority smallint, fair_key text)
), event AS (
    INSERT INTO automate_event (source, event_type, payload, headers, idempotency_key, trace_id, received_at)
    -- json_to_recordset turns a JSON null into SQL NULL: a body that is just `null` is stored as
    -- the JSON value null, as the single-row statement stores it
    SELECT source, event_type, coalesce(payload, 'null'::jsonb), headers, idempotency_key, trace_id, now()
    FROM input
    ON CONFLICT (source, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, trace_id
), job AS (
    INSERT INTO automate_outbox_job
        (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error,
         queue, priority, fair_key, created_at, updated_at)
    SELECT event.id, 'event', 'ready', 0, %(max_attempts)s, now(), '', '',
           coalesce(input.queue, 'default'), coalesce(input.priority, 0), coalesce(input.fair_key, ''),
           now(), now()
    FROM event JOIN input ON input.trace_id = event.trace_id
    ORDER BY event.id
)
SELECT id, trace_id FROM event
"""

# The original of a redelivery. Run as its own statement: a concurrent first delivery that
# committed while INSERT_EVENT waited on the unique index is visible only to a new snapshot.
FIND_DUPLICATE: LiteralString = """
SELECT id, trace_id FROM automate_event
WHERE source = %(source)s AND idempotency_key = %(idempotency_key)s
"""

# The originals of a batch's redeliveries, by (source, key); uses the unique index.
FIND_DUPLICATES: LiteralString = """
SELECT e.source, e.idempotency_key, e.id, e.trace_id
FROM unnest(%(sources)s::text[], %(keys)s::text[]) AS d(source, idempotency_key)
JOIN automate_event e ON e.source = d.source AND e.idempotency_key = d.idempotency_key
"""

SOURCE_BY_SLUG: LiteralString = """
SELECT slug, scheme, secret_ref, config, enabled, token_hash FROM automate_webhook_source
WHERE slug = %(slug)s
"""

# Ends the dedupe window: releases (sets to NULL) the keys of events older than their source's
# window, oldest first, a bounded batch per statement (short locks, small WAL bursts). Reads the
# partial index automate_event_held_keys. Sources without a row (emit()) use the default window.
RELEASE_KEYS: LiteralString = """
WITH expired AS (
    SELECT e.id FROM automate_event e
    LEFT JOIN automate_webhook_source s ON s.slug = e.source
    WHERE e.idempotency_key IS NOT NULL
      AND e.received_at < now() - make_interval(secs => %(min_window)s)
      AND e.received_at < now() - make_interval(
            secs => COALESCE((s.config ->> 'dedupe_window_seconds')::float8, %(default_window)s))
    ORDER BY e.received_at
    LIMIT %(limit)s
    FOR UPDATE OF e SKIP LOCKED
)
UPDATE automate_event SET idempotency_key = NULL FROM expired WHERE automate_event.id = expired.id
"""

# One releasing process at a time across all web processes (transaction-scoped advisory lock).
TRY_RELEASE_LOCK: LiteralString = "SELECT pg_try_advisory_xact_lock(hashtext('automate_ingest_release_keys'))"
