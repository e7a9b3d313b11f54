"""Webhook sources in the admin: unverified sources are flagged; tokens are issued, never shown again."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from automate_core.models import SignatureScheme, WebhookSource


@admin.register(WebhookSource)
class WebhookSourceAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "scheme", "verification", "enabled"]
    list_filter = ["scheme", "enabled"]
    search_fields = ["slug", "name"]
    readonly_fields = ["verification", "tokens"]
    fields = ["slug", "name", "scheme", "verification", "secret_ref", "tokens", "config", "enabled"]
    actions = ["issue_token", "revoke_tokens"]

    @admin.display(description="Verification")
    def verification(self, obj: WebhookSource) -> str:
        if obj.verified:
            return "verified"
        return format_html("<strong style='color:#b00'>{}</strong>", "UNVERIFIED")

    @admin.display(description="Tokens")
    def tokens(self, obj: WebhookSource) -> str:
        count = len(obj.token_hash.split())
        if obj.scheme != SignatureScheme.TOKEN:
            return "(only for the scheme 'token')"
        return f"{count} active (stored as SHA-256 hashes; use the actions to issue or revoke)"

    @admin.action(description="Issue a new token (the previous one keeps working until revoked)")
    def issue_token(self, request: HttpRequest, queryset: QuerySet[WebhookSource]) -> None:
        for source in queryset:
            if source.scheme != SignatureScheme.TOKEN:
                self.message_user(request, f"{source.slug}: not a 'token' source.", messages.WARNING)
                continue
            token = source.issue_token()
            source.save(update_fields=["token_hash", "updated_at"])
            self.message_user(
                request,
                f"{source.slug}: new token {token} (shown once; send it as 'Authorization: Bearer <token>').",
                messages.SUCCESS,
            )

    @admin.action(description="Revoke all tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[WebhookSource]) -> None:
        count = queryset.update(token_hash="")
        self.message_user(request, f"Revoked the tokens of {count} source(s).", messages.SUCCESS)
