"""Webhook sources in the admin: unverified sources are flagged; tokens are issued, never shown again;
refused deliveries are counted per reason (``ingest/rejections.py``), so a sender with the wrong
secret, a clock off by minutes or a body too large shows on its source's page and in the list."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from automate_core.models import SignatureScheme, WebhookRejection, WebhookSource


@admin.register(WebhookSource)
class WebhookSourceAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "scheme", "verification", "rejected", "enabled"]
    list_filter = ["scheme", "enabled"]
    search_fields = ["slug", "name"]
    readonly_fields = ["verification", "tokens", "rejections"]
    fields = [
        "slug", "name", "scheme", "verification", "secret_ref", "tokens", "config", "enabled", "rejections",
    ]  # fmt: skip
    actions = ["issue_token", "revoke_tokens", "reset_rejections"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookSource]:
        total = (
            WebhookRejection.objects.filter(source=OuterRef("slug"))
            .values("source")
            .annotate(n=Sum("count"))
            .values("n")
        )
        sources: QuerySet[WebhookSource] = super().get_queryset(request)
        return sources.annotate(rejected_total=Coalesce(Subquery(total, output_field=IntegerField()), 0))

    @admin.display(description="Refused", ordering="rejected_total")
    def rejected(self, obj: WebhookSource) -> str:
        count = int(getattr(obj, "rejected_total", 0) or 0)
        if not count:
            return "0"
        return format_html("<strong style='color:#b00'>{}</strong>", count)

    @admin.display(description="Refused deliveries")
    def rejections(self, obj: WebhookSource) -> str:
        rows = list(WebhookRejection.objects.filter(source=obj.slug).order_by("-last_at"))
        if not rows:
            return "None refused."
        now = timezone.now()
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ago</td><td>{}</td></tr>",
            ((r.reason, r.status, r.count, timesince(r.last_at, now), r.last_detail) for r in rows),
        )
        return format_html(
            "<table><thead><tr><th>reason</th><th>status</th><th>count</th><th>last</th>"
            "<th>last message</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

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

    @admin.action(description="Reset the counts of refused deliveries")
    def reset_rejections(self, request: HttpRequest, queryset: QuerySet[WebhookSource]) -> None:
        slugs = list(queryset.values_list("slug", flat=True))
        count, _ = WebhookRejection.objects.filter(source__in=slugs).delete()
        self.message_user(request, f"Reset {count} count(s) of refused deliveries.", messages.SUCCESS)

    @admin.action(description="Revoke all tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[WebhookSource]) -> None:
        count = queryset.update(token_hash="")
        self.message_user(request, f"Revoked the tokens of {count} source(s).", messages.SUCCESS)
