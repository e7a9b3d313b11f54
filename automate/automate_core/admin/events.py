"""Events in the admin: read-only, payload shown formatted."""

from __future__ import annotations

from django.contrib import admin

from automate_core.admin.common import ReadOnlyAdmin, pretty_json
from automate_core.models import Event


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "event_type", "idempotency_key", "trace_id", "received_at"]
    list_filter = ["source", "event_type"]
    search_fields = ["trace_id", "idempotency_key", "event_type"]
    fields = (
        "source",
        "event_type",
        "idempotency_key",
        "trace_id",
        "received_at",
        "payload_pretty",
        "headers_pretty",
    )
    readonly_fields = fields

    @admin.display(description="Payload")
    def payload_pretty(self, obj: Event) -> str:
        return pretty_json(obj.payload)

    @admin.display(description="Headers")
    def headers_pretty(self, obj: Event) -> str:
        return pretty_json(obj.headers)
