"""``db``: secrets stored in PostgreSQL, encrypted at rest with AES-256-GCM.

Values are written with :func:`set_secret` (or ``automate secrets set NAME``, reading the value
from standard input) and never leave the database unencrypted. Key rotation: see
:mod:`automate_governance.secrets.crypto`; :func:`rotate` re-encrypts every value still under an
older key and returns how many it changed.

The backend uses the Django ORM, so the platform calls it in its plugin thread pool (with Django's
connections closed around each call).
"""

from __future__ import annotations

from django.db import DatabaseError, transaction

from automate_core.exceptions import ConfigurationError
from automate_governance.secrets import crypto
from automate_governance.secrets.interfaces import (
    SecretNotFoundError,
    SecretsBackend,
    SecretsBackendUnavailable,
)


class DbSecretsBackend(SecretsBackend):
    code = "db"
    name = "Database (encrypted at rest)"

    def get_secret(self, key: str) -> str:
        from automate_governance.models import StoredSecret

        try:
            crypto.keys()  # misconfiguration shows as "unavailable" whether or not the key exists
            row = StoredSecret.objects.filter(name=key).values_list("key_id", "ciphertext").first()
            if row is None:
                raise SecretNotFoundError(f"db: no stored secret named {key!r}.")
            return crypto.decrypt(key, row[0], bytes(row[1]))
        except DatabaseError as exc:
            raise SecretsBackendUnavailable(f"db: the database failed ({type(exc).__name__}).") from exc
        except ConfigurationError as exc:
            raise SecretsBackendUnavailable(f"db: {exc}") from exc


def set_secret(name: str, value: str) -> None:
    """Store (or replace) ``name`` encrypted under the current key."""
    from automate_governance.models import StoredSecret

    if not name or not value:
        raise ValueError("A stored secret needs a name and a non-empty value.")
    kid, blob = crypto.encrypt(name, value)
    StoredSecret.objects.update_or_create(name=name, defaults={"key_id": kid, "ciphertext": blob})
    _invalidate(name)


def delete_secret(name: str) -> bool:
    from automate_governance.models import StoredSecret

    deleted, _ = StoredSecret.objects.filter(name=name).delete()
    _invalidate(name)
    return bool(deleted)


def rotate() -> int:
    """Re-encrypt every stored secret not under the current key; returns how many changed."""
    from automate_governance.models import StoredSecret

    current = crypto.key_id(crypto.keys()[0])
    changed = 0
    with transaction.atomic():
        for row in StoredSecret.objects.select_for_update().exclude(key_id=current):
            value = crypto.decrypt(row.name, row.key_id, bytes(row.ciphertext))
            row.key_id, row.ciphertext = crypto.encrypt(row.name, value)
            row.save(update_fields=["key_id", "ciphertext", "updated_at"])
            changed += 1
    return changed


def _invalidate(name: str) -> None:
    from automate_governance.secrets.resolver import get_resolver

    get_resolver().invalidate(name)
