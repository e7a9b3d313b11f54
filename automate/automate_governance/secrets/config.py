"""``AUTOMATE_SECRETS_BACKENDS``: which secrets backends are searched, in order, with their options.

Like Django's ``STORAGES``, each entry has a name and a ``BACKEND`` (a registered code: ``env``,
``file``, ``db``, ``vault`` or a plugin's) with ``OPTIONS`` given to its constructor as keyword
arguments::

    AUTOMATE_SECRETS_BACKENDS = {
        "env": {"BACKEND": "env"},
        "vault_eu": {"BACKEND": "vault", "OPTIONS": {"url": "https://vault.eu:8200", "auth": "approle"}},
        "vault_us": {"BACKEND": "vault", "OPTIONS": {"url": "https://vault.us:8200", "mount": "kv"}},
    }

A bare reference (``secret("STRIPE_KEY")``) searches the entries in this order; ``vault_eu:path#f``
asks one entry by name, and a registered code that is not an entry name (``db:NAME``) asks that
backend with its defaults. An entry without ``OPTIONS`` uses the backend's shared instance (and its
own settings: ``AUTOMATE_VAULT``, ``AUTOMATE_SECRETS_FILE_DIR`` ...).

The old form, a list of codes (``["env", "db"]``, or ``AUTOMATE_SECRETS_BACKENDS=env,db``), still
works; it is deprecated (system check ``automate.W010``) because it cannot hold options.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from automate_core.conf import settings
from automate_core.exceptions import ConfigurationError, PluginLoadError
from automate_core.plugins import registry

SETTING = "AUTOMATE_SECRETS_BACKENDS"
_ENTRY_KEYS = {"BACKEND", "OPTIONS"}


@dataclass(frozen=True, slots=True)
class BackendEntry:
    name: str
    backend: str
    options: dict[str, Any] = field(default_factory=dict)


def entries(value: Any = None) -> list[BackendEntry]:
    """The configured entries, in search order; :class:`ConfigurationError` names a bad one."""
    value = settings.SECRETS_BACKENDS if value is None else value
    if isinstance(value, (list, tuple)):
        if not all(isinstance(code, str) and code for code in value):
            raise ConfigurationError(f"{SETTING} as a list must hold backend codes (strings): {value!r}.")
        return [BackendEntry(code, code) for code in value]
    if not isinstance(value, dict):
        raise ConfigurationError(
            f'{SETTING} must be a mapping {{NAME: {{"BACKEND": code, "OPTIONS": {{...}}}}}}, got {value!r}.'
        )
    found = []
    for name, entry in value.items():
        if not isinstance(name, str) or not name or ":" in name:
            raise ConfigurationError(f"{SETTING}: {name!r} is not a usable name (a word without ':').")
        if not isinstance(entry, dict) or not isinstance(entry.get("BACKEND"), str) or not entry["BACKEND"]:
            raise ConfigurationError(f'{SETTING}[{name!r}] needs "BACKEND": a secrets backend code.')
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise ConfigurationError(
                f"{SETTING}[{name!r}]: unknown key(s) {', '.join(sorted(unknown))} (BACKEND, OPTIONS)."
            )
        options = entry.get("OPTIONS") or {}
        if not isinstance(options, dict):
            raise ConfigurationError(f'{SETTING}[{name!r}]["OPTIONS"] must be a mapping.')
        found.append(BackendEntry(name, entry["BACKEND"], dict(options)))
    return found


def is_deprecated_form(value: Any = None) -> bool:
    value = settings.SECRETS_BACKENDS if value is None else value
    return isinstance(value, (list, tuple))


def names() -> list[str]:
    """Entry names in search order (what a bare reference searches)."""
    return [entry.name for entry in entries()]


def backend_codes() -> list[str]:
    """The backend codes the entries use (``db`` when any entry is the db backend)."""
    return [entry.backend for entry in entries()]


_instances: dict[tuple[str, str, str], Any] = {}
_lock = threading.Lock()


def get_backend(name: str) -> Any:
    """The backend instance for entry ``name`` (or for a registered code that is no entry)."""
    entry = next((e for e in entries() if e.name == name), None) or BackendEntry(name, name)
    if not entry.options:
        return registry.secrets_backends().get(entry.backend)
    key = (entry.name, entry.backend, json.dumps(entry.options, sort_keys=True, default=str))
    with _lock:
        instance = _instances.get(key)
        if instance is None:
            cls = registry.secrets_backends().get_class(entry.backend)
            try:
                instance = cls(**entry.options)
            except Exception as exc:
                # the options' values may be credentials: the message names the entry, not them
                raise PluginLoadError(
                    registry.secrets_backends().group,
                    entry.backend,
                    f"{SETTING}[{entry.name!r}] OPTIONS were refused by {cls.__name__} "
                    f"({type(exc).__name__}: it takes {_parameters(cls)})",
                ) from exc
            _instances[key] = instance
        return instance


def _parameters(cls: type) -> str:
    import inspect

    try:
        params = [p for p in inspect.signature(cls).parameters.values() if p.name != "self"]
    except (TypeError, ValueError):
        return "unknown options"
    return ", ".join(p.name for p in params) or "no options"
