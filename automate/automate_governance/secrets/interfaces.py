"""The secrets backend contract: ``SecretsBackend``.

Register a backend under the entry-point group ``django_automate.secrets.backends``::

    [project.entry-points."django_automate.secrets.backends"]
    vault = "my_app.secrets:HashiCorpVaultBackend"

``get_secret`` returns the raw value or raises :class:`SecretNotFoundError`; it never returns
``None`` or an empty string for a missing key, and never puts a value in an exception message.
Add ``async def aget_secret`` for a native async implementation; otherwise ``get_secret`` runs in
the plugin thread pool.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from automate_core.exceptions import SecretNotFoundError, SecretsBackendUnavailable
from automate_core.plugins.offload import is_async_callable, run_sync

__all__ = ["SecretNotFoundError", "SecretsBackend", "SecretsBackendUnavailable"]


class SecretsBackend(ABC):
    code: str = ""
    name: str = ""

    @abstractmethod
    def get_secret(self, key: str) -> str:
        """
        Return the raw secret value.
        Raise SecretNotFoundError if missing.
        """

    async def aget_secret(self, key: str) -> str:
        """Async entry point used by the platform (see the module docstring)."""
        if is_async_callable(self.get_secret):
            return await self.get_secret(key)  # type: ignore[no-any-return, misc]
        return await run_sync(self.get_secret, key)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} code={self.code!r}>"
