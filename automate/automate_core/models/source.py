"""Webhook sources: where events come from and how their senders are verified."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

SLUG_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,99}$",
    "Use lowercase letters, digits, '-' and '_' (it becomes part of the URL /hooks/<slug>/).",
)


class SignatureScheme(models.TextChoices):
    HMAC_SHA256 = "hmac_sha256", "HMAC-SHA256 of the body (X-Automate-Signature: sha256=<hex>)"
    NONE = "none", "None (unverified: anyone who knows the URL can post)"


class WebhookSource(models.Model):
    """A sender of webhooks, reachable at ``POST /hooks/<slug>/``.

    ``secret_ref`` names the signing secret in the secrets backends (``env:DEMO_WEBHOOK`` or just
    ``DEMO_WEBHOOK``); the secret itself is never stored here.
    """

    slug = models.CharField(max_length=100, unique=True, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=200, blank=True)
    scheme = models.CharField(
        max_length=32, choices=SignatureScheme.choices, default=SignatureScheme.HMAC_SHA256
    )
    secret_ref = models.CharField(
        max_length=255,
        blank=True,
        help_text="Reference to the signing secret in the secrets backends, e.g. env:GITHUB_HOOK.",
    )
    config = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "automate_webhook_source"
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def verified(self) -> bool:
        return self.scheme != SignatureScheme.NONE
