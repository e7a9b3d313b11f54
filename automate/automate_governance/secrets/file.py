"""``file``: secrets as files in a directory, the way Docker and Kubernetes mount them.

``secret("db_password")`` reads ``<AUTOMATE_SECRETS_FILE_DIR>/db_password`` (default
``/run/secrets``, Docker's; point it at a Kubernetes secret volume's mount path for that). One
trailing newline is removed (``echo`` and editors add it); everything else is kept byte for byte.
Names are letters, digits, ``_``, ``-`` and ``.``; nothing outside the directory is ever read
(no ``..``, no hidden files, no symlink that leads out).
"""

from __future__ import annotations

import re
from pathlib import Path

from automate_core.conf import settings
from automate_governance.secrets.interfaces import (
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretsBackend,
    SecretsBackendUnavailable,
)

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")


class FileSecretsBackend(SecretsBackend):
    code = "file"
    name = "Files in a directory (Docker/Kubernetes secrets)"

    def __init__(self, directory: str | Path | None = None) -> None:
        self._directory = Path(directory) if directory is not None else None

    @property
    def directory(self) -> Path:
        return self._directory or Path(settings.SECRETS_FILE_DIR)

    def get_secret(self, key: str) -> str:
        if not _NAME.match(key) or ".." in key:
            raise SecretNotFoundError(f"file: {key!r} is not a valid secret file name.")
        root = self.directory
        if not root.is_dir():
            raise SecretsBackendUnavailable(f"file: the secrets directory {root} does not exist.")
        path = root / key
        try:
            real = path.resolve(strict=True)
        except (FileNotFoundError, RuntimeError):
            raise SecretNotFoundError(f"file: no secret file {key!r} in {root}.") from None
        if not real.is_relative_to(root.resolve()) or not real.is_file():
            raise SecretNotFoundError(f"file: {key!r} in {root} is not a file inside the directory.")
        try:
            value = real.read_text(encoding="utf-8")
        except PermissionError:
            raise SecretAccessDeniedError(f"file: no permission to read {key!r} in {root}.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretsBackendUnavailable(f"file: cannot read {key!r} ({type(exc).__name__}).") from None
        value = value.removesuffix("\n").removesuffix("\r")
        if not value:
            raise SecretNotFoundError(f"file: the secret file {key!r} is empty.")
        return value
