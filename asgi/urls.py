"""URLs of the deployable project: the admin, the HTTP API and the webhook endpoints."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/automate/", include("automate_core.admin.urls")),  # the console's dashboard
    path("admin/", admin.site.urls),
    path("api/v1/", include("automate_core.api.urls")),  # the HTTP API (docs/api.md)
    path("", include("automate_core.ingest.urls")),
]
