"""Admission control: a bounded number of webhook requests in flight, per process and per source.

Two stages. While a request is read and verified it holds only an *unverified* slot of the
process (``INGEST_MAX_UNVERIFIED``): anyone can open such a request, so it must not count against
a source, or a few slow unauthenticated senders would take all of a source's slots. Once its
signature is verified it trades that slot for one of the process (``INGEST_MAX_IN_FLIGHT``) and
one of its source (``max_in_flight``), held until the database has answered.

A request over any bound is refused at once with ``429`` and ``Retry-After`` instead of
queueing behind the others: a sender is better served by a fast "come back in a second" than by a
slow ``202`` or a timeout, and a burst on one source cannot take every slot of the others. The
counters are plain integers: one event loop per process, no awaits between check and increment.
"""

from __future__ import annotations

from automate_core.exceptions import IngestError
from automate_core.ingest import tuning


class Busy(IngestError):
    """Too many webhook requests are in flight; retry after the Retry-After seconds."""

    status = 429
    reason = "too_many_requests"


class Admission:
    def __init__(self) -> None:
        self.total = 0
        self.unverified = 0
        self.per_source: dict[str, int] = {}

    def enter_unverified(self) -> None:
        """Take a slot for reading and verifying a request (before anything about it is known)."""
        if self.unverified >= tuning.current().max_unverified:
            raise _busy("Too many webhook requests are being received on this server.")
        self.unverified += 1

    def leave_unverified(self) -> None:
        self.unverified -= 1

    def enter(self) -> None:
        """Take a process-wide slot for a verified request."""
        if self.total >= tuning.current().max_in_flight:
            raise _busy("Too many webhook requests in flight on this server.")
        self.total += 1

    def leave(self) -> None:
        self.total -= 1

    def enter_source(self, slug: str, limit: int) -> None:
        count = self.per_source.get(slug, 0)
        if count >= limit:
            raise _busy(f"Too many requests in flight for source {slug!r}.")
        self.per_source[slug] = count + 1

    def leave_source(self, slug: str) -> None:
        count = self.per_source.get(slug, 1) - 1
        if count:
            self.per_source[slug] = count
        else:
            self.per_source.pop(slug, None)


def _busy(message: str) -> Busy:
    retry = tuning.current().retry_after_busy
    return Busy(f"{message} Retry after {retry} s.", headers={"Retry-After": retry})
