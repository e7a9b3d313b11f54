"""The outbox's SQL, one named statement per transition, each guarded by the state it expects."""

from __future__ import annotations

from typing import LiteralString

# Claim up to %(limit)s jobs for one worker, in one statement:
#   1. candidates: the oldest claimable rows, read from the partial index automate_outbox_claimable
#      (only ready/retry rows are in it, ordered by available_at, id). FOR UPDATE SKIP LOCKED
#      skips rows another worker is claiming right now instead of waiting for it.
#   2. claimed: flip them to running, set the lease and count the attempt (the attempt number is
#      the claim's fencing token: every later transition names it).
#   3. the result joins each job's event, so the worker needs no second round trip, and reports
#      the configuration generation, so the worker knows when to reload its rule index.
CLAIM_BATCH: LiteralString = """
WITH candidates AS (
    SELECT id FROM automate_outbox_job
    WHERE status IN ('ready', 'retry') AND available_at <= now()
    ORDER BY available_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE automate_outbox_job AS j
    SET status = 'running',
        attempts = j.attempts + 1,
        lease_owner = %(owner)s,
        lease_expires_at = now() + make_interval(secs => %(lease)s),
        updated_at = now()
    FROM candidates
    WHERE j.id = candidates.id
    RETURNING j.id, j.kind, j.attempts, j.max_attempts, j.event_id, j.payload
)
SELECT c.id, c.kind, c.attempts, c.max_attempts, c.payload,
       e.id AS event_id, e.source, e.event_type, e.payload AS event_payload, e.headers,
       e.trace_id, e.received_at,
       (SELECT last_value FROM automate_config_generation) AS generation
FROM claimed AS c LEFT JOIN automate_event AS e ON e.id = c.event_id
ORDER BY c.id
"""

# running -> completed, for a batch of claims (id, attempts) held by this worker.
COMPLETE: LiteralString = """
UPDATE automate_outbox_job AS j
SET status = 'completed', completed_at = now(), updated_at = now(),
    lease_owner = '', lease_expires_at = NULL, last_error = ''
FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS claim(id, attempts)
WHERE j.id = claim.id AND j.attempts = claim.attempts AND j.status = 'running'
RETURNING j.id
"""

# running -> retry (later) or dead, one claim at a time (failures are the rare path).
FAIL: LiteralString = """
UPDATE automate_outbox_job
SET status = %(status)s,
    available_at = now() + make_interval(secs => %(delay)s),
    last_error = %(error)s,
    max_attempts = %(max_attempts)s,
    updated_at = now(), lease_owner = '', lease_expires_at = NULL
WHERE id = %(id)s AND attempts = %(attempts)s AND status = 'running'
RETURNING id
"""

# running -> ready without counting the attempt (graceful shutdown gives the job back).
RELEASE: LiteralString = """
UPDATE automate_outbox_job AS j
SET status = 'ready', attempts = j.attempts - 1, available_at = now(), updated_at = now(),
    lease_owner = '', lease_expires_at = NULL
FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS claim(id, attempts)
WHERE j.id = claim.id AND j.attempts = claim.attempts AND j.status = 'running'
RETURNING j.id
"""

# running -> retry without spending the attempt: not a failure (a concurrency limit was full).
SNOOZE: LiteralString = """
UPDATE automate_outbox_job
SET status = 'retry', attempts = attempts - 1,
    available_at = now() + make_interval(secs => %(delay)s),
    updated_at = now(), lease_owner = '', lease_expires_at = NULL
WHERE id = %(id)s AND attempts = %(attempts)s AND status = 'running'
RETURNING id
"""

# The heartbeat: extend the lease of claims this worker still holds.
HEARTBEAT: LiteralString = """
UPDATE automate_outbox_job AS j
SET lease_expires_at = now() + make_interval(secs => %(lease)s)
FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS claim(id, attempts)
WHERE j.id = claim.id AND j.attempts = claim.attempts AND j.status = 'running'
RETURNING j.id
"""

# The rescuer: running jobs whose lease expired (worker killed, host gone) go back to retry, or
# to dead when that claim was their last attempt. Reads the partial index automate_outbox_leased.
RESCUE_EXPIRED: LiteralString = """
WITH expired AS (
    SELECT id FROM automate_outbox_job
    WHERE status = 'running' AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE automate_outbox_job AS j
SET status = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'retry' END,
    available_at = now(),
    last_error = 'lease expired: the worker ' || j.lease_owner || ' stopped renewing it (attempt '
                 || j.attempts || ')',
    updated_at = now(), lease_owner = '', lease_expires_at = NULL
FROM expired
WHERE j.id = expired.id AND j.status = 'running'
RETURNING j.id, j.status
"""

GENERATION: LiteralString = "SELECT last_value FROM automate_config_generation"
