"""SQL of the token budgets (async psycopg; table names from ``automate_governance.models``)."""

from __future__ import annotations

# Reserve ``tokens`` in one ledger row, creating it on first use. ON CONFLICT DO UPDATE takes the
# row lock and evaluates the WHERE against the latest committed row, so concurrent reservations
# queue on the lock and each sees the others' reservations: the limit cannot be overshot. No row
# comes back when the reservation would exceed the limit (a NULL limit means unlimited). The
# caller checks ``tokens <= limit`` for the INSERT path, where the WHERE does not apply.
RESERVE = """
INSERT INTO automate_governance_token_ledger AS l
       (scope, key, period, used_tokens, reserved_tokens, updated_at)
VALUES (%(scope)s, %(key)s, %(period)s, 0, %(tokens)s, now())
ON CONFLICT (scope, key, period) DO UPDATE
   SET reserved_tokens = l.reserved_tokens + EXCLUDED.reserved_tokens, updated_at = now()
 WHERE %(limit)s::bigint IS NULL
    OR l.used_tokens + l.reserved_tokens + EXCLUDED.reserved_tokens <= %(limit)s::bigint
RETURNING id
"""

# The call's record, in the same transaction as its reservations.
INSERT_CALL = """
INSERT INTO automate_governance_llm_call
       (provider, model, workflow, run_id, reserved_tokens, estimated, status, ledger_ids, created_at)
VALUES (%(provider)s, %(model)s, %(workflow)s, %(run_id)s, %(tokens)s, false, 'reserved',
        %(ledger_ids)s, now())
RETURNING id
"""

# Close the call exactly once (a repeated settle or release finds no 'reserved' row and does
# nothing), returning what it had reserved and where.
CLOSE_CALL = """
UPDATE automate_governance_llm_call
   SET status = %(status)s, input_tokens = %(input)s, output_tokens = %(output)s,
       estimated = %(estimated)s, settled_at = now()
 WHERE id = %(id)s AND status = 'reserved'
RETURNING reserved_tokens, ledger_ids
"""

# Move the call from reserved to used in its ledgers (ids in a fixed order: no deadlocks).
SETTLE_LEDGERS = """
UPDATE automate_governance_token_ledger
   SET reserved_tokens = GREATEST(reserved_tokens - %(reserved)s, 0),
       used_tokens = used_tokens + %(used)s, updated_at = now()
 WHERE id = ANY(%(ids)s)
"""

# Reservations left by a worker that died mid-call, oldest first.
STALE_CALLS = """
SELECT id FROM automate_governance_llm_call
 WHERE status = 'reserved' AND created_at < now() - make_interval(secs => %(age)s)
 ORDER BY id
"""

# One ledger's totals (checks, the admin, tests).
LEDGER = """
SELECT used_tokens, reserved_tokens FROM automate_governance_token_ledger
 WHERE scope = %(scope)s AND key = %(key)s AND period = %(period)s
"""
