"""History ids: the hour a row was written, and a sequence number within it, in one bigint.

``id = hours since 2020-01-01 UTC << 32 | (nextval(sequence) & 0xFFFFFFFF)``, drawn by the SQL
function ``automate_history_id(sequence)`` (migration 0016). An id therefore says when its row
was written, to the hour, and a range of ids is a range of time: a table partitioned by
``RANGE (id)`` is partitioned by time, and a lookup by id (every update of a run) reaches exactly
one partition, which a table partitioned on a timestamp column could not promise.

Ids keep growing: a new hour starts above every id of the hours before it, and within an hour the
sequence orders them, as before. They stay below 2**53 until the year 2259 (JavaScript clients
read them exactly). Within one hour the low 32 bits wrap after 4,294,967,296 ids of one table: the
ids drawn after a wrap, in that same hour, sort below the ones before it (still unique). At
1 million runs a second that is once every 71 minutes; below that rate, never.
"""

from __future__ import annotations

import datetime as dt

#: 2020-01-01 00:00 UTC: hour 0 of the ids.
EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
SHIFT = 32

# The function the tables' defaults and the journal's inserts draw ids from. clock_timestamp():
# the hour of the insert itself, not of its transaction's start.
CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION automate_history_id(seq regclass) RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL UNSAFE AS $$
    SELECT (floor((extract(epoch FROM clock_timestamp()) - 1577836800) / 3600)::bigint << 32)
           | (nextval(seq) & 4294967295)
$$
"""


def bound(day: dt.date) -> int:
    """The first id of ``day`` (UTC): the lower bound of its partition, the upper of the day before."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    hours = int((start - EPOCH).total_seconds()) // 3600
    return hours << SHIFT


def written_at(history_id: int) -> dt.datetime:
    """The hour the row with this id was written (ids drawn before the partitioning say 2020)."""
    return EPOCH + dt.timedelta(hours=max(history_id, 0) >> SHIFT)


def day_of(history_id: int) -> dt.date:
    return written_at(history_id).date()
