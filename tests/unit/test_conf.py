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
