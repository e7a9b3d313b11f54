"""The admin as an operator's console, one module per concept (registered on import).

Its index links to the dashboard (``automate_core.admin.urls``) unless the project set its own
index template. Its login form is throttled (``login.py``) unless the project set its own form.
"""

from __future__ import annotations

from django.contrib import admin as _admin
from django.contrib.admin.forms import AdminAuthenticationForm as _DefaultLoginForm

from automate_core.admin import events, outbox, runs, sources, workflows
from automate_core.admin.login import ThrottledAuthenticationForm

if _admin.site.index_template is None:
    _admin.site.index_template = "automate_core/admin/index.html"
if _admin.site.login_form in (None, _DefaultLoginForm):
    _admin.site.login_form = ThrottledAuthenticationForm

__all__ = ["events", "outbox", "runs", "sources", "workflows"]
