"""Webhook sources in the admin; unverified sources are flagged."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from automate_core.models import WebhookSource


@admin.register(WebhookSource)
class WebhookSourceAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "scheme", "verification", "enabled"]
    list_filter = ["scheme", "enabled"]
    search_fields = ["slug", "name"]

    @admin.display(description="Verification")
    def verification(self, obj: WebhookSource) -> str:
        if obj.verified:
            return "verified"
        return format_html("<strong style='color:#b00'>{}</strong>", "UNVERIFIED")
