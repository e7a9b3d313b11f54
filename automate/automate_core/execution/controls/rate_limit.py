"""``rate_limit: {limit: 100, period: 1h, key: ...}``: at most ``limit`` runs per period per key.

A fixed window per (workflow, key), aligned on multiples of the period since the epoch, counted
by one upsert (``queries.RATE_LIMIT_COUNT``) whose row lock serialises every worker on that key.
A run beyond the limit is not run: it is recorded as ``skipped`` with the reason and the moment
the next run is allowed (the window's end).
"""

from __future__ import annotations

from datetime import datetime

from automate_core import db
from automate_core.execution.controls import queries
from automate_core.execution.controls.keys import period_text
from automate_core.rules.admission import RateLimit


async def take(workflow_id: int, limit: RateLimit, key: str) -> str | None:
    """Count one run in the key's window; None when it may run, else why it is skipped."""
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute(
            queries.RATE_LIMIT_COUNT, {"workflow_id": workflow_id, "key": key, "period": limit.period}
        )
        row = await cur.fetchone()
    assert row is not None
    count, window_end = int(row[0]), row[1]
    if count <= limit.limit:
        return None
    return reason(limit, key, window_end)


def reason(limit: RateLimit, key: str, window_end: datetime) -> str:
    return (
        f"rate limit {limit.limit} per {period_text(limit.period)} for key {key!r} reached; "
        f"next run allowed at {window_end.isoformat(timespec='seconds')}"
    )
