"""SQL of the scheduler."""

from __future__ import annotations

from typing import LiteralString

# Anything to do? One cheap read (the automate_schedule_due index) before opening a transaction:
# most seconds nothing is due.
ANY_DUE: LiteralString = """
SELECT EXISTS (
    SELECT 1 FROM automate_schedule WHERE enabled AND (next_fire_at IS NULL OR next_fire_at <= now())
)
"""

# Due schedules (and new ones without a next tick yet), locked for this transaction. SKIP LOCKED:
# a schedule another worker is firing right now is not waited for, and not fired twice.
DUE: LiteralString = """
SELECT id, name, cron, timezone, source, event_type, payload, next_fire_at
FROM automate_schedule
WHERE enabled AND (next_fire_at IS NULL OR next_fire_at <= now())
ORDER BY next_fire_at NULLS FIRST
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

FIRED: LiteralString = """
UPDATE automate_schedule
SET next_fire_at = %(next_fire_at)s, last_fired_at = coalesce(%(fired_at)s, last_fired_at),
    last_event_id = coalesce(%(event_id)s, last_event_id)
WHERE id = %(id)s
"""

NOW: LiteralString = "SELECT now()"
