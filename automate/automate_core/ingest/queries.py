"""SQL of the ingest path, one named statement each."""

from __future__ import annotations

from typing import LiteralString

# One round trip writes the event, its held key and its job. The event's id is drawn first, so
# that the key can name it; a redelivery (same source and idempotency key, still held) inserts no
# key (ON CONFLICT DO NOTHING on the key table's primary key), and so no event and no job either.
# An event without a key is always new. The event table is partitioned by day on its id
# (history.tables): the key table is the dedupe, since no unique index spans the partitions.
# The outbox table's statement trigger sends the NOTIFY that wakes the workers (on commit).
INSERT_EVENT: LiteralString = """
WITH new AS (
    SELECT automate_history_id('automate_event_id_seq'::regclass) AS id
), held AS (
    INSERT INTO automate_event_key (source, idempotency_key, event_id, trace_id, received_at)
    SELECT %(source)s::text, %(idempotency_key)s::text, new.id, %(trace_id)s::text, now() FROM new
    WHERE %(idempotency_key)s::text IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING event_id
), event AS (
    INSERT INTO automate_event
        (id, source, event_type, payload, headers, idempotency_key, trace_id, received_at)
    SELECT new.id, %(source)s::text, %(event_type)s, %(payload)s::jsonb, %(headers)s::jsonb,
           %(idempotency_key)s::text, %(trace_id)s::text, now()
    FROM new
    WHERE %(idempotency_key)s::text IS NULL OR new.id IN (SELECT event_id FROM held)
    RETURNING id, trace_id
), job AS (
    INSERT INTO automate_outbox_job_live
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
# was a duplicate (of an older event, or of an earlier row of this same batch: the key table's
# ON CONFLICT DO NOTHING also skips those). Each row draws its event id first (input is
# materialized: the volatile id is drawn once per row), in the array's order, so ids follow
# arrival. A row names its job's queue, priority and fair key only when they are not the defaults
# (batcher.rows_document); the job is matched to its event by trace_id. The outbox's rank
# trigger runs only for jobs with a priority or a fair key (migration 0013).
INSERT_EVENTS: LiteralString = """
WITH input AS MATERIALIZED (
    SELECT automate_history_id('automate_event_id_seq'::regclass) AS id, t.*
    FROM json_to_recordset(%(rows)s::json)
        AS t(source text, event_type text, payload jsonb, headers jsonb, idempotency_key text, trace_id text,
             queue text, priority smallint, fair_key text)
), held AS (
    INSERT INTO automate_event_key (source, idempotency_key, event_id, trace_id, received_at)
    SELECT source, idempotency_key, id, trace_id, now() FROM input
    WHERE idempotency_key IS NOT NULL
    ORDER BY id
    ON CONFLICT DO NOTHING
    RETURNING event_id
), event AS (
    INSERT INTO automate_event
        (id, source, event_type, payload, headers, idempotency_key, trace_id, received_at)
    -- json_to_recordset turns a JSON null into SQL NULL: a body that is just `null` is stored as
    -- the JSON value null, as the single-row statement stores it
    SELECT id, source, event_type, coalesce(payload, 'null'::jsonb), headers, idempotency_key, trace_id, now()
    FROM input
    WHERE idempotency_key IS NULL OR id IN (SELECT event_id FROM held)
    ORDER BY id
    RETURNING id, trace_id
), job AS (
    INSERT INTO automate_outbox_job_live
        (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error,
         queue, priority, fair_key, created_at, updated_at)
    SELECT event.id, 'event', 'ready', 0, %(max_attempts)s, now(), '', '',
           coalesce(input.queue, 'default'), coalesce(input.priority, 0), coalesce(input.fair_key, ''),
           now(), now()
    FROM event JOIN input ON input.id = event.id
    ORDER BY event.id
)
SELECT id, trace_id FROM event
"""

# The original of a redelivery, from its held key. Run as its own statement: a concurrent first
# delivery that committed while INSERT_EVENT waited on the key is visible only to a new snapshot.
FIND_DUPLICATE: LiteralString = """
SELECT event_id, trace_id FROM automate_event_key
WHERE source = %(source)s AND idempotency_key = %(idempotency_key)s
"""

# The originals of a batch's redeliveries, by (source, key); one primary-key lookup each.
FIND_DUPLICATES: LiteralString = """
SELECT k.source, k.idempotency_key, k.event_id, k.trace_id
FROM unnest(%(sources)s::text[], %(keys)s::text[]) AS d(source, idempotency_key)
JOIN automate_event_key k ON k.source = d.source AND k.idempotency_key = d.idempotency_key
"""

SOURCE_BY_SLUG: LiteralString = """
SELECT slug, scheme, secret_ref, config, enabled, token_hash FROM automate_webhook_source
WHERE slug = %(slug)s
"""

# Ends the dedupe window: releases (deletes) the held keys older than their source's window,
# oldest first, a bounded batch per statement (short locks, small WAL bursts). Reads the index
# automate_event_key_received. Sources without a row (emit()) use the default window. The event
# keeps its key as received; only the dedupe forgets it.
RELEASE_KEYS: LiteralString = """
WITH expired AS (
    SELECT k.source, k.idempotency_key FROM automate_event_key k
    LEFT JOIN automate_webhook_source s ON s.slug = k.source
    WHERE k.received_at < now() - make_interval(secs => %(min_window)s)
      AND k.received_at < now() - make_interval(
            secs => COALESCE((s.config ->> 'dedupe_window_seconds')::float8, %(default_window)s))
    ORDER BY k.received_at
    LIMIT %(limit)s
    FOR UPDATE OF k SKIP LOCKED
)
DELETE FROM automate_event_key AS k USING expired
WHERE k.source = expired.source AND k.idempotency_key = expired.idempotency_key
"""

# One releasing process at a time across all web processes (transaction-scoped advisory lock).
TRY_RELEASE_LOCK: LiteralString = "SELECT pg_try_advisory_xact_lock(hashtext('automate_ingest_release_keys'))"
