"""Entry-point registries: one per plugin group, lazy, cached, and tolerant of broken plugins.

The entry-point name is the plugin's ``code``. Listing a group imports nothing; a plugin is
imported the first time it is asked for. A plugin that fails to import, or is not a concrete
subclass of the group's base class, or whose ``code`` differs from its entry-point name, is
recorded as failed (shown by ``automate plugins`` and the ``automate.W001`` system check) and
never takes the platform down; asking for it by code raises that recorded error.

Two distributions registering the same code are a conflict: neither is used unless settings pick
one (``AUTOMATE_PLUGINS = {"django_automate.connectors": {"my_erp": "pkg.mod:Class"}}``).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import threading
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from automate_core.exceptions import (
    DuplicatePluginError,
    PluginError,
    PluginLoadError,
    UnknownPluginError,
)
from automate_core.plugins.dispatch import decide_mode

T = TypeVar("T")
logger = logging.getLogger("automate.plugins")

CONNECTORS = "django_automate.connectors"
SECRETS_BACKENDS = "django_automate.secrets.backends"
LLM_PROVIDERS = "django_automate.llm.providers"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    group: str
    code: str
    target: str
    distribution: str
    version: str
    name: str = ""
    mode: str = ""  # "async" or "sync"
    status: str = "not loaded"
    error: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class _Candidate:
    target: str
    distribution: str
    version: str
    entry_point: EntryPoint | None


def _dist(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "", ""
    return dist.metadata["Name"] or "", dist.version or ""


class PluginRegistry[T]:
    def __init__(self, group: str, base: type[T], async_method: str, sync_method: str) -> None:
        self.group = group
        self.base = base
        self.async_method = async_method
        self.sync_method = sync_method
        self._lock = threading.RLock()
        self._candidates: dict[str, list[_Candidate]] | None = None
        self._classes: dict[str, type[T]] = {}
        self._instances: dict[str, T] = {}
        self._errors: dict[str, PluginError] = {}
        self._overrides: dict[str, type[T]] = {}

    # -- discovery ------------------------------------------------------------------------

    def _discover(self) -> dict[str, list[_Candidate]]:
        with self._lock:
            if self._candidates is None:
                found: dict[str, list[_Candidate]] = {}
                seen: set[tuple[str, str, str]] = set()
                for ep in entry_points(group=self.group):
                    dist, version = _dist(ep)
                    key = (dist.lower(), ep.name, ep.value)
                    if key in seen:  # same distribution on two sys.path entries
                        continue
                    seen.add(key)
                    found.setdefault(ep.name, []).append(_Candidate(ep.value, dist, version, ep))
                for code, target in self._settings_choices().items():
                    found[code] = [_Candidate(target, "settings", "", None)]
                self._candidates = found
            return self._candidates

    def _settings_choices(self) -> dict[str, str]:
        try:
            from django.conf import settings

            chosen = getattr(settings, "AUTOMATE_PLUGINS", {}) or {}
        except Exception:  # settings not configured (plugin author's plain pytest)
            return {}
        return dict(chosen.get(self.group, {}))

    def codes(self) -> list[str]:
        """Codes of every registered plugin, broken ones included; imports nothing."""
        return sorted(set(self._discover()) | set(self._overrides))

    def refresh(self) -> None:
        with self._lock:
            self._candidates = None
            self._classes.clear()
            self._instances.clear()
            self._errors.clear()

    # -- loading --------------------------------------------------------------------------

    def get_class(self, code: str) -> type[T]:
        if code in self._overrides:
            return self._overrides[code]
        with self._lock:
            if code in self._classes:
                return self._classes[code]
            if code in self._errors:
                raise self._errors[code]
            candidates = self._discover().get(code)
            if not candidates:
                raise UnknownPluginError(self.group, code, self.codes())
            try:
                cls = self._load(code, candidates)
            except PluginError as exc:
                self._errors[code] = exc
                logger.warning("%s", exc)
                raise
            self._classes[code] = cls
            return cls

    def get(self, code: str) -> T:
        """The shared instance of plugin ``code`` (plugins are built once, without arguments)."""
        with self._lock:
            instance = self._instances.get(code)
            if instance is None:
                cls = self.get_class(code)
                try:
                    instance = cls()
                except Exception as exc:
                    raise PluginLoadError(self.group, code, f"{type(exc).__name__}: {exc}") from exc
                self._instances[code] = instance
            return instance

    def _load(self, code: str, candidates: list[_Candidate]) -> type[T]:
        if len(candidates) > 1:
            raise DuplicatePluginError(
                self.group, code, [f"{c.distribution} {c.version}".strip() for c in candidates]
            )
        cand = candidates[0]
        try:
            if cand.entry_point is not None:
                obj: Any = cand.entry_point.load()
            else:
                module, _, attr = cand.target.replace(":", ".").rpartition(".")
                obj = getattr(importlib.import_module(module), attr)
        except Exception as exc:
            raise PluginLoadError(
                self.group, code, f"{type(exc).__name__}: {exc}", cand.distribution
            ) from exc
        self.validate(code, obj, cand.distribution)
        return obj  # type: ignore[no-any-return]

    def validate(self, code: str, obj: Any, distribution: str = "") -> None:
        def fail(reason: str) -> PluginLoadError:
            return PluginLoadError(self.group, code, reason, distribution)

        if not inspect.isclass(obj) or not issubclass(obj, self.base):
            raise fail(f"{obj!r} is not a subclass of {self.base.__module__}.{self.base.__name__}")
        if inspect.isabstract(obj):
            missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
            raise fail(f"{obj.__name__} does not implement {missing}")
        declared = getattr(obj, "code", None)
        if declared and declared != code:  # none declared (the guide shows none for some kinds)
            raise fail(f"{obj.__name__}.code is {declared!r} but its entry point is named {code!r}")

    # -- introspection --------------------------------------------------------------------

    def is_async(self, cls: type) -> bool:
        """Whether the platform awaits this class's calls instead of offloading them."""
        return self.mode(cls) != "sync"

    def mode(self, cls: type) -> str:
        """How the platform calls ``cls``: "native", "coroutine" or "sync" (decided once per class)."""
        declared = getattr(cls, "plugin_mode", None)
        return str(declared or decide_mode(cls, self.base, self.async_method, self.sync_method))

    def info(self, *, load: bool = True) -> list[PluginInfo]:
        rows = []
        for code, candidates in sorted(self._discover().items()):
            cand = candidates[0]
            dists = " + ".join(f"{c.distribution} {c.version}".strip() for c in candidates)
            base = PluginInfo(self.group, code, cand.target, dists, cand.version)
            if not load:
                rows.append(base)
                continue
            try:
                cls = self.get_class(code)
            except PluginError as exc:
                rows.append(_replace(base, status="error", error=str(exc)))
                continue
            rows.append(
                _replace(
                    base,
                    name=str(getattr(cls, "name", "") or cls.__name__),
                    mode="async" if self.is_async(cls) else "sync",
                    status="ok",
                )
            )
        return rows

    def errors(self) -> dict[str, PluginError]:
        for code in self.codes():
            with contextlib.suppress(PluginError):
                self.get_class(code)
        return dict(self._errors)

    def override(self, code: str, cls: type[T] | None) -> None:
        """Register (or with ``None`` remove) a class for ``code`` ahead of entry points (tests)."""
        with self._lock:
            self._instances.pop(code, None)
            if cls is None:
                self._overrides.pop(code, None)
            else:
                self._overrides[code] = cls


def _replace(info: PluginInfo, **changes: str) -> PluginInfo:
    values = info.as_dict()
    values.update(changes)
    return PluginInfo(**values)


_registries: dict[str, PluginRegistry[Any]] = {}


def connectors() -> PluginRegistry[Any]:
    from automate_connectors.adapters.base import ConnectorAdapter

    return _registry(CONNECTORS, ConnectorAdapter, "aexecute", "execute")


def secrets_backends() -> PluginRegistry[Any]:
    from automate_governance.secrets.interfaces import SecretsBackend

    return _registry(SECRETS_BACKENDS, SecretsBackend, "aget_secret", "get_secret")


def llm_providers() -> PluginRegistry[Any]:
    from automate_llm.providers.base import LLMProvider

    return _registry(LLM_PROVIDERS, LLMProvider, "achat", "chat")


def _registry(group: str, base: type, async_method: str, sync_method: str) -> PluginRegistry[Any]:
    reg = _registries.get(group)
    if reg is None:
        reg = _registries[group] = PluginRegistry(group, base, async_method, sync_method)
    return reg


def all_registries() -> list[PluginRegistry[Any]]:
    return [connectors(), secrets_backends(), llm_providers()]
