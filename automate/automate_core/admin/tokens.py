"""API tokens and the audit log in the console.

A token is created here like with ``automate tokens create``: the token is shown once, in the
confirmation message, and only its hash is stored; no page shows it again. Tokens are revoked
(an action), never edited into another token. The audit log lists every write made through the
API, newest first, read only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from automate_core.admin.common import ReadOnlyAdmin, pretty_json
from automate_core.api.auth import hash_token, new_token
from automate_core.models import ApiToken, AuditEntry
from automate_core.models.api import SCOPES


class TokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=[(s, s) for s in SCOPES], widget=forms.CheckboxSelectMultiple)
    sources = forms.CharField(
        required=False, help_text="Comma-separated sources this token may send events for (empty: any)."
    )

    class Meta:
        model = ApiToken
        fields = ["name", "scopes", "sources", "expires_at", "rate_limit"]

    def clean_sources(self) -> list[str]:
        text = self.cleaned_data.get("sources") or ""
        if isinstance(text, list):
            return text
        return sorted({s.strip() for s in text.split(",") if s.strip()})


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = TokenForm
    list_display = ["id", "name", "prefix", "scope_list", "state", "last_used_at", "created_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "last_used_at", "revoked_at", "created_by", "created_at"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        base = ["name", "scopes", "sources", "expires_at", "rate_limit"]
        return base if obj is None else [*base, *self.readonly_fields]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)  # the list, not a token

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiToken) -> str:
        return ", ".join(obj.scopes) + (f" (sources: {', '.join(obj.sources)})" if obj.sources else "")

    @admin.display(description="State")
    def state(self, obj: ApiToken) -> str:
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        token = new_token()
        obj.prefix, obj.token_hash = token[:10], hash_token(token)
        obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)
        AuditEntry.objects.create(
            actor=f"admin:{obj.created_by}",
            token=obj,
            action="tokens.create",
            target=f"token:{obj.pk}",
            details={"name": obj.name, "scopes": obj.scopes},
        )
        self.message_user(
            request,
            f"Token for {obj.name}: {token} (shown once; send it as 'Authorization: Bearer <token>').",
            messages.SUCCESS,
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        live = list(queryset.filter(revoked_at__isnull=True))
        queryset.filter(pk__in=[t.pk for t in live]).update(revoked_at=timezone.now())
        for t in live:
            AuditEntry.objects.create(
                actor=f"admin:{request.user.get_username()}",
                token=t,
                action="tokens.revoke",
                target=f"token:{t.pk}",
            )
        self.message_user(request, f"Revoked {len(live)} token(s).", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "target"]
    fields = ["created_at", "actor", "token", "action", "target", "details_json"]
    readonly_fields = ["created_at", "actor", "token", "action", "target", "details_json"]

    @admin.display(description="Details")
    def details_json(self, obj: AuditEntry) -> str:
        return pretty_json(obj.details)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
