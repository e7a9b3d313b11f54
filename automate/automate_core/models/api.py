"""API tokens and the audit log of writes made through the HTTP API (``automate_core.api``).

A token is shown once, when it is created; only its SHA-256 is stored (the token is 256 random
bits, so a plain hash is as strong as a slow one and can be looked up through a unique index).
``prefix`` (the first characters) lets people tell tokens apart in lists without revealing them.
``rate_tat`` is the rate limiter's state (the "theoretical arrival time" of GCRA), kept in the
row so that every web process shares it.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

SCOPES = (
    "events:write",
    "runs:read",
    "runs:write",
    "workflows:read",
    "workflows:write",
    "secrets:write",
    "admin",
)


class ApiToken(models.Model):
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The token's first characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token (hex).")
    scopes = models.JSONField(default=list, help_text=f"Any of: {', '.join(SCOPES)}.")
    sources = models.JSONField(
        default=list, blank=True, help_text="Sources this token may send events for (empty: any)."
    )
    rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute (empty: AUTOMATE_API_RATE_LIMIT; 0: none)."
    )
    rate_tat = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "automate_api_token"
        ordering = ["-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def __repr__(self) -> str:  # never the hash: it identifies the token
        return f"<ApiToken #{self.pk} {self.name!r}>"


class AuditEntry(models.Model):
    """One write made through the API (or the token commands): who, what, on what, when."""

    actor = models.CharField(max_length=200, help_text="token:NAME#ID, or the CLI user.")
    token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit", db_constraint=False
    )
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=300, blank=True)
    status = models.PositiveSmallIntegerField(default=200, help_text="The HTTP status answered.")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "automate_audit_entry"
        ordering = ["-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [models.Index(fields=["token", "id"], name="automate_audit_token")]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target}"
