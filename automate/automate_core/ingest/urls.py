"""URL patterns of the ingest stage: include them in your project's URLconf."""

from __future__ import annotations

from django.urls import path

from automate_core.ingest.views import WebhookView

app_name = "automate_ingest"
urlpatterns = [
    path("hooks/<str:source>/", WebhookView.as_view(), name="webhook"),
]
