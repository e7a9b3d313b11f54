"""Approvals: the console's queue of pending approvals, and the public one-time link page.

The queue (staff only) lists every open approval, oldest first, with approve and reject
buttons; the answer is recorded with the staff user's name. The link page
(``/approvals/<token>/``) needs no login: the token in the URL is the credential. It shows the
question, takes one answer, and refuses a used, expired or unknown link with a page that says
which (410 Gone, 404 Not Found). Both answer through ``execution.approvals``, so the first
answer wins wherever it comes from.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache

from automate_core.exceptions import ApprovalError
from automate_core.execution import approvals


def approvals_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            run_id, step = int(request.POST["run"]), str(request.POST["step"])
            approved = request.POST.get("answer") == "approve"
            user = getattr(request.user, "username", "") or "staff"
            approvals.answer(run_id, step, approved, by=user, comment=request.POST.get("comment", ""))
            verdict = "approved" if approved else "rejected"
            messages.success(request, f"Run #{run_id} {step}: {verdict}. The run resumes now.")
        except (KeyError, ValueError):
            messages.error(request, "The form was incomplete: choose approve or reject on a listed approval.")
        except ApprovalError as exc:
            messages.error(request, str(exc))
        return redirect("automate_approvals")
    recent = approvals.recent()
    return TemplateResponse(
        request,
        "automate_core/admin/approvals.html",
        {"title": "Approvals", "pending": approvals.pending(), "recent": recent, "has_permission": True},
    )


@never_cache
def approval_link_view(request: HttpRequest, token: str) -> HttpResponse:
    wait = approvals.lookup(token)
    context: dict[str, object] = {"wait": wait}
    if request.method == "POST":
        approved = request.POST.get("answer") == "approve"
        name = str(request.POST.get("name", "")).strip()[:100]
        try:
            wait = approvals.answer_link(
                token,
                approved,
                by=f"link{': ' + name if name else ''}",
                comment=request.POST.get("comment", ""),
            )
        except ApprovalError as exc:
            context.update(error=str(exc))
            return TemplateResponse(
                request, "automate_core/approval_link.html", context, status=404 if wait is None else 410
            )
        context.update(wait=wait, done="approved" if approved else "rejected")
        return TemplateResponse(request, "automate_core/approval_link.html", context)
    if wait is None:
        context.update(error="This approval link is not known: check that it was copied whole.")
        return TemplateResponse(request, "automate_core/approval_link.html", context, status=404)
    if wait.status != "open" or approvals.expired(wait):
        context.update(error=str(approvals.refusal(wait, "this link")))
        return TemplateResponse(request, "automate_core/approval_link.html", context, status=410)
    return TemplateResponse(request, "automate_core/approval_link.html", context)
