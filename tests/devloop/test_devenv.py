"""The development environment: the project's .env (the real environment wins), read again on a
change with bad values refused by name, and the development defaults, which production never gets."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from automate_core.cli import devenv
from automate_core.conf import settings

NAMES = [
    "AUTOMATE_HTTP_ALLOWED_HOSTS", "AUTOMATE_SECRET_FROM_FILE", "AUTOMATE_WORKER_CONCURRENCY", "GIVEN",
    "AUTOMATE_SECRETS_BACKENDS", "AUTOMATE_SECRETS_ENCRYPTION_KEYS", "AUTOMATE_SECRETS_CACHE_TTL",
    "AUTOMATE_HOME", "DEBUG", "DATABASE_URL", "AUTOMATE_DOTENV",
]  # fmt: skip


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Any) -> Path:
    """A project folder as cwd, the variables above unset (and restored after), devenv's state fresh."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(devenv, "_given", set())
    monkeypatch.setattr(devenv, "_from_file", {})
    monkeypatch.setattr(devenv, "_path", None)
    monkeypatch.chdir(tmp_path)
    settings.AUTOMATE_HTTP_ALLOWED_HOSTS = ["10.9.9.9"]  # restored by the fixture after the test
    return tmp_path


def test_dotenv_is_read_and_the_real_environment_wins(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean / ".env").write_text("GIVEN=from-file\nAUTOMATE_SECRET_FROM_FILE=s3cret\n")
    monkeypatch.setenv("GIVEN", "from-shell")
    (clean / "sub").mkdir()
    monkeypatch.chdir(clean / "sub")  # found from a sub-folder too
    assert devenv.load_dotenv() == clean / ".env"
    assert os.environ["GIVEN"] == "from-shell" and os.environ["AUTOMATE_SECRET_FROM_FILE"] == "s3cret"


def test_no_dotenv_when_told(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean / ".env").write_text("AUTOMATE_SECRET_FROM_FILE=s3cret\n")
    monkeypatch.setenv("AUTOMATE_DOTENV", "0")
    assert devenv.load_dotenv() is None and "AUTOMATE_SECRET_FROM_FILE" not in os.environ


def test_a_changed_dotenv_applies_to_the_running_settings(clean: Path) -> None:
    env_file = clean / ".env"
    env_file.write_text("AUTOMATE_HTTP_ALLOWED_HOSTS=127.0.0.1\n")
    devenv.load_dotenv()
    assert devenv.reload_dotenv() == []  # nothing changed
    env_file.write_text("AUTOMATE_HTTP_ALLOWED_HOSTS=127.0.0.1,api.internal\nAUTOMATE_WORKER_CONCURRENCY=7\n")
    assert devenv.reload_dotenv() == ["AUTOMATE_HTTP_ALLOWED_HOSTS", "AUTOMATE_WORKER_CONCURRENCY"]
    assert django_settings.AUTOMATE_HTTP_ALLOWED_HOSTS == ["127.0.0.1", "api.internal"]
    assert settings.WORKER_CONCURRENCY == 7  # conf's cache was cleared
    env_file.write_text("AUTOMATE_HTTP_ALLOWED_HOSTS=127.0.0.1,api.internal\n")
    assert devenv.reload_dotenv() == ["AUTOMATE_WORKER_CONCURRENCY"]
    assert (
        "AUTOMATE_WORKER_CONCURRENCY" not in os.environ and settings.WORKER_CONCURRENCY == 128
    )  # the default


def test_a_bad_value_in_a_changed_dotenv_is_refused_by_name_and_nothing_changes(clean: Path) -> None:
    env_file = clean / ".env"
    env_file.write_text("AUTOMATE_WORKER_CONCURRENCY=7\n")
    devenv.load_dotenv()
    devenv.reload_dotenv()
    env_file.write_text("AUTOMATE_WORKER_CONCURRENCY=lots\n")
    with pytest.raises(ImproperlyConfigured, match="AUTOMATE_WORKER_CONCURRENCY='lots'"):
        devenv.reload_dotenv()
    assert os.environ["AUTOMATE_WORKER_CONCURRENCY"] == "7"


def test_development_gets_the_db_backend_with_a_kept_key_and_local_hosts(clean: Path) -> None:
    (clean / ".automate").mkdir()
    devenv.development_defaults(may_create_home=False)  # no DATABASE_URL: the embedded database
    key = clean / ".automate" / "secrets-key"
    assert os.environ["AUTOMATE_SECRETS_ENCRYPTION_KEYS"] == key.read_text().strip()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert os.environ["AUTOMATE_SECRETS_BACKENDS"] == devenv.DEV_SECRETS_BACKENDS
    assert os.environ["AUTOMATE_HTTP_ALLOWED_HOSTS"] == "localhost:*,127.0.0.0/8:*,[::1]:*"


def test_production_gets_none_of_it(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.internal/app")
    devenv.development_defaults(may_create_home=True)
    for name in (
        "AUTOMATE_SECRETS_ENCRYPTION_KEYS",
        "AUTOMATE_SECRETS_BACKENDS",
        "AUTOMATE_HTTP_ALLOWED_HOSTS",
    ):
        assert name not in os.environ
    assert list(clean.iterdir()) == []
