"""Partitioning the events of a live database (migration 0017): no row lost, no key forgotten.

A database of the test's own is migrated to 0016 (run records partitioned, events plain) and
filled with a million events, a tenth of them still holding their idempotency key (the others
released, as the dedupe window leaves them). A sender keeps delivering events with new keys while
the conversion runs: through the previous release's statement until the switch, then, as a
restarted web process would, through this release's (the previous statement names the unique
index that a partitioned table cannot have, and fails: a 503, which the sender retries).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from automate_core.history import convert, ids, tables
from automate_core.ingest import keys, queries
from tests.history.test_convert import migrated_to

ROWS = 1_000_000
HELD = 100_000  # the newest tenth: still in their dedupe window
TODAY = dt.datetime.now(dt.UTC).date()

FILL = f"""
INSERT INTO automate_event (source, event_type, payload, headers, idempotency_key, trace_id, received_at)
SELECT 'shop', 'order.created', jsonb_build_object('n', g), '{{}}',
       CASE WHEN g > {ROWS - HELD} THEN 'k-' || g END, md5(g::text),
       now() - make_interval(secs => ({ROWS} - g) * 0.5)
FROM generate_series(1, {ROWS}) AS g;
ANALYZE automate_event;
"""

# the previous release's ingest statement (before migration 0017)
PREVIOUS = """
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

# this release's ingest statement as it was at 0017: it names the job table, which 0018 partitions
# (its queue partition, which this release's statement names, does not exist yet at 0017)
RESTARTED = queries.INSERT_EVENT.replace("automate_outbox_job_live", "automate_outbox_job")


def delivery(key: str) -> dict[str, Any]:
    return {
        "source": "shop", "event_type": "order.created", "payload": json.dumps({"key": key}),
        "headers": "{}", "idempotency_key": key, "trace_id": key.replace("-", "")[:32],
        "max_attempts": 5, "queue": "default", "priority": 0, "fair_key": "",
    }  # fmt: skip


@pytest.fixture(scope="module")
def plain_events(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_to("convert_events", "0016", Path(tmp_path_factory.mktemp("home"))) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FILL)
            # migration 0017's first operations: the key table, empty
            conn.execute(
                "CREATE TABLE automate_event_key (source varchar(100) NOT NULL, idempotency_key"
                " varchar(255) NOT NULL, event_id bigint NOT NULL, trace_id varchar(32) NOT NULL,"
                " received_at timestamptz NOT NULL DEFAULT statement_timestamp(),"
                " PRIMARY KEY (source, idempotency_key))"
            )
            conn.execute("CREATE INDEX automate_event_key_received ON automate_event_key (received_at)")
        yield url


class Sender(threading.Thread):
    """Delivers events with new keys, one after another, each retried until it is acknowledged."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.acked: dict[str, int] = {}
        self.refused = 0  # deliveries the previous release's statement could not write (503s)
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.first = threading.Event()
        self.restarted = threading.Event()  # the web process runs this release

    def run(self) -> None:
        n = 0
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                key = f"w-{n}"
                statement = RESTARTED if self.restarted.is_set() else PREVIOUS
                try:
                    row = conn.execute(statement, delivery(key)).fetchone()
                except psycopg.errors.InvalidColumnReference:
                    # "no unique or exclusion constraint matching the ON CONFLICT specification":
                    # the switch happened; the process is restarted on the new release
                    self.refused += 1
                    self.restarted.set()
                    continue
                except psycopg.Error as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    return
                if row is None:
                    self.errors.append(f"{key} was taken for a duplicate")
                    return
                self.acked[key] = row[0]
                self.first.set()
                n += 1


def test_a_live_table_of_a_million_events_is_partitioned_and_keeps_every_held_key(plain_events: str) -> None:
    with psycopg.connect(plain_events, autocommit=True) as conn:
        sender = Sender(plain_events)
        sender.start()
        assert sender.first.wait(30)
        cur = conn.cursor()
        catch_up = keys.backfill(cur, 7 * 86400.0)
        before_switch = len(sender.acked)
        convert.convert(cur, ahead=2, group=tables.EVENT_RECORDS, catch_up=[catch_up])
        sender.restarted.set()
        switched = len(sender.acked)
        while len(sender.acked) < switched + 20 and not sender.errors:  # it goes on after the switch
            sender.join(0.05)
        sender.stop.set()
        sender.join(30)
        assert sender.errors == []
        assert before_switch > 0

        # nothing lost: every old event and every acknowledged delivery, each once
        count = conn.execute("SELECT count(*), count(DISTINCT id) FROM automate_event").fetchone()
        assert count == (ROWS + len(sender.acked),) * 2
        sent = "SELECT idempotency_key, id FROM automate_event WHERE idempotency_key LIKE 'w-%'"
        stored: dict[str, int] = dict(conn.execute(sent).fetchall())
        assert stored == sender.acked

        # every key that was held is held still, naming its event: the backfilled ones, the ones
        # the sender wrote during the backfill (caught up under the switch's lock) and the new ones
        held = conn.execute("SELECT count(*) FROM automate_event_key").fetchone()
        assert held == (HELD + len(sender.acked),)
        wrong = conn.execute(
            "SELECT count(*) FROM automate_event_key AS k LEFT JOIN automate_event AS e ON e.id = k.event_id"
            " WHERE e.id IS NULL OR e.idempotency_key IS DISTINCT FROM k.idempotency_key"
        ).fetchone()
        assert wrong == (0,)
        # ... so a redelivery of any of them is recognised: nothing written, the original found
        samples = [
            "k-999999",
            f"k-{ROWS - HELD + 1}",
            "w-0",
            f"w-{before_switch}",
            f"w-{len(sender.acked) - 1}",
        ]
        for key in samples:
            assert conn.execute(RESTARTED, delivery(key)).fetchone() is None, key
            original = conn.execute(queries.FIND_DUPLICATE, delivery(key)).fetchone()
            assert original is not None
            expected = sender.acked.get(key) or int(key.split("-")[1])
            assert original[0] == expected
        # a key released before the move stays released: a new event
        assert conn.execute(RESTARTED, delivery("k-1")).fetchone() is not None

        # the old rows are the legacy partition; the new ones in today's; days ahead are there
        placed: dict[str, int] = dict(
            conn.execute(
                "SELECT tableoid::regclass::text, count(*) FROM automate_event GROUP BY 1"
            ).fetchall()
        )
        new_ids = [i for i in sender.acked.values() if i >= ids.bound(TODAY)]
        assert len(new_ids) >= 20 and all(ids.day_of(i) == TODAY for i in new_ids)
        assert placed == {
            tables.EVENTS.legacy: ROWS + len(sender.acked) - len(new_ids),
            tables.EVENTS.partition(TODAY): len(new_ids) + 1,
        }
        names = {
            r[1]
            for r in conn.execute(tables.LIST_PARTITIONS.replace("%(tables)s", "%s"), [["automate_event"]])
        }
        assert {tables.EVENTS.partition(TODAY + dt.timedelta(days=n)) for n in range(3)} <= names
        # the jobs' foreign key to their events is gone (a day of events is dropped whole)
        fks = conn.execute(
            "SELECT count(*) FROM pg_constraint"
            " WHERE contype = 'f' AND confrelid = 'automate_event'::regclass"
        ).fetchone()
        assert fks == (0,)
        assert convert.convert(conn.cursor(), ahead=2, group=tables.EVENT_RECORDS) is False
