"""How the platform calls a plugin: decided once per class, errors kept in one hierarchy.

A plugin class satisfies its contract in one of three ways (shown for connectors; secrets backends
and LLM providers follow the same rule with ``get_secret``/``aget_secret`` and ``chat``/``achat``):

* ``native``: it defines ``aexecute`` itself, at or below the class that defines ``execute`` (a
  subclass that overrides only ``execute`` is not shadowed by an inherited ``aexecute``);
* ``coroutine``: ``execute`` is an ``async def`` (also behind ``functools.partial``);
* ``sync``: ``execute`` is a plain method; it runs in the bounded thread pool of :mod:`offload`.

The mode is computed when the class is created (``__init_subclass__`` of the base) and stored as
``cls.plugin_mode``. Whatever escapes a plugin that is not already of the contract's error type is
wrapped in it (``raise ... from exc``): never swallowed, never a bare exception in the engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from automate_core.plugins.offload import is_async_callable, run_sync

Mode = Literal["native", "coroutine", "sync"]


def _owner(cls: type, name: str) -> type | None:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass
    return None


def decide_mode(cls: type, base: type, async_name: str, sync_name: str) -> Mode:
    """The calling mode of plugin class ``cls`` (see the module docstring)."""
    async_owner = _owner(cls, async_name)
    sync_owner = _owner(cls, sync_name)
    defines_async = async_owner is not None and async_owner is not base
    if defines_async and (sync_owner in (None, base) or issubclass(async_owner, sync_owner)):  # type: ignore[arg-type]
        return "native"
    if is_async_callable(getattr(cls, sync_name, None)):
        return "coroutine"
    return "sync"


async def call(mode: Mode, sync_method: Callable[..., Any], *args: Any) -> Any:
    """Call the sync-named method of a ``coroutine`` or ``sync`` plugin from async code."""
    if mode == "coroutine":
        return await sync_method(*args)
    return await run_sync(sync_method, *args)


def prepare_class(
    cls: type, base: type, async_name: str, sync_name: str, expected: type[Exception],
    wrap: Callable[[Any, Exception], Exception],
) -> None:  # fmt: skip
    """Called by each base's ``__init_subclass__``: decide ``cls.plugin_mode`` once, and guard an
    async method the class defines itself so stray exceptions become ``expected``'s kind."""
    cls.plugin_mode = decide_mode(cls, base, async_name, sync_name)  # type: ignore[attr-defined]
    own = cls.__dict__.get(async_name)
    if own is not None:
        setattr(cls, async_name, guard(own, expected, wrap))


def guard[**P, R](
    method: Callable[P, Coroutine[Any, Any, R]],
    expected: type[Exception],
    wrap: Callable[[Any, Exception], Exception],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Wrap an async plugin method so any exception that is not ``expected`` becomes ``wrap(self, exc)``."""
    if getattr(method, "__automate_guarded__", False):
        return method

    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except expected:
            raise
        except Exception as exc:
            raise wrap(args[0], exc) from exc

    guarded.__automate_guarded__ = True  # type: ignore[attr-defined]
    return guarded
