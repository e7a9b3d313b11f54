"""``LateStart``: a plain run's start, written only once something needs it.

A plain run (its workflow a list of actions, no flow construct, no batch) of an event job is not
written when it starts. Its id was drawn by its job's claim (``outbox.queries``, the claim's
step 4), so its steps, its templates (``run.id``) and its connectors (their idempotency keys)
know it from the start. Its first record is written, whichever comes first:

* **with its end**, when the run ends within ``AUTOMATE_RUN_START_DELAY`` seconds: one insert of
  the whole run (``queries.WHOLE_RUNS``) and its last step record, in one transaction, instead of
  an insert, an update and the two commits they wait for. This is the common case: a webhook
  whose workflow logs, posts or calls an API that answers in milliseconds;
* **with the first step record written before its end** (a step retried after a backoff, a run
  of several steps), in the same transaction (an ``open`` write, ``execution.grouped``): a step is
  never recorded without its run, so a retry of the job finds the run and resumes after that step;
* **on its own**, as ``running``, once the run has gone on for ``AUTOMATE_RUN_START_DELAY``
  seconds: a slow step is seen running in the console and the API, and can be cancelled.

A start is held only while the job's claim is *fresh* (``ClaimedJob.fresh``: its first lease,
counted from before the claim was sent, cannot have run out, so no other worker can hold the job
yet). A worker that froze past its lease between the claim and the run writes the start first, as
before, fenced: taken over, it runs nothing.

What a run does and what it guarantees do not change. A worker that dies before its run's first
record leaves nothing of the run, exactly as one that dies before its step's record leaves
nothing of the step: the job runs again and nothing recorded is repeated. Every write is fenced
by the job's claim, as before: a run whose job was taken over is written ``failed`` (superseded),
never ``succeeded``. What an operator sees: a run shorter than the delay appears when it ends.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from automate_core.conf import settings

if TYPE_CHECKING:
    from automate_core.execution.journal import RunJournal, RunStart
    from automate_core.execution.runner import Plan


def delay() -> float:
    """``AUTOMATE_RUN_START_DELAY``: seconds a plain run may go before its start is written."""
    return float(settings.RUN_START_DELAY)


def eligible(plan: Plan) -> bool:
    """Whether ``plan`` is a new plain run: no record of it exists; none of its steps parks it (a
    wait names its run, which must then be written) or gathers a batch's events; and no singleton
    holds it (a newer event finds the holder by its run, to name it or cancel it)."""
    workflow = plan.workflow
    singleton = workflow.admission is not None and workflow.admission.singleton is not None
    return (
        plan.run_id is None
        and not workflow.is_flow
        and not workflow.batch
        and not singleton
        and plan.woken is None
    )


class LateStart:
    """The start of one run, not yet written. It goes out on its own once ``due`` (the journal's
    sweep, ``RunJournal._sweep_late``), or with the record that needs it first (``take``)."""

    __slots__ = ("due", "journal", "start", "task")

    def __init__(self, journal: RunJournal, start: RunStart, due: float) -> None:
        self.journal = journal
        self.start = start
        self.due = due  # the event loop's time
        self.task: asyncio.Task[int] | None = None

    def take(self) -> bool:
        """Take the start, to write it with the record that needs it (the journal then forgets
        this object); False when it already went out on its own: ``wait`` for it first."""
        return self.task is None

    async def wait(self) -> None:
        """Wait until the start that went out on its own is durable (LeaseExpired if fenced)."""
        assert self.task is not None
        await asyncio.shield(self.task)

    def fire(self) -> None:
        """Write the start now, on its own (``running``)."""
        self.task = asyncio.get_running_loop().create_task(
            self.journal.write_start(self.start), name=f"automate-run-start-{self.start.run_id}"
        )
        self.task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Task[int]) -> None:
    """A start nobody waits for any more (its run was cancelled at shutdown): its failure is the
    next claim's to meet, not an unretrieved exception in the log."""
    if not task.cancelled():
        task.exception()
