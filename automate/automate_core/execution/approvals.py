"""Answering approvals: from the console, ``automate approve``, the API and one-time links.

Every way in ends in the same guarded statement (``wait_queries.RESOLVE``): the first answer
wins, a second one, an answer after the deadline or to a cancelled run is refused with
:class:`ApprovalError` saying why. Who answered, when and with what comment is recorded in the
wait (``resolved_by``, ``resolved_at``, ``result``) and becomes the step's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from automate_core.exceptions import ApprovalError
from automate_core.execution import wait_queries as q
from automate_core.execution.waits import token_hash
from automate_core.models import RunWait


@dataclass(frozen=True, slots=True)
class Pending:
    wait: RunWait
    workflow: str


def expired(wait: RunWait) -> bool:
    return wait.deadline is not None and wait.deadline <= timezone.now()


def refusal(wait: RunWait | None, what: str) -> ApprovalError:
    return _refusal(wait, what)


def recent(limit: int = 20) -> list[RunWait]:
    """Approvals answered or expired lately, newest first (who answered, and when)."""
    return list(
        RunWait.objects.filter(kind="approval").exclude(status="open").order_by("-resolved_at")[:limit]
    )


def _refusal(wait: RunWait | None, what: str) -> ApprovalError:
    if wait is None:
        return ApprovalError(f"{what}: no such approval (it may have been answered through another link).")
    if wait.status == "resolved":
        answer = "approved" if (wait.result or {}).get("approved") else "rejected"
        when = wait.resolved_at.isoformat(timespec="seconds") if wait.resolved_at else "?"
        return ApprovalError(f"{what}: already answered ({answer} by {wait.resolved_by} at {when}).")
    if wait.status == "timed_out" or (wait.deadline is not None and wait.deadline <= timezone.now()):
        when = wait.deadline.isoformat(timespec="seconds") if wait.deadline else "?"
        return ApprovalError(f"{what}: it expired at {when}; the run went on with its on_timeout.")
    if wait.status == "cancelled":
        return ApprovalError(f"{what}: the run was cancelled.")
    return ApprovalError(f"{what}: it cannot be answered now ({wait.status}).")


def _resolve(wait_id: int | None, hashed: str | None, approved: bool, by: str, comment: str) -> bool:
    import json

    result = {"approved": bool(approved), "by": by, "comment": comment[:2000]}
    with connection.cursor() as cur:
        cur.execute(
            q.RESOLVE,
            {
                "kind": "approval",
                "result": json.dumps(result),
                "by": by[:200],
                "wait_id": wait_id,
                "token_hash": hashed,
            },
        )
        return cur.fetchone() is not None


def answer(run_id: int, step: str, approved: bool, *, by: str, comment: str = "") -> RunWait:
    """Approve or reject the approval step ``step`` of run ``run_id``."""
    what = f"run #{run_id} step {step}"
    wait = RunWait.objects.filter(run_id=run_id, step_name=step, kind="approval").first()
    if wait is None:
        kinds = list(RunWait.objects.filter(run_id=run_id).values_list("step_name", "kind"))
        known = ", ".join(f"{s} ({k})" for s, k in kinds) or "none"
        raise ApprovalError(f"{what}: no approval of that name has opened in this run (its waits: {known}).")
    if not _resolve(wait.pk, None, approved, by, comment):
        wait.refresh_from_db()
        raise _refusal(wait, what)
    wait.refresh_from_db()
    return wait


def lookup(token: str) -> RunWait | None:
    return RunWait.objects.filter(token_hash=token_hash(token), kind="approval").first()


def answer_link(token: str, approved: bool, *, by: str, comment: str = "") -> RunWait:
    """Answer through a one-time link: the token is its credential (stored only as a hash)."""
    hashed = token_hash(token)
    if not _resolve(None, hashed, approved, by, comment):
        raise _refusal(lookup(token), "this link")
    wait = lookup(token)
    assert wait is not None
    return wait


def pending() -> list[Pending]:
    """Approvals waiting for an answer, oldest first, with their workflow's name."""
    from automate_core.models import ExecutionRun

    waits = list(RunWait.objects.filter(kind="approval", status="open").order_by("created_at", "id")[:500])
    names: dict[int, Any] = dict(
        ExecutionRun.objects.filter(pk__in=[w.run_id for w in waits]).values_list("pk", "workflow_name")
    )
    return [Pending(w, str(names.get(w.run_id, "?"))) for w in waits]
