"""The held idempotency keys (``automate_event_key``): filled from the events when they move there.

Before migration 0017 the dedupe was a unique index on the event table; a partitioned event
table cannot have one, so the held keys move to a table of their own. The move runs beside the
live ingest: :func:`backfill` copies the held keys an hour at a time (each batch a short
transaction, through the event table's index of held keys), and :data:`CATCH_UP`, run by the
partitioning switch while it holds the event table, copies the keys written since the backfill
began. A key copied twice is skipped (``ON CONFLICT DO NOTHING``), so both may run again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

#: The copy of the held keys received in one interval.
COPY = """
INSERT INTO automate_event_key (source, idempotency_key, event_id, trace_id, received_at)
SELECT source, idempotency_key, id, trace_id, received_at FROM automate_event
WHERE idempotency_key IS NOT NULL AND received_at >= %s AND received_at < %s
ON CONFLICT DO NOTHING
"""

#: The start of the oldest transaction still open (or now): a key written by it carries a
#: received_at no older than this, and is copied by the catch-up.
HORIZON = "SELECT least(now(), min(xact_start)) FROM pg_stat_activity WHERE xact_start IS NOT NULL"

#: Run under the switch's lock, with the time the backfill began formatted in.
CATCH_UP = """
INSERT INTO automate_event_key (source, idempotency_key, event_id, trace_id, received_at)
SELECT source, idempotency_key, id, trace_id, received_at FROM automate_event
WHERE idempotency_key IS NOT NULL AND received_at >= '{since}'::timestamptz
ON CONFLICT DO NOTHING
"""


#: The longest dedupe window of any source, or the default (seconds).
LONGEST_WINDOW = """
SELECT greatest(%s, max((config ->> 'dedupe_window_seconds')::float8)) FROM automate_webhook_source
"""


def backfill(cursor: Any, default_window: float, step: dt.timedelta = dt.timedelta(hours=1)) -> str:
    """Copies every held key into the key table, an interval at a time (autocommit cursor): the
    keys of the events received within the longest dedupe window (before 0017, older ones were
    released already). Returns the catch-up statement for the switch."""
    cursor.execute(HORIZON)
    since: dt.datetime = cursor.fetchone()[0]
    cursor.execute(LONGEST_WINDOW, [default_window])
    window = dt.timedelta(seconds=float(cursor.fetchone()[0]))
    cursor.execute("SELECT min(received_at) FROM automate_event WHERE idempotency_key IS NOT NULL")
    start: dt.datetime | None = cursor.fetchone()[0]
    if start is not None:
        start = max(start, since - window)
    while start is not None and start < since:
        cursor.execute(COPY, [start, min(start + step, since)])
        start += step
    return CATCH_UP.format(since=since.isoformat())
