"""The ``automate`` command's environment: the project's ``.env`` and the development defaults.

``.env``: every ``automate`` command reads the nearest ``.env`` file (the current directory or a
parent; ``AUTOMATE_DOTENV=/path/to/file`` names another, ``AUTOMATE_DOTENV=0`` reads none). Its
variables never override the real environment.

Development is ``DEBUG`` on (``automate up`` turns it on) or the embedded database (no
``DATABASE_URL``). There, unless the environment says otherwise:

* the ``db`` secrets backend is on after ``env`` (``AUTOMATE_SECRETS_BACKENDS``) with a key generated once
  and kept in the project's home (``.automate/secrets-key``), so ``automate secrets set NAME`` works
  at once, and secrets are cached for one second only;
* the http connectors may call this machine, on any port
  (``AUTOMATE_HTTP_ALLOWED_HOSTS=localhost:*,127.0.0.0/8:*,[::1]:*``).

Under ``automate up`` the ``.env`` file is watched: a changed value (a new ``AUTOMATE_SECRET_*``,
``AUTOMATE_HTTP_ALLOWED_HOSTS``, any ``AUTOMATE_*`` setting) takes effect without a restart.
Production (``DATABASE_URL`` set, ``DEBUG`` off) gets none of this: its defaults stay strict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from automate_core import embedded

logger = logging.getLogger("automate_core.cli")

DEV_ALLOWED_HOSTS = "localhost:*,127.0.0.0/8:*,[::1]:*"
DEV_SECRETS_BACKENDS = '{"env": {"BACKEND": "env"}, "db": {"BACKEND": "db"}}'
TRUE = {"1", "true", "yes", "on"}

#: the variables the process had before any .env was read: a reload never touches them
_given: set[str] = set()
#: the variables the .env file set, with their values
_from_file: dict[str, str] = {}
_path: Path | None = None


def dotenv_path() -> Path | None:
    from dotenv import find_dotenv

    named = os.environ.get("AUTOMATE_DOTENV", "")
    if named.strip().lower() in {"0", "false", "no", "off"}:
        return None
    if named:
        return Path(named).expanduser()
    found = find_dotenv(usecwd=True)
    return Path(found) if found else None


def load_dotenv() -> Path | None:
    """Read the project's ``.env`` into ``os.environ`` (the real environment wins)."""
    global _path
    _given.update(os.environ)
    _path = dotenv_path()
    if _path is None or not _path.is_file():
        return None
    _apply(_read(_path))
    return _path


def _read(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _apply(values: dict[str, str]) -> list[str]:
    """Set the file's variables that the real environment does not; returns the names changed."""
    changed = []
    for name in set(_from_file) - set(values):
        if name not in _given:
            os.environ.pop(name, None)
            changed.append(name)
        del _from_file[name]
    for name, value in values.items():
        if name in _given:
            continue
        if _from_file.get(name) != value or os.environ.get(name) != value:
            os.environ[name] = value
            _from_file[name] = value
            changed.append(name)
    return sorted(changed)


def is_development() -> bool:
    return os.environ.get("DEBUG", "").strip().lower() in TRUE or not os.environ.get("DATABASE_URL")


def development_defaults(*, may_create_home: bool) -> None:
    """Set the development defaults (module docstring) where the environment has no value.

    A command run beside ``automate up`` (``automate secrets set`` in another terminal) finds the
    development key that ``up`` keeps in the project's home, even with a ``DATABASE_URL``."""
    found = embedded.existing_home()
    kept = found is not None and (found / "secrets-key").is_file()
    if not is_development() and not kept:
        return
    if is_development():
        os.environ.setdefault("AUTOMATE_HTTP_ALLOWED_HOSTS", DEV_ALLOWED_HOSTS)
    if os.environ.get("AUTOMATE_SECRETS_ENCRYPTION_KEYS"):
        os.environ.setdefault("AUTOMATE_SECRETS_BACKENDS", DEV_SECRETS_BACKENDS)
        return
    if found is None and not may_create_home:
        return  # a read-only command outside any project: nothing to keep a key in
    path = embedded.home() / "secrets-key"
    if not path.exists():
        from automate_governance.secrets import crypto

        path.write_text(crypto.generate_key())
        path.chmod(0o600)
    os.environ["AUTOMATE_SECRETS_ENCRYPTION_KEYS"] = path.read_text().strip()
    os.environ.setdefault("AUTOMATE_SECRETS_BACKENDS", DEV_SECRETS_BACKENDS)
    os.environ.setdefault("AUTOMATE_SECRETS_CACHE_TTL", "1")


def reload_dotenv() -> list[str]:
    """Read the ``.env`` file again and apply what changed to the running process's settings.

    Returns the names of the variables that changed (never their values). A value that is not
    valid for its setting is refused with its name, and the settings stay as they were."""
    if _path is None:
        return []
    values = _read(_path) if _path.is_file() else {}
    before = {name: os.environ.get(name) for name in set(values) | set(_from_file)}
    changed = _apply(values)
    if not changed:
        return []
    from django.conf import settings as django_settings
    from django.core.exceptions import ImproperlyConfigured

    from automate_core.conf import _clear_cache, settings_from_environ

    try:
        updates = settings_from_environ()
    except ImproperlyConfigured:
        for name, value in before.items():  # back to what worked
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        raise
    from automate_core.conf import Defaults

    for name in changed:
        setting = name.removeprefix("AUTOMATE_")
        if name.startswith("AUTOMATE_") and setting in Defaults.__annotations__ and name not in updates:
            updates[name] = getattr(Defaults, setting)  # removed from .env: back to the default
    for name, value in updates.items():
        setattr(django_settings, name, value)
    _clear_cache()
    from automate_governance.secrets.resolver import get_resolver

    get_resolver().clear()
    return changed


async def watch_dotenv(stopping: asyncio.Event, interval: float = 1.0) -> None:
    """Reload the ``.env`` file whenever it changes, until ``stopping`` is set."""
    if _path is None:
        return
    seen = _stamp(_path)
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
        stamp = _stamp(_path)
        if stamp == seen:
            continue
        seen = stamp
        try:
            changed = await asyncio.to_thread(reload_dotenv)
        except Exception as exc:
            logger.error("%s not applied: %s", _path, exc)
            continue
        if changed:
            logger.warning("%s changed: %s now in effect", _path, ", ".join(changed))


def _stamp(path: Path) -> Any:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)
