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
         created_at, updated_at)
    SELECT id, 'event', 'ready', 0, %(max_attempts)s, now(), '', '', now(), now() FROM event
)
SELECT id, trace_id FROM event
"""

# The original of a redelivery. Run as its own statement: a concurrent first delivery that
# committed while INSERT_EVENT waited on the unique index is visible only to a new snapshot.
FIND_DUPLICATE: LiteralString = """
SELECT id, trace_id FROM automate_event
WHERE source = %(source)s AND idempotency_key = %(idempotency_key)s
"""

SOURCE_BY_SLUG: LiteralString = """
SELECT slug, scheme, secret_ref, config, enabled FROM automate_webhook_source WHERE slug = %(slug)s
"""
