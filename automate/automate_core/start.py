"""``/``: where the first URL that ``automate up`` prints lands.

In development (``DEBUG``) a small start page: the console, the admin, the health and metrics
endpoints, and a ``curl`` command that sends a correctly signed webhook to the demo source (when
``automate up`` loaded it). Otherwise a redirect to the console, which asks for a login: nothing
about the installation is shown to a visitor who is not signed in.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

DEMO_BODY = '{"type": "demo.hello", "name": "world"}'
DEMO_SECRET_VARIABLE = "AUTOMATE_SECRET_DEMO_WEBHOOK"


def demo_curl(base: str, secret: str) -> str:
    """A ``curl`` command that posts a correctly signed demo webhook to ``base``."""
    from automate_core.ingest.signatures import sign_hmac_sha256

    signature = sign_hmac_sha256(secret.encode(), DEMO_BODY.encode())
    return (
        f"curl -i -X POST {base}/hooks/demo/ -H 'Content-Type: application/json' \\\n"
        f"  -H 'X-Automate-Signature: {signature}' \\\n"
        f"  -d '{DEMO_BODY}'"
    )


def start_page(request: HttpRequest) -> HttpResponse:
    console = _console()
    if not settings.DEBUG:
        return HttpResponseRedirect(console)
    base = request.build_absolute_uri("/").rstrip("/")
    secret = os.environ.get(DEMO_SECRET_VARIABLE, "")
    context = {
        "console": console,
        "admin": reverse("admin:index"),
        "curl": demo_curl(base, secret) if secret else "",
        "base": base,
    }
    return render(request, "automate_core/start/index.html", context)


def _console() -> str:
    """The console's dashboard, or the admin's index in a project that does not include it."""
    from django.urls import NoReverseMatch

    try:
        return reverse("automate_dashboard")
    except NoReverseMatch:
        return reverse("admin:index")
