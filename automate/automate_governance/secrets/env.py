"""``env``: secrets from environment variables named ``AUTOMATE_SECRET_<KEY>``.

The prefix keeps the platform's own environment (``DATABASE_URL``, ``SECRET_KEY``) out of reach of
workflow templates: ``secret("SLACK_TOKEN")`` reads ``AUTOMATE_SECRET_SLACK_TOKEN`` and nothing else.
"""

from __future__ import annotations

import os
import re

from automate_governance.secrets.interfaces import SecretNotFoundError, SecretsBackend

PREFIX = "AUTOMATE_SECRET_"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvSecretsBackend(SecretsBackend):
    code = "env"
    name = "Environment variables (AUTOMATE_SECRET_<KEY>)"

    def get_secret(self, key: str) -> str:
        if not _KEY.match(key):
            raise SecretNotFoundError(f"env: {key!r} is not a valid variable name (letters, digits and '_').")
        value = os.environ.get(PREFIX + key.upper())
        if not value:
            raise SecretNotFoundError(f"env: variable {PREFIX + key.upper()} is not set.")
        return value
