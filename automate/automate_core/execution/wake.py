"""``Waker``: carries out a wake job, the one resumption of a waiting run.

A wake job (``payload = {"wake": wait_id}``) is parked at its wait's deadline, or made available
at once by whatever resolved the wait. When a worker claims it:

1. a wait still open past its deadline times out (guarded: a resolution that came first wins);
   one still open before it (woken early) snoozes until then;
2. the wait's step is recorded with its outcome and the run goes ``waiting`` -> ``running`` under
   this job's claim, in one statement (``wait_queries.RESUME_RUN``): a second wake, a cancelled
   run or a lost claim matches nothing, so the run resumes exactly once;
3. the run goes on from the step after the wait on the same record and the same version,
   reusing every step it recorded (nothing that succeeded runs again).

A later claim of the same wake job (its worker died mid-run) finds the run it resumed through
``previous_runs`` and resumes that the way any retried job resumes its runs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from automate_core.execution import constructs
from automate_core.execution.runner import Plan
from automate_core.execution.waits import waits
from automate_core.outbox.store import ClaimedEvent, ClaimedJob

if TYPE_CHECKING:
    from automate_core.execution.engine import ExecutionEngine, JobOutcome

logger = logging.getLogger("automate.execution")

#: A wake job claimed while its wait has no deadline and is still open goes back for this long
#: (a resolution makes it available at once anyway).
PARK_SECONDS = 86400.0


class Waker:
    def __init__(self, engine: ExecutionEngine) -> None:
        self.engine = engine

    async def handle(self, job: ClaimedJob, event: ClaimedEvent, wait_id: int) -> JobOutcome:
        from automate_core.execution.engine import JobOutcome, reusable_prefix

        engine = self.engine
        if job.attempts > 1:  # an earlier claim of this wake job resumed the run: resume that
            previous = await engine.journal.previous_runs(job.id)
            plans = [p for e in previous.values() if (p := await engine._resume_plan(e)) is not None]
            if previous:
                return await engine._run(plans, event, job, {}) if plans else JobOutcome(True)
        wait = await waits.get(wait_id)
        if wait is None:
            return JobOutcome(True)
        if wait.status == "open":
            now = datetime.now(UTC)
            if wait.deadline is None or wait.deadline > now:
                left = (wait.deadline - now).total_seconds() if wait.deadline else PARK_SECONDS
                return JobOutcome(False, snooze=max(0.05, left))
            wait = await waits.time_out(wait.id) or await waits.get(wait_id)
            if wait is None:
                return JobOutcome(True)
        if wait.status == "cancelled":
            return JobOutcome(True)
        run = await engine.journal.queued_run(wait.run_id)
        if run is None or run.status != "waiting" or run.version_id is None:
            return JobOutcome(True)  # cancelled meanwhile, or resumed by another wake
        spec = await engine.rules.version(run.version_id)
        step = spec.find(wait.step_name)
        if step is None:  # versions never change: only a hand-edited database gets here
            return JobOutcome(False, error=f"run {wait.run_id} has no step {wait.step_name!r} any more")
        status, output, error = constructs.durable(step.kind).outcome(step, wait)
        resumed = await waits.resume(
            wait,
            job,
            position=step.position,
            connector=step.connector,
            status=status,
            output=output,
            error=error,
        )
        if not resumed:
            return JobOutcome(True)
        plan = Plan(
            spec,
            run_id=wait.run_id,
            continuing=True,
            mode=run.mode,
            parent_id=run.parent_id,
            reuse=reusable_prefix(await engine.journal.run_steps(wait.run_id)),
            woken=wait,
        )
        if run.mode == "call":
            plan.input = await engine.journal.run_input(wait.run_id)
        logger.info("run %s woke: %s %s", wait.run_id, wait.step_name, wait.status)
        return await engine._run([plan], event, job, {})
