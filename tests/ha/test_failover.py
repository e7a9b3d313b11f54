"""Failover cells on the Patroni + etcd + HAProxy topology (marker ``ha``; one cell < 3 minutes).

Every cell checks the chaos suite's ledger: every 2xx webhook is one event, every event's run
exactly once, side effects beyond the first only as recorded attempts; and it measures the time
to recovery (first 202 after the fault to a retried webhook, first completed job after it).
``python -m tests.ha`` prints the same cells as a table (docs/operations.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.ha.cells import (
    CellResult,
    Rig,
    kill_primary_host,
    partition_primary,
    run_cell,
    stall_replication,
    switchover,
)
from tests.ha.topology import Replication

pytestmark = [pytest.mark.ha, pytest.mark.timeout(300)]

COUNT, RATE, FAULT_AT = 200, 10.0, 4.0


@pytest.fixture
def sync_rig() -> Iterator[Rig]:
    rig = Rig(Replication(synchronous=True))
    yield rig
    rig.close()


@pytest.fixture
def async_rig() -> Iterator[Rig]:
    rig = Rig(Replication(synchronous=False))
    yield rig
    rig.close()


def _assert_nothing_lost(result: CellResult) -> None:
    ledger = result.ledger
    print(result.row())
    assert result.accepted == COUNT, f"the sender gave up on {COUNT - result.accepted} webhooks"
    assert ledger.lost == 0, f"{ledger.lost} acknowledged webhooks are not events on the new primary"
    assert ledger.duplicate_events == 0
    assert ledger.not_finished == 0, f"{ledger.not_finished} jobs pending after {ledger.drain_seconds:.0f}s"
    assert (ledger.missing_runs, ledger.duplicate_runs, ledger.unexplained_effects, ledger.dead) == (
        0,
        0,
        0,
        0,
    )
    assert result.new_leader != result.old_leader


@pytest.mark.ha(ci=True)  # the cell CI runs (tests/ha/conftest.py)
def test_kill9_the_primary_host_the_sync_standby_takes_over_and_nothing_is_lost(sync_rig: Rig) -> None:
    result = asyncio.run(
        run_cell("primary-kill9", sync_rig, kill_primary_host, count=COUNT, rate=RATE, fault_at=FAULT_AT)
    )
    _assert_nothing_lost(result)
    assert result.ingest_recovery > 0 and result.job_recovery > 0  # there was an outage, and it ended


def test_the_primary_partitioned_from_the_others_loses_nothing(sync_rig: Rig) -> None:
    """The primary's host keeps running but reaches nobody, and nobody reaches it (firewall rules
    on its address): the standby is promoted once the old leader's key expires in etcd, and no
    acknowledged webhook is only on the cut-off host."""
    result = asyncio.run(
        run_cell(
            "primary-partitioned", sync_rig, partition_primary, count=COUNT, rate=RATE, fault_at=FAULT_AT
        )
    )
    _assert_nothing_lost(result)
    assert result.ingest_recovery > 0 and result.job_recovery > 0


def test_a_switchover_loses_nothing(sync_rig: Rig) -> None:
    result = asyncio.run(
        run_cell("switchover", sync_rig, switchover, count=COUNT, rate=RATE, fault_at=FAULT_AT)
    )
    _assert_nothing_lost(result)


@pytest.mark.parametrize("synchronous", [True, False], ids=["sync", "async"])
def test_a_lagging_standby_then_the_primary_lost(synchronous: bool) -> None:
    """The primary stops streaming to the standby for 2 s, then its host dies. Synchronous:
    commits waited for the standby (the senders retried), so nothing acknowledged is lost.
    Asynchronous: what the primary acknowledged during the stall is gone after the failover; the
    test measures it."""
    rig = Rig(Replication(synchronous=synchronous))
    try:
        result = asyncio.run(
            run_cell(
                f"stall+kill9 ({'sync' if synchronous else 'async'})", rig, kill_primary_host,
                count=COUNT, rate=RATE, fault_at=FAULT_AT, before_fault=stall_replication,
            )
        )  # fmt: skip
    finally:
        rig.close()
    if synchronous:
        _assert_nothing_lost(result)
    else:
        print(result.row())
        # acknowledged (202) during the stall, never replicated: lost with the primary's host
        assert result.ledger.lost > 0, "asynchronous replication lost nothing: the stall did not happen?"
        assert result.ledger.duplicate_events == 0 and result.ledger.duplicate_runs == 0
