"""The admin as an operator's console, one module per concept (registered on import).

Its index links to the dashboard (``automate_core.admin.urls``) unless the project set its own
index template, the site is branded "Django Automate" (header, page titles, index title) unless
the project named its admin site itself, and its login form is throttled (``login.py``) unless the
project set its own form.
"""

from __future__ import annotations

from django.contrib import admin as _admin
from django.contrib.admin import AdminSite as _AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm as _DefaultLoginForm

from automate_core.admin import events, outbox, runs, sources, tokens, workflows
from automate_core.admin.login import ThrottledAuthenticationForm

BRANDING = {
    "site_header": "Django Automate",  # the header of every page
    "site_title": "Django Automate",  # after the "|" of every page title
    "index_title": "Django Automate console",  # the index's heading
}

if _admin.site.index_template is None:
    _admin.site.index_template = "automate_core/admin/index.html"
for _name, _value in BRANDING.items():
    if getattr(_admin.site, _name) is getattr(_AdminSite, _name):  # Django's default, not the project's
        setattr(_admin.site, _name, _value)
if _admin.site.login_form in (None, _DefaultLoginForm):
    _admin.site.login_form = ThrottledAuthenticationForm

__all__ = ["events", "outbox", "runs", "sources", "tokens", "workflows"]
