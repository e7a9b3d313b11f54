"""Minimal Django settings for plugin authors' test runs that have none of their own."""

from __future__ import annotations

import os


def ensure_configured() -> None:
    from django.conf import settings

    if settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE"):
        return
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        DATABASES={},
        USE_TZ=True,
        SECRET_KEY="automate-testing-contracts",
    )
    import django

    django.setup()
