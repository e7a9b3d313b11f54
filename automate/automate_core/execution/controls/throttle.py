"""``throttle: {limit: 10, period: 1m, key: ..., burst: 1}``: at most ``limit`` runs start per
period per key; the rest are delayed, never dropped.

GCRA (the generic cell rate algorithm): the key's theoretical arrival time is one row of
``automate_admission_state``, pushed one emission interval (``period / limit``) per run by one
upsert (``queries.THROTTLE_TAKE``) whose row lock serialises every worker on the key. A run whose
turn has come runs at once, inline; a later one is handed off as a queued run whose run job is
available at its turn, written in the same transaction as the arrival time (``gate``), so the
event's job completes and the waiting run holds no worker. ``burst`` lets that many runs start
back to back before the spacing applies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from automate_core.execution.controls import queries
from automate_core.execution.controls.keys import period_text
from automate_core.rules.admission import Throttle


async def take(conn: Any, workflow_id: int, throttle: Throttle, key: str) -> tuple[datetime, float]:
    """This run's turn (inside the caller's transaction): when it may start, and in how many
    seconds (0 or less: now)."""
    cur = await conn.execute(
        queries.THROTTLE_TAKE,
        {
            "workflow_id": workflow_id,
            "key": key,
            "interval": throttle.period / throttle.limit,
            "burst": throttle.burst,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return row[0], float(row[1])


def note(throttle: Throttle, key: str, start: datetime) -> str:
    """What a delayed run says while it is queued (the run's end replaces it)."""
    return (
        f"throttled: throttle {throttle.limit} per {period_text(throttle.period)} for key {key!r}; "
        f"starts at {start.isoformat(timespec='milliseconds')}"
    )
