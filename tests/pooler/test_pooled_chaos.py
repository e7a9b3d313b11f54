"""A short chaos run through PgBouncer: `automate serve` and `automate worker` processes whose every
pooled connection goes through a real PgBouncer in transaction mode, with LISTEN on a direct
connection, under the faults that matter to a pooler (workers killed, server connections
terminated behind PgBouncer's back), checked with the chaos suite's ledger."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.chaos.cluster import Cluster
from tests.chaos.platform import Platform
from tests.chaos.scenarios import run_scenario
from tests.chaos.sink import Sink
from tests.pooler.pgbouncer import PgBouncer

pytestmark = pytest.mark.chaos


class PooledRig:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="automate-pooled-chaos-"))
        self._cleanup: list[Callable[[], None]] = []
        try:
            self.cluster = Cluster(self.root / "pg")
            self._cleanup.append(self.cluster.close)
            self.bouncer = PgBouncer(
                {"automate": f"host={self.cluster.socket_dir} dbname=automate"}, run_as=self.cluster.user
            )
            self._cleanup.append(self.bouncer.stop)
            self.sink = Sink()
            self._cleanup.append(self.sink.close)
            url = self.bouncer.url("automate")
            self.platform = Platform(url, self.sink.url, self.root, lease=1.5, step_timeout=1.0)
            self._cleanup.append(self.platform.stop)
            self.platform.env["AUTOMATE_DB_TRANSACTION_POOLING"] = "1"
            self.platform.env["AUTOMATE_LISTEN_DATABASE_URL"] = self.cluster.url()
            self.platform.setup()  # migrations through PgBouncer too
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        while self._cleanup:
            self._cleanup.pop()()


@pytest.fixture(scope="module")
def rig() -> Iterator[PooledRig]:
    rig = PooledRig()
    yield rig
    rig.close()


@pytest.mark.parametrize("scenario", ["baseline", "worker-kill9", "pg-terminate-backends"])
def test_through_pgbouncer_the_ledger_holds(rig: PooledRig, scenario: str) -> None:
    carried = rig.bouncer.transactions("automate")
    result = asyncio.run(
        run_scenario(
            scenario, rig.cluster, rig.platform, rig.sink,
            count=150, rate=50, fault_at=0.8, fault_for=1.5,
        )
    )  # fmt: skip
    ledger = result.ledger
    assert result.accepted == 150, f"the sender gave up on {150 - result.accepted} webhooks"
    assert (ledger.lost, ledger.duplicate_events) == (0, 0)
    assert ledger.not_finished == 0, f"{ledger.not_finished} jobs pending after {ledger.drain_seconds:.0f}s"
    assert (ledger.missing_runs, ledger.duplicate_runs, ledger.unexplained_effects, ledger.dead) == (
        0,
        0,
        0,
        0,
    )
    assert rig.bouncer.transactions("automate") - carried > 150, "the platform did not go through PgBouncer"
    for log in rig.root.glob("*.log"):
        assert "prepared statement" not in log.read_text(errors="replace"), log.name
