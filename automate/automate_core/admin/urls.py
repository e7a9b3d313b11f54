"""The console's own pages beside the admin: include under the admin's prefix, before it.

path("admin/automate/", include("automate_core.admin.urls")),
path("admin/", admin.site.urls),
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from automate_core.admin.approvals import approvals_view
from automate_core.admin.dashboard import dashboard_view

urlpatterns = [
    path("dashboard/", admin.site.admin_view(dashboard_view), name="automate_dashboard"),
    path("approvals/", admin.site.admin_view(approvals_view), name="automate_approvals"),
]
