"""Admin views of governance data: names of stored secrets (never values), token ledgers, LLM calls.

Stored secrets are written with ``automate secrets set`` only: the admin shows no value and no
ciphertext, and offers no form that could display one.
"""

from __future__ import annotations

from django.contrib import admin

from automate_core.admin.common import ReadOnlyAdmin
from automate_governance.models import LLMCall, StoredSecret, TokenLedger


@admin.register(StoredSecret)
class StoredSecretAdmin(ReadOnlyAdmin):
    list_display = ("name", "key_id", "updated_at")
    search_fields = ("name",)
    fields = ("name", "key_id", "created_at", "updated_at")
    readonly_fields = fields


@admin.register(TokenLedger)
class TokenLedgerAdmin(ReadOnlyAdmin):
    list_display = ("scope", "key", "period", "used_tokens", "reserved_tokens", "updated_at")
    list_filter = ("scope", "period")
    search_fields = ("key",)


@admin.register(LLMCall)
class LLMCallAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "provider", "model", "workflow", "run_id", "reserved_tokens",
                    "input_tokens", "output_tokens", "estimated", "status")  # fmt: skip
    list_filter = ("status", "provider", "estimated")
    search_fields = ("workflow", "model")
