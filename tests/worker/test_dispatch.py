"""How the dispatcher turns a job's outcome into what the outbox records (no database needed)."""

from __future__ import annotations

import pytest

from automate_core.execution.engine import JobOutcome
from automate_core.outbox.retry import RetryPolicy
from automate_core.outbox.store import ClaimedJob
from automate_core.worker.dispatch import Dispatcher

decide = Dispatcher.__new__(Dispatcher).decide  # no engine needed for the decision


def job(attempts: int = 1, releases: int = 0, max_attempts: int = 5) -> ClaimedJob:
    return ClaimedJob(1, "event", attempts, max_attempts, None, None, 1, releases)


def test_success_completes_and_a_snooze_releases_without_spending() -> None:
    assert decide(job(), JobOutcome(True)).action == "complete"
    snoozed = decide(job(), JobOutcome(False, retryable=True, snooze=30.0))
    assert (snoozed.action, snoozed.delay) == ("release", 30.0)


def test_a_retryable_failure_retries_with_the_policys_backoff() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=10, max_seconds=1000)
    first = decide(job(1), JobOutcome(False, retryable=True, error="503", retry_policy=policy))
    assert (first.action, first.max_attempts, first.error) == ("retry", 3, "503")
    assert 5 <= first.delay <= 10
    second = decide(job(2), JobOutcome(False, retryable=True, retry_policy=policy))
    assert 10 <= second.delay <= 20


def test_retry_after_is_honoured_and_the_last_attempt_is_dead() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=1, max_seconds=1000)
    waited = decide(job(1), JobOutcome(False, retryable=True, retry_after=120, retry_policy=policy))
    assert waited.delay >= 120
    last = decide(job(3), JobOutcome(False, retryable=True, error="still down", retry_policy=policy))
    assert (last.action, last.error) == ("dead", "still down")


def test_not_retryable_is_dead_at_once() -> None:
    assert decide(job(1), JobOutcome(False, retryable=False, error="400")).action == "dead"


def test_released_claims_are_not_spent_attempts() -> None:
    # the fourth claim, but two were handed back at shutdown: only the second spent attempt
    outcome = JobOutcome(False, retryable=True, retry_policy=RetryPolicy(max_attempts=3))
    assert decide(job(attempts=4, releases=2), outcome).action == "retry"
    assert decide(job(attempts=5, releases=2), outcome).action == "dead"


def test_without_a_workflow_policy_the_jobs_own_cap_applies() -> None:
    assert decide(job(2, max_attempts=2), JobOutcome(False, retryable=True)).action == "dead"
    assert decide(job(1, max_attempts=2), JobOutcome(False, retryable=True)).action == "retry"


@pytest.mark.parametrize("attempt", [1, 5, 60, 5000])
def test_backoff_is_capped_and_never_negative(attempt: int) -> None:
    delay = RetryPolicy(base_seconds=2, max_seconds=3600).delay(attempt)
    assert 0 < delay <= 3600
