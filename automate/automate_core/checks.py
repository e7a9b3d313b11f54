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
    """automate.E002: a setting names a plugin that is not installed or failed to load (or a
    secrets backend entry whose OPTIONS its class refuses).
    automate.E003: the db secrets backend is used without encryption keys."""
    from automate_core.conf import settings
    from automate_core.exceptions import ConfigurationError, PluginError
    from automate_governance.secrets import config

    messages: list[CheckMessage] = []
    try:
        entries = config.entries()
    except ConfigurationError as exc:
        return [Error(str(exc), id="automate.E002", obj="AUTOMATE_SECRETS_BACKENDS")]
    named = [("AUTOMATE_SECRETS_BACKENDS", registry.secrets_backends(), e.backend) for e in entries]
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
    for entry in entries:
        if entry.options and not messages:
            try:
                config.get_backend(entry.name)
            except PluginError as exc:
                messages.append(
                    Error(str(exc), id="automate.E002", obj=f"AUTOMATE_SECRETS_BACKENDS:{entry.name}")
                )
    if "db" in config.backend_codes() and not settings.SECRETS_ENCRYPTION_KEYS:
        messages.append(
            Error(
                "The db secrets backend is in AUTOMATE_SECRETS_BACKENDS but AUTOMATE_SECRETS_ENCRYPTION_KEYS "
                "is empty.",
                hint="Generate a key with `automate secrets genkey` and list it in the setting.",
                id="automate.E003",
            )
        )
    return messages


@register("automate")
def settings_have_their_types(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """automate.E010: an ``AUTOMATE_<NAME>`` setting is not of its declared type (automate_core.conf).
    automate.E011: ``AUTOMATE_METRICS_ALLOWED_IPS`` holds something that is no address or network.
    automate.E012: ``AUTOMATE_SECRETS_ENCRYPTION_KEYS`` holds a key that is not 32 base64 bytes.
    automate.W010: ``AUTOMATE_SECRETS_BACKENDS`` uses the deprecated list form."""
    import ipaddress

    from automate_core.conf import setting_problems, settings
    from automate_core.exceptions import ConfigurationError

    messages: list[CheckMessage] = [
        Error(problem, id="automate.E010", obj=name) for name, problem in setting_problems()
    ]
    bad = {name for name, _ in setting_problems()}
    if "AUTOMATE_METRICS_ALLOWED_IPS" not in bad:
        for entry in settings.METRICS_ALLOWED_IPS or []:
            try:
                ipaddress.ip_network(str(entry).strip(), strict=False)
            except ValueError:
                messages.append(
                    Error(
                        f"AUTOMATE_METRICS_ALLOWED_IPS: {entry!r} is not an IP address or network.",
                        hint="List addresses or networks: AUTOMATE_METRICS_ALLOWED_IPS=127.0.0.1,10.0.0.0/8.",
                        id="automate.E011",
                    )
                )
    if "AUTOMATE_SECRETS_ENCRYPTION_KEYS" not in bad and settings.SECRETS_ENCRYPTION_KEYS:
        from automate_governance.secrets import crypto

        try:
            crypto.keys()
        except ConfigurationError as exc:
            messages.append(
                Error(str(exc), hint="Make a key with `automate secrets genkey`.", id="automate.E012")
            )
    if "AUTOMATE_SECRETS_BACKENDS" not in bad:
        from automate_governance.secrets import config

        if config.is_deprecated_form():
            codes = list(settings.SECRETS_BACKENDS)
            mapping = ", ".join(f'"{c}": {{"BACKEND": "{c}"}}' for c in codes)
            messages.append(
                Warning(
                    f"AUTOMATE_SECRETS_BACKENDS is a list of codes ({', '.join(codes)}): this form is "
                    "deprecated (it cannot hold a backend's OPTIONS) and still works.",
                    hint=f"Write it as {{{mapping}}}.",
                    id="automate.W010",
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
