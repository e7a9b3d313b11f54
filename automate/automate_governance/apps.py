from __future__ import annotations

from django.apps import AppConfig


class AutomateGovernanceConfig(AppConfig):
    name = "automate_governance"
    label = "automate_governance"
    verbose_name = "Automate governance"
    default_auto_field = "django.db.models.BigAutoField"
