"""URLs of the deployable project: the admin and the webhook endpoints."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from automate_core.admin.approvals import approval_link_view

urlpatterns = [
    path("approvals/<str:token>/", approval_link_view, name="automate_approval_link"),
    path("admin/automate/", include("automate_core.admin.urls")),  # the console's dashboard
    path("admin/", admin.site.urls),
    path("", include("automate_core.ingest.urls")),
]
