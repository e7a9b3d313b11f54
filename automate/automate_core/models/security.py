"""What the web process remembers about refusals: webhook rejections per source, failed admin logins.

Both are written by every web process and read by any: an operator sees in the admin which
sender keeps failing (a wrong secret, a clock off by minutes), and a password guesser is stopped
whichever process its requests reach.
"""

from __future__ import annotations

from django.db import models


class WebhookRejection(models.Model):
    """Refused deliveries of one source for one reason (``signature_mismatch``, ...), counted.

    Written in batches by ``automate_core.ingest.rejections`` (one upsert per source and reason
    every second at most); the latest refusal's status, message and time are kept with the count.
    """

    source = models.CharField(max_length=100)
    reason = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    count = models.BigIntegerField(default=0)
    last_detail = models.CharField(max_length=500, blank=True, default="")
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        db_table = "automate_webhook_rejection"
        constraints = [
            models.UniqueConstraint(fields=["source", "reason"], name="automate_rejection_source_reason")
        ]
        ordering = ["source", "-last_at"]

    def __str__(self) -> str:
        return f"{self.source}: {self.reason} x{self.count}"


class LoginFailure(models.Model):
    """One failed admin login, by username and client address (``automate_core.admin.login``)."""

    username = models.CharField(max_length=150)
    address = models.CharField(max_length=64)
    at = models.DateTimeField()

    class Meta:
        db_table = "automate_login_failure"
        indexes = [models.Index(fields=["username", "address", "at"], name="automate_login_fail_idx")]

    def __str__(self) -> str:
        return f"{self.username} from {self.address} at {self.at:%Y-%m-%d %H:%M:%S}"
