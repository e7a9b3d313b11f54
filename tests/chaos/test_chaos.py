"""The chaos matrix in short: every scenario on a cluster of our own, with the ledger checked.

Each scenario drives signed webhooks through `automate serve` into `automate worker` processes
while one fault is injected; afterwards every acknowledged webhook must be exactly one event with
one succeeded run, and every side effect beyond the first must be explained by a recorded attempt.
The full-length matrix is ``python -m tests.chaos`` (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.cluster import Cluster
from tests.chaos.driver import DriveResult, Outcome
from tests.chaos.ledger import check, find_secret
from tests.chaos.platform import TOKEN, Platform
from tests.chaos.scenarios import SCENARIOS, run_scenario
from tests.chaos.sink import Sink

pytestmark = pytest.mark.chaos


class Rig:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="automate-chaos-ci-"))
        self.cluster = Cluster(self.root / "pg")
        self.sink = Sink()
        self.platform = Platform(self.cluster.url(), self.sink.url, self.root, lease=1.5, step_timeout=1.0)
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


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario_keeps_the_ledger(rig: Rig, scenario: str) -> None:
    result = asyncio.run(
        run_scenario(
            scenario, rig.cluster, rig.platform, rig.sink,
            count=150, rate=50, fault_at=0.8, fault_for=1.5,
        )
    )  # fmt: skip
    ledger = result.ledger
    assert result.accepted == 150, f"the sender gave up on {150 - result.accepted} webhooks"
    assert ledger.lost == 0
    assert ledger.duplicate_events == 0
    assert ledger.not_finished == 0, (
        f"{ledger.not_finished} jobs still pending after {ledger.drain_seconds:.0f}s"
    )
    assert ledger.missing_runs == 0
    assert ledger.duplicate_runs == 0
    assert ledger.unexplained_effects == 0
    assert ledger.dead == 0


def test_the_ledger_notices_a_lost_event(rig: Rig) -> None:
    """The check itself can fail: an acknowledged id that was never stored counts as lost."""
    fake = DriveResult(outcomes=[Outcome(key="never-sent", event_id=10**9, status=202, tries=1)])
    ledger = check(rig.cluster.url(), fake, rig.sink, drain_timeout=5)
    assert ledger.lost == 1 and not ledger.ok


def test_no_secret_was_stored_or_logged(rig: Rig) -> None:
    """After the whole matrix (faults, retries, failures), the token every delivery carried
    is in no database column and no process log."""
    assert rig.sink.deliveries, "the matrix ran no deliveries"
    assert find_secret(rig.cluster.url(), TOKEN, rig.root) == []
    assert rig.sink.authorization == {f"Bearer {TOKEN}"}  # it was really sent, and masked only at rest
