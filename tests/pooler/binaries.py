"""Finding the Debian binaries the tests run, installing them with scripts/install-test-services
when they are missing (the fixtures skip only when that cannot work: no root or no apt)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "scripts" / "install-test-services"
SBIN = ("/usr/sbin", "/usr/bin", "/sbin")


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (f"{d}/{name}" for d in SBIN if os.access(f"{d}/{name}", os.X_OK)), None
    )


@functools.cache
def _install() -> str:
    proc = subprocess.run([str(INSTALL)], capture_output=True, text=True, timeout=600)
    return "" if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()[-500:]


def require(name: str) -> str:
    """The path of ``name``, installing the test services first if it is missing."""
    path = _which(name)
    if path is None:
        error = _install()
        path = _which(name)
        if path is None:
            pytest.skip(f"{name} is not installed and {INSTALL.name} could not install it: {error}")
    return path


def pg_bindir() -> Path:
    """The installed PostgreSQL's binaries (initdb, pg_ctl, pg_basebackup, postgres)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)")
    return found[-1].parent


def service_user() -> str | None:
    """Daemons that refuse to run as root (PostgreSQL, PgBouncer) run as ``postgres`` then."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root, and there is no 'postgres' user to run PostgreSQL and PgBouncer as")
    return "postgres"


def give_to_service_user(path: Path) -> None:
    user = service_user()
    if user is not None:
        shutil.chown(path, user, user)
