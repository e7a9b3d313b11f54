"""``/api/v1/waits`` and ``/api/v1/approvals``: runs that wait, and answering an approval.

A program sees what every waiting run waits for (``GET /waits``, newest first, by kind) and the
approvals open for an answer (``GET /approvals``), and answers one
(``POST /approvals/{run_id}/{step}``): the same guarded statement as the console, the CLI and the
one-time link (``execution.approvals``), so the first answer wins wherever it comes from; a
second, late or unknown answer is 409 or 404 saying why. Who answered is the token
(``token:<name>#<id>``), recorded with the answer and in the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema

from automate_core.api.auth import TokenAuth, principal
from automate_core.api.common import answers, audited
from automate_core.api.schemas import Strict
from automate_core.exceptions import ApiError, ApprovalError
from automate_core.execution import approvals
from automate_core.models import ExecutionRun, RunWait

router = Router(tags=["waits"])

MAX_ID = 2**63 - 1
Kind = Literal["sleep", "event", "approval", "call"]


class WaitOut(Schema):
    run_id: int
    workflow: str
    step: str
    kind: str
    waits_for: str = Field(description="what the run waits for, in words")
    until: datetime | None = Field(description="the deadline (null: none)")
    since: datetime
    on_timeout: str


class AnswerIn(Strict):
    approved: bool
    comment: str = Field("", max_length=2000)


class Answered(Schema):
    run_id: int
    step: str
    approved: bool
    by: str


def _open(kind: str | None, limit: int) -> list[WaitOut]:
    waits = RunWait.objects.filter(status="open").order_by("-created_at", "-id")
    if kind:
        waits = waits.filter(kind=kind)
    rows = list(waits[:limit])
    names = dict(
        ExecutionRun.objects.filter(pk__in=[w.run_id for w in rows]).values_list("pk", "workflow_name")
    )
    return [
        WaitOut(run_id=w.run_id, workflow=str(names.get(w.run_id, "")), step=w.step_name, kind=w.kind,
                waits_for=w.describe(), until=w.deadline, since=w.created_at, on_timeout=w.on_timeout)
        for w in rows
    ]  # fmt: skip


@router.get(
    "/waits",
    operation_id="list_waits",
    auth=TokenAuth("runs:read"),
    response=answers({200: list[WaitOut]}),
    summary="Runs that wait (sleep, event, approval, call): what for and until when",
)
async def list_waits(
    request: HttpRequest, kind: Kind | None = None, limit: int = Query(100, ge=1, le=500)
) -> list[WaitOut]:
    return await sync_to_async(_open)(kind, limit)


@router.get(
    "/approvals",
    operation_id="list_approvals",
    auth=TokenAuth("runs:read"),
    response=answers({200: list[WaitOut]}),
    summary="Approvals waiting for an answer",
)
async def list_approvals(request: HttpRequest, limit: int = Query(100, ge=1, le=500)) -> list[WaitOut]:
    return await sync_to_async(_open)("approval", limit)


@router.post(
    "/approvals/{run_id}/{step}",
    operation_id="answer_approval",
    auth=TokenAuth("runs:write"),
    response=answers({200: Answered}, not_found=True, conflict=True),
    summary="Approve or reject a waiting approval (the first answer wins)",
)
async def answer_approval(
    request: HttpRequest,
    body: AnswerIn,
    run_id: int = Path(..., ge=1, le=MAX_ID),
    step: str = Path(..., min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"),
) -> Answered:
    who = principal(request)
    try:
        await audited(
            who, "approvals.answer", f"run:{run_id}:{step}",
            lambda: approvals.answer(run_id, step, body.approved, by=who.actor, comment=body.comment),
            lambda _w: {"approved": body.approved},
        )  # fmt: skip
    except ApprovalError as exc:
        missing = "no approval of that name" in str(exc) or "no such approval" in str(exc)
        code = "not_found" if missing else "conflict"
        raise ApiError(str(exc), status=404 if missing else 409, code=code) from exc
    return Answered(run_id=run_id, step=step, approved=body.approved, by=who.actor)
