"""``Gate``: the admission controls, applied by the engine to the workflows that set one.

* ``admit`` (an event job's fresh plans): rate limit (skip), throttle (run now, or hand off to a
  run job available at the run's turn), hand-off (``queue``/``priority``/``fairness``). It
  returns the plans that run inline in this job. On a later claim of the job it first reads what
  an earlier claim admitted for the event (one query), so nothing is counted, delayed or handed
  off twice: a run an earlier claim started inline is resumed by the retry as usual, one it
  handed off or skipped is left alone.
* ``lock`` (every plan that runs, queued runs too): the singleton locks, keyed ``-workflow_id``
  in the engine's slot map; None means "snooze the job" (a lock is held).

A key that fails to render makes the plan's run fail with the error (``plan.error``), never a
default key.
"""

from __future__ import annotations

import logging
from typing import Any

from automate_core import db
from automate_core.exceptions import LeaseExpired, TemplateError
from automate_core.execution.concurrency import ConcurrencySlots, Slot
from automate_core.execution.controls import handoff, queries, rate_limit, singleton, throttle, wakeup
from automate_core.execution.controls.keys import render_key
from automate_core.execution.controls.records import record_skipped
from automate_core.execution.runner import Plan
from automate_core.outbox.store import ClaimedJob
from automate_core.rules.admission import Admission

logger = logging.getLogger("automate.execution")


def gated(plans: list[Plan]) -> bool:
    """Whether any plan's workflow sets an admission control (the only test a plain one costs)."""
    return any(p.workflow.admission is not None for p in plans)


class Gate:
    def __init__(self, slots: ConcurrencySlots) -> None:
        self.slots = slots

    async def admit(self, plans: list[Plan], context: dict[str, Any], job: ClaimedJob) -> list[Plan]:
        gated_plans = [p for p in plans if p.workflow.admission is not None and p.workflow.admission.admits]
        gated_plans = [p for p in gated_plans if not p.error]
        admitted = await self._admitted(gated_plans, context, job) if job.attempts > 1 else {}
        kept = []
        for plan in plans:
            admission = plan.workflow.admission
            if admission is None or not admission.admits or plan.error:
                kept.append(plan)
            elif plan.workflow.id in admitted:
                if admitted[plan.workflow.id]:  # started inline by an earlier claim: the retry resumes it
                    kept.append(plan)
            elif await self._admit(plan, admission, context, job):
                kept.append(plan)
        return kept

    async def _admitted(self, plans: list[Plan], context: dict[str, Any], job: ClaimedJob) -> dict[int, bool]:
        if not plans:
            return {}
        pool = await db.get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                queries.ADMITTED,
                {
                    "event_id": context["event"]["id"],
                    "job_id": job.id,
                    "workflow_ids": [p.workflow.id for p in plans],
                },
            )
            return {int(w): bool(inline) for w, inline in await cur.fetchall()}

    async def _admit(
        self, plan: Plan, admission: Admission, context: dict[str, Any], job: ClaimedJob
    ) -> bool:
        """True: run it inline now. False: skipped or handed off (recorded)."""
        workflow = plan.workflow
        what = "rate_limit"
        try:
            if admission.rate_limit is not None:
                key = render_key(admission.rate_limit.key, context)
                reason = await rate_limit.take(workflow.id, admission.rate_limit, key)
                if reason is not None:
                    await record_skipped(plan, context, job, reason)
                    return False
            what = "throttle"
            throttle_key = render_key(admission.throttle.key, context) if admission.throttle else ""
            what = "fairness"
            hand_off = handoff.needed(admission, job)
            where = handoff.target(admission, context, job) if hand_off else None
        except TemplateError as exc:
            plan.error = f"{what} key: {exc}"
            return True  # recorded as a failed run, with the error
        if admission.throttle is None and where is None:
            return True
        pool = await db.get_pool()
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(queries.HOLD_CLAIM, {"job_id": job.id, "claim": job.attempts})
            if await cur.fetchone() is None:
                raise LeaseExpired(f"Job {job.id} was taken over before its runs were admitted.")
            start, delay, note = None, 0.0, ""
            if admission.throttle is not None:
                start, delay = await throttle.take(conn, workflow.id, admission.throttle, throttle_key)
            later = delay > 0
            if later and admission.throttle is not None and start is not None:
                note = throttle.note(admission.throttle, throttle_key, start)
            if not later and where is None:
                return True  # its turn is now: run inline (the turn is committed with this block)
            target = where or (handoff.job_queue(job), 0, "")
            run_id = await handoff.hand_off(conn, plan, context, job, target, start, note)
        if later:  # committed: wake the workers at its turn rather than at their next poll
            wakeup.alarms.at(delay)
        logger.debug("workflow %s: run %s handed off (%s)", workflow.name, run_id, note or target)
        return False

    async def lock(
        self, plans: list[Plan], context: dict[str, Any], job: ClaimedJob
    ) -> dict[int, Slot] | None:
        """The singleton locks of the plans (keyed ``-workflow_id``); None when one is held
        elsewhere in mode queue or cancel (the job snoozes). Skipped plans leave ``plans``."""
        held: dict[int, Slot] = {}
        for plan in list(plans):
            admission = plan.workflow.admission
            spec = admission.singleton if admission is not None else None
            if spec is None or plan.error:
                continue
            try:
                key = render_key(spec.key, context)
            except TemplateError as exc:
                plan.error = f"singleton key: {exc}"
                continue
            slot = await singleton.acquire(plan.workflow.id, key, job.id, job.attempts)
            if slot is not None:
                held[-plan.workflow.id] = slot
                continue
            holder = await singleton.holder(plan.workflow.id, key)
            if spec.mode == "skip":
                await record_skipped(plan, context, job, skip_reason(key, holder))
                plans.remove(plan)
                continue
            if spec.mode == "cancel" and holder.run_id is not None:
                reason = (
                    f"cancelled by a newer event #{context['event']['id']} "
                    f"(singleton key {key!r}, mode cancel)"
                )
                await singleton.cancel(holder.run_id, reason)
            for taken in held.values():
                await self.slots.release(taken)
            logger.debug("workflow %s: singleton key %r is held", plan.workflow.name, key)
            return None
        return held


def skip_reason(key: str, holder: singleton.Holder) -> str:
    by = f"run #{holder.run_id}" if holder.run_id is not None else f"job #{holder.job_id}"
    return f"singleton key {key!r} is held by {by} (mode skip): this run was skipped"
