"""Webhook sources: where events come from and how their senders are verified."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

SLUG_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,99}$",
    "Use lowercase letters, digits, '-' and '_' (it becomes part of the URL /hooks/<slug>/).",
)


class SignatureScheme(models.TextChoices):
    """The names of ``automate_core.ingest.schemes.SCHEMES`` (a test keeps them equal)."""

    HMAC_SHA256 = "hmac_sha256", "HMAC-SHA256 of the body (X-Automate-Signature: sha256=<hex>)"
    STANDARD_WEBHOOKS = "standard_webhooks", "Standard Webhooks / Svix (webhook-id, -timestamp, -signature)"
    STRIPE = "stripe", "Stripe (Stripe-Signature)"
    GITHUB = "github", "GitHub (X-Hub-Signature-256)"
    SLACK = "slack", "Slack (X-Slack-Signature)"
    SHOPIFY = "shopify", "Shopify (X-Shopify-Hmac-Sha256)"
    HMAC = "hmac", "HMAC, configurable (config.signature)"
    TOKEN = "token", "Bearer token, stored hashed (for callers that cannot sign)"
    NONE = "none", "None (UNVERIFIED: anyone who knows the URL can post)"


class WebhookSource(models.Model):
    """A sender of webhooks, reachable at ``POST /hooks/<slug>/``.

    ``secret_ref`` names the signing secret(s) in the secrets backends (``env:STRIPE_HOOK``; several
    separated by commas while a key is rotated: any one verifies); the secrets themselves are never
    stored here. A ``token`` source stores only SHA-256 hashes of its tokens in ``token_hash``.
    ``config`` holds the per-source options documented in ``automate_core.ingest.sources``.
    """

    slug = models.CharField(max_length=100, unique=True, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=200, blank=True)
    scheme = models.CharField(
        max_length=32, choices=SignatureScheme.choices, default=SignatureScheme.HMAC_SHA256
    )
    secret_ref = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Reference(s) to the signing secret in the secrets backends, e.g. env:GITHUB_HOOK. "
        "Several, separated by commas, during a key rotation: any one verifies.",
    )
    token_hash = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="SHA-256 hashes of the source's bearer tokens (scheme 'token'); set by the admin "
        "action 'Issue a new token'. The tokens themselves are never stored.",
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

    @property
    def needs_secret_ref(self) -> bool:
        return self.scheme not in {SignatureScheme.NONE, SignatureScheme.TOKEN}

    def clean(self) -> None:
        from automate_core.ingest.schemes import SchemeConfigError
        from automate_core.ingest.sources import parse_options

        try:
            parse_options(
                self.slug,
                self.scheme,
                self.config,
                secret_refs=self.secret_ref,
                token_hash=self.token_hash,
                check_secrets=True,
            )
        except SchemeConfigError as exc:
            field = "secret_ref" if str(exc).startswith("secret ") else "config"
            raise ValidationError({field: str(exc)}) from exc
        if self.needs_secret_ref and not self.secret_ref.strip():
            raise ValidationError({"secret_ref": f"Scheme {self.scheme} needs a secret reference."})

    def issue_token(self) -> str:
        """Add a new bearer token (the previous one keeps working) and return it; shown once."""
        from automate_core.ingest.schemes.token import hash_token, new_token

        token = new_token()
        kept = self.token_hash.split()[:1]
        self.token_hash = " ".join([hash_token(token), *kept])
        return token
