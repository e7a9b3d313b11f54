"""Chaos with durable waits: every run first sleeps (a wait row and a parked wake job), then
delivers; workers are killed and PostgreSQL restarted while hundreds of runs wait.

After each scenario the ledger holds as for plain runs (every acknowledged webhook one event, one
succeeded run, side effects explained by attempts), and the waits hold too: every wait ended
exactly once, none is left open, and no step succeeded twice in a run.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.chaos.cluster import Cluster
from tests.chaos.platform import Platform
from tests.chaos.scenarios import run_scenario
from tests.chaos.sink import Sink

pytestmark = pytest.mark.chaos

COUNT = 200


class Rig:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="automate-chaos-flow-"))
        self.cluster = Cluster(self.root / "pg")
        self.sink = Sink()
        self.platform = Platform(
            self.cluster.url(), self.sink.url, self.root, lease=1.5, step_timeout=1.0, sleep=1.5
        )
        self.platform.setup()

    def close(self) -> None:
        self.platform.stop()
        self.sink.close()
        self.cluster.close()


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    rig = Rig()
    yield rig
    rig.close()


def waits_of(url: str, event_ids: list[int]) -> tuple[int, int, int, int]:
    """(waits, open waits, runs with a wait twice, steps that succeeded twice in one run)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """
            WITH runs AS (SELECT id FROM automate_run WHERE event_id = ANY(%(ids)s))
            SELECT (SELECT count(*) FROM automate_run_wait WHERE run_id IN (SELECT id FROM runs)),
                   (SELECT count(*) FROM automate_run_wait
                     WHERE run_id IN (SELECT id FROM runs) AND status = 'open'),
                   (SELECT count(*) FROM (SELECT run_id FROM automate_run_wait
                     WHERE run_id IN (SELECT id FROM runs) GROUP BY run_id HAVING count(*) > 1) AS t),
                   (SELECT count(*) FROM (SELECT run_id, name FROM automate_step_run
                     WHERE run_id IN (SELECT id FROM runs) AND status = 'succeeded'
                     GROUP BY run_id, name HAVING count(*) > 1) AS t)
            """,
            {"ids": event_ids},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


@pytest.mark.parametrize("scenario", ["worker-kill9", "pg-restart-slow"])
def test_sleeping_runs_wake_once_through_the_fault(rig: Rig, scenario: str) -> None:
    result = asyncio.run(
        run_scenario(
            scenario, rig.cluster, rig.platform, rig.sink,
            count=COUNT, rate=50, fault_at=2.0, fault_for=2.0,
        )
    )  # fmt: skip
    ledger = result.ledger
    assert result.accepted == COUNT
    assert ledger.lost == 0 and ledger.duplicate_events == 0
    assert ledger.not_finished == 0, f"{ledger.not_finished} jobs pending after {ledger.drain_seconds:.0f}s"
    assert ledger.missing_runs == 0 and ledger.duplicate_runs == 0
    assert ledger.unexplained_effects == 0 and ledger.dead == 0
    assert result.drive is not None
    events = [o.event_id for o in result.drive.acked if o.event_id is not None]
    waits, still_open, waited_twice, repeated = waits_of(rig.cluster.url(), events)
    assert still_open == 0
    assert waited_twice == 0  # a resumed run reused its ended wait instead of waiting again
    assert repeated == 0  # no step succeeded twice within one run
    assert waits >= COUNT  # every run slept (a run resumed after a crash keeps its first wait)
