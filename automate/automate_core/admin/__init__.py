"""The admin as an operator's console, one module per concept (registered on import).

Its index links to the dashboard (``automate_core.admin.urls``) unless the project set its own
index template.
"""

from __future__ import annotations

from django.contrib import admin as _admin

from automate_core.admin import events, outbox, runs, sources, tokens, workflows

if _admin.site.index_template is None:
    _admin.site.index_template = "automate_core/admin/index.html"

__all__ = ["events", "outbox", "runs", "sources", "tokens", "workflows"]
