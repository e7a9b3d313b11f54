"""Resolving secret references through the configured backends, with a TTL cache and masking.

A reference is ``<backend>:<key>`` (``env:SLACK_TOKEN``) to ask one backend, or a bare ``<key>``
to search ``AUTOMATE_SECRETS_BACKENDS`` in order. Only the backends in that setting answer: a
prefix naming a backend that is installed but not configured is refused (access denied). Every
value resolved is registered with the process's secrets masker, so it is replaced by ``***`` in
logs and run records from then on.

Outcomes, per backend: "not found" (``SecretNotFoundError``) and "unavailable" (any other
``SecretsError``) move on to the next backend; "access denied" (``SecretAccessDeniedError``) stops
the search, so a deny is never downgraded to another backend's value. When no backend has the key
and one was unavailable, the answer is ``SecretsBackendUnavailable`` (retry later), not "not
found". A backend named in settings that failed to load fails loudly with its recorded error.
Values are cached in process for ``AUTOMATE_SECRETS_CACHE_TTL`` seconds (0 turns caching off).
"""

from __future__ import annotations

import time

from automate_core import masking
from automate_core.conf import settings
from automate_core.exceptions import (
    PluginError,
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretsBackendUnavailable,
    SecretsError,
)
from automate_core.plugins import registry
from automate_governance.secrets import config


class SecretsResolver:
    def __init__(self, order: list[str] | None = None, ttl: float | None = None) -> None:
        self.order = order
        self.ttl = ttl
        self._cache: dict[str, tuple[float, str]] = {}

    def _order(self) -> list[str]:
        return list(self.order if self.order is not None else config.names())

    def _ttl(self) -> float:
        return float(self.ttl if self.ttl is not None else settings.SECRETS_CACHE_TTL)

    def parse(self, ref: str) -> tuple[list[str], str]:
        prefix, sep, rest = ref.partition(":")
        order = self._order()
        if sep and prefix in order:  # a configured entry, by its name
            return [prefix], rest
        if sep and prefix in registry.secrets_backends().codes():
            # a backend by its code: only one that is configured answers (installed is not enough)
            configured = order if self.order is not None else [*order, *config.backend_codes()]
            if prefix not in configured:
                raise SecretAccessDeniedError(
                    f"Secret {ref!r} names the backend {prefix!r}, which is not in "
                    f"AUTOMATE_SECRETS_BACKENDS ({', '.join(order) or 'none'}); add it there to use it."
                )
            return [prefix], rest
        return self._order(), ref

    async def aresolve(self, ref: str) -> str:
        hit = self._cache.get(ref)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        backends, key = self.parse(ref)
        unavailable: list[str] = []
        for code in backends:
            try:
                backend = config.get_backend(code)
            except PluginError as exc:
                raise SecretsBackendUnavailable(f"Secrets backend {code!r}: {exc}") from exc
            try:
                value: str = await backend.aget_secret(key)
            except SecretNotFoundError:
                continue
            except SecretAccessDeniedError:
                raise
            except SecretsError as exc:
                unavailable.append(f"{code} ({masking.masker.mask(str(exc))})")
                continue
            except Exception as exc:  # a backend overriding aget_secret without the guard
                unavailable.append(f"{code} ({type(exc).__name__})")
                continue
            if not isinstance(value, str) or not value:
                unavailable.append(f"{code} (returned {type(value).__name__} instead of a value)")
                continue
            masking.masker.register(value)
            if self._ttl() > 0:
                self._cache[ref] = (time.monotonic() + self._ttl(), value)
            return value
        if unavailable:
            raise SecretsBackendUnavailable(
                f"Secret {key!r} not found, and these backends failed: {', '.join(unavailable)}."
            )
        raise SecretNotFoundError(
            f"Secret {key!r} was not found in the backends: {', '.join(backends) or 'none configured'}."
        )

    def resolve(self, ref: str) -> str:
        """Sync form of :meth:`aresolve`, for code that runs outside an event loop."""
        from asgiref.sync import async_to_sync

        return async_to_sync(self.aresolve)(ref)

    def invalidate(self, key: str) -> None:
        """Forget cached values of ``key`` (under any backend prefix), after a write or rotation."""
        for ref in list(self._cache):
            if ref == key or ref.partition(":")[2] == key:
                self._cache.pop(ref, None)

    def clear(self) -> None:
        self._cache.clear()


_resolver: SecretsResolver | None = None


def get_resolver() -> SecretsResolver:
    global _resolver
    if _resolver is None:
        _resolver = SecretsResolver()
    return _resolver
