"""The lease keeper tells a lost claim from one whose settlement committed just before the heartbeat."""

from __future__ import annotations

import pytest

from automate_core.outbox.store import OutboxStore
from automate_core.worker.leases import LeaseKeeper
from tests.worker.conftest import amake_events

pytestmark = pytest.mark.usefixtures("live_db")

store = OutboxStore()


async def keeper_after_completion(*, still_unsent: bool) -> list[int]:
    """Claim a job, complete it (its settlement committed), then beat with it still listed as
    awaiting settlement; returns the ids the keeper declared lost."""
    await amake_events(1)
    (job,) = await store.claim_batch(1, "w1", 30)
    lost: list[int] = []
    keeper = LeaseKeeper(
        store, "w1", 30, {}, lambda: [job], lost.extend, unsent=lambda: (job.id,) if still_unsent else ()
    )
    assert await store.complete([job], "w1", [None]) == {job.id}
    await keeper.beat()
    return lost


async def test_a_settlement_sent_before_the_heartbeat_is_not_a_lost_lease() -> None:
    assert await keeper_after_completion(still_unsent=False) == []


async def test_a_claim_still_awaiting_its_settlement_that_the_heartbeat_misses_is_lost() -> None:
    assert len(await keeper_after_completion(still_unsent=True)) == 1
