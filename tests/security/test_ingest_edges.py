"""Issue 18.7: names that cannot be a source are a logged 404 (``/hooks/%00/`` was a 503), and a 503
says only what is known about the write (issue 18.8)."""

from __future__ import annotations

import logging

import httpx
import pytest

from automate_core.models import Event
from tests.conftest import post_webhook

BAD_NAMES = [
    "%00",
    "a%00b",
    "%0a",
    "%ff",
    "%c3%a9",  # é
    "UPPER",
    "-leading-dash",
    "a" * 101,
    "%2e%2e",
    "name%20with%20space",
    "%ud800",
]


@pytest.mark.usefixtures("demo_source")
@pytest.mark.parametrize("name", BAD_NAMES)
async def test_a_name_that_cannot_be_a_source_is_a_logged_404(
    client: httpx.AsyncClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "automate.ingest"):
        response = await post_webhook(client, name, {"type": "t"})
    assert (response.status_code, response.json()["error"]) == (404, "unknown_source"), response.text
    assert "is not a source name (404)" in caplog.text
    assert "\x00" not in caplog.text
    assert await Event.objects.acount() == 0


@pytest.mark.usefixtures("demo_source")
async def test_an_unknown_but_valid_name_is_a_logged_404(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "automate.ingest"):
        response = await post_webhook(client, "nope", {"type": "t"})
    assert response.status_code == 404
    assert "no enabled source 'nope' (404)" in caplog.text


def test_503_says_nothing_was_recorded_only_when_known() -> None:
    from automate_core.exceptions import DatabaseUnavailable
    from automate_core.ingest.dbwait import NotRecorded, OutcomeUnknown
    from automate_core.ingest.service import database_unavailable, error

    known = error(database_unavailable(NotRecorded(), "k1"))
    assert (known.status, known.body["outcome"]) == (503, "not_recorded")
    assert "nothing was recorded" in known.body["detail"]
    for exc in (OutcomeUnknown(), DatabaseUnavailable()):  # unknown unless known otherwise
        keyed = error(database_unavailable(exc, "k1"))
        assert (keyed.status, keyed.body["error"], keyed.body["outcome"]) == (503, "unavailable", "unknown")
        assert "nothing was recorded" not in keyed.body["detail"]
        assert "Retrying with the same idempotency key is safe" in keyed.body["detail"]
        assert keyed.headers["Retry-After"]
        unkeyed = error(database_unavailable(exc, None))
        assert "a retry may record it a second time" in unkeyed.body["detail"]
