"""The soak in short (one minute; ``python -m tests.chaos.soak --minutes 10`` is the full one).

A steady stream of signed webhooks through `automate serve` into an `automate worker`, sampled
every 5 s: every webhook is accepted, the outbox keeps up (its depth stays bounded), and neither
memory nor file descriptors climb once warmed up (slopes over the second half, per minute).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.soak import run_soak

pytestmark = pytest.mark.chaos

RATE = 80.0  # webhooks/s: well inside what web + worker + PostgreSQL sustain on two shared cores


def test_one_minute_soak_stays_flat() -> None:
    result = asyncio.run(run_soak(minutes=1.0, rate=RATE, prefix="automate-soak-ci-"))
    summary = result.summary()
    assert result.failed == 0 and result.accepted == result.sent >= 0.9 * RATE * 60, summary
    assert len(result.samples) >= 10, summary
    assert summary["outbox_depth_max"] < RATE * 10, summary  # the worker keeps up: < 10 s behind
    assert summary["fds_slope_per_min"] < 10, summary  # no connection or descriptor leak
    assert summary["worker_rss_mb_slope_per_min"] < 25, summary  # no runaway growth
    assert summary["p99_ms_second_half"] < 2000, summary
