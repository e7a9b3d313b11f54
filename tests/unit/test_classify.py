"""How a step's failure is classified decides whether the job is retried."""

from __future__ import annotations

import pytest

from automate_core.exceptions import (
    ConnectorError,
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretsBackendUnavailable,
    TemplateError,
)
from automate_core.execution.actions import classify


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (SecretAccessDeniedError("vault: permission denied for 'db/password'"), False),
        (SecretsBackendUnavailable("vault did not answer"), True),
        (SecretNotFoundError("no such secret"), True),
        (TemplateError("bad template"), False),
        (ConnectorError("429", retryable=True, retry_after=7.0), True),
        (ConnectorError("400", retryable=False), False),
        (ValueError("a bug in a plugin"), True),
    ],
)
def test_retryable(exc: Exception, retryable: bool) -> None:
    message, got, _retry_after = classify(exc)
    assert got is retryable
    assert type(exc).__name__ in message
