"""URLs of the deployable project: the admin and the webhook endpoints."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/automate/", include("automate_core.admin.urls")),  # the console's dashboard
    path("admin/", admin.site.urls),
    path("", include("automate_core.ingest.urls")),
]
