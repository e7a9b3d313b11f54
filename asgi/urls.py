"""URLs of the deployable project: a start page, the admin, the HTTP API and the webhook endpoints."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from automate_core.admin.approvals import approval_link_view
from automate_core.start import start_page

urlpatterns = [
    path("", start_page, name="automate_start"),  # DEBUG: links and a curl command; else the console
    path("approvals/<str:token>/", approval_link_view, name="automate_approval_link"),
    path("admin/automate/", include("automate_core.admin.urls")),  # the console's dashboard
    path("admin/", admin.site.urls),
    path("api/v1/", include("automate_core.api.urls")),  # the HTTP API (docs/api.md)
    path("", include("automate_core.ingest.urls")),
]
