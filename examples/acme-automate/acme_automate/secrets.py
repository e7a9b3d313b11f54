"""``acme_json``: secrets from a JSON object in a file (``ACME_SECRETS_FILE``).

The file is read on every call (the platform's resolver caches values for a TTL), so rotating a
secret is editing the file.
"""

from __future__ import annotations

import json
import os

from automate_governance.secrets.interfaces import (
    SecretNotFoundError,
    SecretsBackend,
    SecretsBackendUnavailable,
)


class JsonFileSecretsBackend(SecretsBackend):
    code = "acme_json"
    name = "Acme JSON secrets file"

    def get_secret(self, key: str) -> str:
        path = os.environ.get("ACME_SECRETS_FILE", "")
        if not path:
            raise SecretsBackendUnavailable("acme_json: set ACME_SECRETS_FILE to the secrets file's path.")
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise SecretsBackendUnavailable(f"acme_json: {path} does not exist.") from None
        except (OSError, ValueError) as exc:
            # never the parser's message: it may quote the file's content
            raise SecretsBackendUnavailable(
                f"acme_json: cannot read {path} ({type(exc).__name__})."
            ) from None
        value = data.get(key) if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise SecretNotFoundError(f"acme_json: no secret {key!r} in {path}.")
        return value
