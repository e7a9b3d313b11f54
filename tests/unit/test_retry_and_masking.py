"""Backoff stays within its bounds; secret values are masked in text, data and log records."""

from __future__ import annotations

import logging

import pytest

from automate_core.masking import SecretMasker, SecretMaskingFilter, masker
from automate_core.outbox.retry import RetryPolicy


@pytest.mark.parametrize("attempt", [1, 2, 3, 10, 40])
def test_backoff_is_jittered_within_the_cap(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=50, base_seconds=2, max_seconds=60)
    ceiling = min(60, 2 * 2 ** (attempt - 1))
    for _ in range(50):
        assert ceiling / 2 <= policy.delay(attempt) <= ceiling


def test_retry_after_is_honoured_but_capped() -> None:
    policy = RetryPolicy(base_seconds=1, max_seconds=30)
    assert policy.delay(1, retry_after=20) >= 20
    assert policy.delay(1, retry_after=5000) <= 30


def test_exhausted_after_last_attempt() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert not policy.exhausted(2)
    assert policy.exhausted(3)


def test_masker_masks_text_and_nested_data() -> None:
    m = SecretMasker()
    m.register("hunter22")
    m.register("hunter2")
    assert m.mask("pw=hunter22 and hunter2") == "pw=*** and ***"
    assert m.mask_data({"a": ["x hunter2 y"], "hunter2": 1}) == {"a": ["x *** y"], "***": 1}


def test_log_filter_masks_messages_and_tracebacks() -> None:
    masker.register("log-secret-value")
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "token %s", ("log-secret-value",), None)
    try:
        raise ValueError("failed with log-secret-value")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    SecretMaskingFilter().filter(record)
    assert "log-secret-value" not in record.getMessage()
    assert "log-secret-value" not in (record.exc_text or "")
