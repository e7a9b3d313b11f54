"""The connector contract: ``ConnectorAdapter``.

A connector performs one kind of side effect. Register it under the entry-point group
``django_automate.connectors``; the entry-point name must equal its ``code``::

    [project.entry-points."django_automate.connectors"]
    my_erp = "my_app.adapters:MyERPAdapter"

Write ``execute`` as a plain method (the platform runs it in a bounded thread pool, so it never
blocks the event loop) or as ``async def execute`` (awaited on the event loop). A class may also
keep a sync ``execute`` and add a native ``async def aexecute`` beside it; the platform then
awaits ``aexecute``. The choice is made once per class (``plugin_mode``, see
:mod:`automate_core.plugins.dispatch`).

Construction takes no arguments and does no I/O; build clients lazily. On failure raise
:class:`ConnectorError` (``retryable=False`` when trying again cannot help). Anything else that
escapes ``aexecute`` is wrapped in a retryable ``ConnectorError`` whose cause is the original.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from automate_core.exceptions import (
    ConnectorConfigError,
    ConnectorError,
    ConnectorTimeout,
    UnknownActionError,
)
from automate_core.plugins import dispatch

__all__ = [
    "ConnectorAdapter",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorTimeout",
    "UnknownActionError",
]


def wrap_error(adapter: Any, exc: Exception) -> ConnectorError:
    """The ``ConnectorError`` for an exception a connector let escape."""
    code = getattr(adapter, "code", type(adapter).__name__)
    if isinstance(exc, TimeoutError):
        return ConnectorTimeout(f"{code}: timed out ({type(exc).__name__}).")
    return ConnectorError(f"{code}: unexpected {type(exc).__name__}: {exc}", retryable=True)


class ConnectorAdapter(ABC):
    code: str  # Unique identifier
    name: str  # Human readable label

    #: Actions this connector supports (used for validation on save and by the contract tests).
    actions: ClassVar[tuple[str, ...]] = ()
    #: Can ``execute`` run with ``context["dry_run"] = True`` without any side effect?
    supports_dry_run: ClassVar[bool] = False
    #: How the platform calls this class: "native", "coroutine" or "sync" (set per class).
    plugin_mode: ClassVar[dispatch.Mode] = "sync"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dispatch.prepare_class(cls, ConnectorAdapter, "aexecute", "execute", ConnectorError, wrap_error)

    @abstractmethod
    def execute(self, action: str, params: dict, context: dict) -> Any:
        """
        Execute the side effect.
        Must raise ConnectorError on failure.
        """

    def validate_config(self, config: dict) -> None:  # noqa: B027
        """Optional: Validate setup configuration."""

    async def aexecute(self, action: str, params: dict, context: dict) -> Any:
        """Async entry point used by the engine.

        Override it for a native async implementation beside a sync ``execute``. By default it
        awaits an ``async def execute``, or runs a sync ``execute`` in the plugin thread pool.
        """
        try:
            return await dispatch.call(self.plugin_mode, self.execute, action, params, context)
        except ConnectorError:
            raise
        except Exception as exc:
            raise wrap_error(self, exc) from exc
