"""Governance tables: encrypted secrets (the ``db`` backend) and the LLM token ledgers.

Secret values are stored only as AES-GCM ciphertext (see :mod:`automate_governance.secrets.crypto`);
no field, ``__str__`` or admin view shows a value. Token ledgers hold, per budget scope and period,
the tokens used and the tokens reserved by calls in flight (see :mod:`automate_governance.budgets`).
"""

from __future__ import annotations

from django.db import models


class StoredSecret(models.Model):
    """One secret of the ``db`` backend: its name and its value encrypted at rest."""

    name = models.CharField(max_length=200, unique=True)
    #: nonce (12 bytes) + AES-GCM ciphertext and tag; the name is the associated data.
    ciphertext = models.BinaryField()
    #: Which key encrypted it (a fingerprint, not the key): rotation re-encrypts the others.
    key_id = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "automate_governance_secret"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<StoredSecret {self.name!r} key={self.key_id}>"


class BudgetScope(models.TextChoices):
    GLOBAL = "global"
    WORKFLOW = "workflow"
    RUN = "run"


class TokenLedger(models.Model):
    """Tokens used and reserved in one budget scope (global, a workflow, a run) and period."""

    scope = models.CharField(max_length=16, choices=BudgetScope.choices)
    key = models.CharField(max_length=200, blank=True, default="")
    period = models.CharField(max_length=16, blank=True, default="")
    used_tokens = models.BigIntegerField(default=0)
    reserved_tokens = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "automate_governance_token_ledger"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key", "period"], name="automate_ledger_unique"),
            models.CheckConstraint(
                condition=models.Q(used_tokens__gte=0, reserved_tokens__gte=0),
                name="automate_ledger_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key or '*'} {self.period}: {self.used_tokens} used"


class LLMCall(models.Model):
    """One LLM call: what was reserved before it, and what the provider reported after."""

    class Status(models.TextChoices):
        RESERVED = "reserved"
        SETTLED = "settled"
        RELEASED = "released"

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=200, blank=True, default="")
    workflow = models.CharField(max_length=200, blank=True, default="")
    run_id = models.BigIntegerField(null=True, blank=True)
    reserved_tokens = models.IntegerField()
    input_tokens = models.IntegerField(null=True, blank=True)
    output_tokens = models.IntegerField(null=True, blank=True)
    #: True when the provider reported no usage and the reservation was charged instead.
    estimated = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RESERVED)
    #: The ledger rows charged by this call (ids), settled together.
    ledger_ids = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "automate_governance_llm_call"
        indexes = [models.Index(fields=["status", "created_at"], name="automate_llmcall_open")]

    def __str__(self) -> str:
        return f"{self.provider} {self.model} {self.status}"
