"""Admin login throttling: after ``AUTOMATE_LOGIN_MAX_FAILURES`` failed attempts for one username
from one address within ``AUTOMATE_LOGIN_FAILURE_WINDOW`` seconds, further attempts are refused,
right password or not, until the oldest failure in the window has aged out.

The failures are rows of ``automate_login_failure`` (``models.security.LoginFailure``), so the
limit holds across every web process and survives restarts; a successful login clears that
username's failures from that address. The client address is the one uvicorn reports (behind a
trusted proxy, the forwarded client: ``--forwarded-allow-ips``).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django.utils import timezone

from automate_core.conf import settings
from automate_core.models import LoginFailure
from automate_core.observability import metrics


def client_address(request: HttpRequest | None) -> str:
    return str((request.META.get("REMOTE_ADDR") if request is not None else "") or "unknown")[:64]


class ThrottledAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, refusing a username+address that failed too often recently."""

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")[:150]
        address = client_address(self.request)
        limit = int(settings.LOGIN_MAX_FAILURES)
        window = timedelta(seconds=float(settings.LOGIN_FAILURE_WINDOW))
        now = timezone.now()
        recent = LoginFailure.objects.filter(username=username, address=address, at__gt=now - window)
        if limit > 0 and username:
            times = list(recent.order_by("-at").values_list("at", flat=True)[:limit])
            if len(times) >= limit:
                metrics.login_refusals.inc()
                wait = math.ceil((times[-1] + window - now).total_seconds() / 60)
                raise forms.ValidationError(
                    f"Too many failed logins for this username from your address ({limit} within "
                    f"{window.total_seconds() / 60:g} minutes). Try again in {max(wait, 1)} minute(s); "
                    "the limit is AUTOMATE_LOGIN_MAX_FAILURES per AUTOMATE_LOGIN_FAILURE_WINDOW.",
                    code="throttled",
                )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                LoginFailure.objects.create(username=username, address=address, at=now)
                LoginFailure.objects.filter(at__lt=now - window).delete()  # keep the table small
            raise
        LoginFailure.objects.filter(username=username, address=address).delete()
        return cleaned
