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


@register("automate")
def plugins_named_in_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """automate.E002: a setting names a plugin that is not installed or failed to load.
    automate.E003: the db secrets backend is used without encryption keys."""
    from automate_core.conf import settings
    from automate_core.exceptions import PluginError

    messages: list[CheckMessage] = []
    named = [("AUTOMATE_SECRETS_BACKENDS", registry.secrets_backends(), code)
             for code in settings.SECRETS_BACKENDS or []]  # fmt: skip
    named += [
        ("AUTOMATE_LLM_PROVIDERS", registry.llm_providers(), code) for code in settings.LLM_PROVIDERS or {}
    ]
    for setting, reg, code in named:
        try:
            reg.get_class(code)
        except PluginError as exc:
            messages.append(
                Error(f"{setting} names {code!r}: {exc}", id="automate.E002", obj=f"{reg.group}:{code}")
            )
    if "db" in (settings.SECRETS_BACKENDS or []) and not settings.SECRETS_ENCRYPTION_KEYS:
        messages.append(
            Error(
                "The db secrets backend is in AUTOMATE_SECRETS_BACKENDS but AUTOMATE_SECRETS_ENCRYPTION_KEYS "
                "is empty.",
                hint="Generate a key with `automate secrets genkey` and list it in the setting.",
                id="automate.E003",
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
