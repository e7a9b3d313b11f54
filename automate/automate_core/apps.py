"""Django app configuration for the core."""

from __future__ import annotations

from django.apps import AppConfig


class AutomateCoreConfig(AppConfig):
    name = "automate_core"
    label = "automate_core"
    verbose_name = "Automate"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from automate_core import checks  # noqa: F401  (registers system checks)
