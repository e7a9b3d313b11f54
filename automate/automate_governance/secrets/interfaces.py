"""The secrets backend contract: ``SecretsBackend``.

Register a backend under the entry-point group ``django_automate.secrets.backends``::

    [project.entry-points."django_automate.secrets.backends"]
    vault = "my_app.secrets:HashiCorpVaultBackend"

``get_secret`` returns the raw value or raises :class:`SecretNotFoundError`; it never returns
``None`` or an empty string for a missing key, and never puts a value in an exception message.
Raise :class:`SecretsBackendUnavailable` when the store cannot be reached (the resolver then
tries the next backend and, if none has the key, says so instead of "not found"), and
:class:`SecretAccessDeniedError` when the store refuses (the resolver stops there).

Write ``async def get_secret``, or add ``async def aget_secret`` beside a sync ``get_secret`` for
a native async implementation; otherwise ``get_secret`` runs in the plugin thread pool. Anything
else escaping ``aget_secret`` becomes ``SecretsBackendUnavailable`` (without its message, which
might carry a value; the original stays as ``__cause__``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from automate_core.exceptions import (
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretsBackendUnavailable,
    SecretsError,
)
from automate_core.plugins import dispatch

__all__ = ["SecretAccessDeniedError", "SecretNotFoundError", "SecretsBackend", "SecretsBackendUnavailable"]


def wrap_error(backend: Any, exc: Exception) -> SecretsError:
    code = getattr(backend, "code", type(backend).__name__)
    return SecretsBackendUnavailable(f"Secrets backend {code!r} failed with {type(exc).__name__}.")


class SecretsBackend(ABC):
    code: str = ""
    name: str = ""
    #: How the platform calls this class: "native", "coroutine" or "sync" (set per class).
    plugin_mode: ClassVar[dispatch.Mode] = "sync"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dispatch.prepare_class(cls, SecretsBackend, "aget_secret", "get_secret", SecretsError, wrap_error)

    @abstractmethod
    def get_secret(self, key: str) -> str:
        """
        Return the raw secret value.
        Raise SecretNotFoundError if missing.
        """

    async def aget_secret(self, key: str) -> str:
        """Async entry point used by the platform (see the module docstring)."""
        try:
            value: str = await dispatch.call(self.plugin_mode, self.get_secret, key)
        except SecretsError:
            raise
        except Exception as exc:
            raise wrap_error(self, exc) from exc
        return value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} code={self.code!r}>"
