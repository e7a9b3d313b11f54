"""System checks: misconfiguration shows at ``manage.py check`` time, not at run time."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning, register

from automate_core.plugins import registry


@register("automate")
def plugins_load(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """automate.W001: a discovered plugin fails to load."""
    messages: list[CheckMessage] = []
    for reg in registry.all_registries():
        for code, exc in sorted(reg.errors().items()):
            messages.append(
                Warning(
                    str(exc),
                    hint="Fix or uninstall the plugin; workflows that use it will fail until then.",
                    id="automate.W001",
                    obj=f"{reg.group}:{code}",
                )
            )
    return messages


@register("automate", deploy=True)
def database_engine(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """automate.E001: the default database must be PostgreSQL (SKIP LOCKED, LISTEN/NOTIFY, jsonb)."""
    from django.conf import settings

    engine = settings.DATABASES.get("default", {}).get("ENGINE", "")
    if engine != "django.db.backends.postgresql":
        return [
            Error(
                f"Django Automate needs PostgreSQL; the default database uses {engine!r}.",
                id="automate.E001",
            )
        ]
    return []
