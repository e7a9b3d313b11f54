"""DATABASE_URL parsing and settings defaults."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from automate_core.conf import database_from_url


def test_full_url() -> None:
    db = database_from_url("postgresql://u:p%40ss@db.example:6543/app?sslmode=require")
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "app", "u", "p@ss", "db.example", "6543",
    )  # fmt: skip
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_socket_url() -> None:
    db = database_from_url("postgresql://postgres@/automate?host=/tmp/pg")
    assert db["HOST"] == "/tmp/pg" and db["NAME"] == "automate"


def test_other_schemes_are_refused_clearly() -> None:
    with pytest.raises(ImproperlyConfigured, match="postgresql://"):
        database_from_url("sqlite:///db.sqlite3")


def test_platform_settings_from_the_environment() -> None:
    from automate_core.conf import settings_from_environ

    found = settings_from_environ(
        {
            "AUTOMATE_WORKER_CONCURRENCY": "64",
            "AUTOMATE_LEASE_SECONDS": "7.5",
            "AUTOMATE_INGEST_GROUP_COMMIT": "false",
            "AUTOMATE_SECRETS_BACKENDS": "vault,env",
            "AUTOMATE_HTTP_ALLOWED_HOSTS": '["10.0.0.0/8", "api.internal"]',
            "AUTOMATE_NOT_A_SETTING": "ignored",
            "AUTOMATE_POLL_INTERVAL": "",
        }
    )
    assert found == {
        "AUTOMATE_WORKER_CONCURRENCY": 64,
        "AUTOMATE_LEASE_SECONDS": 7.5,
        "AUTOMATE_INGEST_GROUP_COMMIT": False,
        "AUTOMATE_SECRETS_BACKENDS": ["vault", "env"],
        "AUTOMATE_HTTP_ALLOWED_HOSTS": ["10.0.0.0/8", "api.internal"],
    }


def test_a_bad_environment_value_names_the_variable() -> None:
    from automate_core.conf import settings_from_environ

    with pytest.raises(ImproperlyConfigured, match="AUTOMATE_WORKER_CONCURRENCY='lots'"):
        settings_from_environ({"AUTOMATE_WORKER_CONCURRENCY": "lots"})
