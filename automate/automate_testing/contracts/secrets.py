"""``SecretsBackendContractTest``: the checks every secrets backend must pass."""

from __future__ import annotations

import concurrent.futures
from typing import Any, ClassVar

from automate_core.exceptions import SecretNotFoundError, SecretsError
from automate_core.plugins.registry import SECRETS_BACKENDS
from automate_governance.secrets.interfaces import SecretsBackend
from automate_testing.contracts._base import (
    ContractTest,
    captured_logs,
    close_thread_connections,
    no_blocking_sleep,
    no_io,
    run,
)


class SecretsBackendContractTest(ContractTest):
    """Subclass, set ``backend_cls`` and ``secrets``, and store them in ``populate()``.

    * ``secrets``: ``{key: value}`` the backend must return during the test (prefer values with
      unicode, surrounding spaces and several lines: they catch decoding and trimming bugs).
    * ``populate(backend)``: put ``secrets`` where the backend reads them (files, env, a fake
      server); ``cleanup(backend)`` undoes it. ``make_backend()`` builds the instance.
    * ``missing_key``: a key that is certainly absent.
    """

    __test__ = False
    _suite_base = True
    _plugin_attr = "backend_cls"
    _group = SECRETS_BACKENDS
    _identity_declared = False
    backend_cls: ClassVar[type[SecretsBackend] | None] = None
    secrets: ClassVar[dict[str, str]] = {}
    missing_key: ClassVar[str] = "AUTOMATE_CONTRACT_MISSING_KEY"

    def make_backend(self) -> SecretsBackend:
        return self.plugin_cls()  # type: ignore[no-any-return]

    def populate(self, backend: SecretsBackend) -> None:
        """Override: store ``self.secrets`` where ``backend`` reads them."""

    def cleanup(self, backend: SecretsBackend) -> None:
        """Override: remove what ``populate`` stored."""

    def setUp(self) -> None:
        super().setUp()
        self.backend = self.make_backend()
        self.populate(self.backend)
        self.addCleanup(self.cleanup, self.backend)

    def sync_get(self, key: str) -> str:
        if type(self.backend).plugin_mode == "coroutine":
            return run(self.backend.get_secret(key))  # type: ignore[no-any-return]
        return self.backend.get_secret(key)

    def async_get(self, key: str) -> str:
        with no_blocking_sleep():
            return run(self.backend.aget_secret(key))  # type: ignore[no-any-return]

    def require_secrets(self) -> None:
        if not self.secrets:
            self.skipTest(
                "declare secrets = {key: value} (and store them in populate()) for the value checks"
            )

    # -- the checks ---------------------------------------------------------------------------

    def test_contract_instantiates_without_io(self) -> None:
        with no_io():
            backend = self.make_backend()
        self.assertIsInstance(backend, SecretsBackend)

    def test_contract_returns_exact_values_sync_and_async(self) -> None:
        self.require_secrets()
        for key, value in self.secrets.items():
            with self.subTest(key=key):
                self.assertEqual(self.sync_get(key), value, "get_secret must return the value unchanged")
                self.assertEqual(self.async_get(key), value, "aget_secret must agree with get_secret")

    def test_contract_missing_key_raises_secret_not_found(self) -> None:
        for get in (self.sync_get, self.async_get):
            with self.subTest(form=get.__name__), self.assertRaises(SecretNotFoundError) as caught:
                get(self.missing_key)
            self.assertIsInstance(caught.exception, KeyError)

    def test_contract_values_never_leak(self) -> None:
        """No stored value appears in the backend's repr, in any error it raises, or in its logs."""
        values = [v for v in self.secrets.values() if len(v.strip()) >= 3]
        texts = [repr(self.backend), str(self.backend)]
        with captured_logs() as logs:
            for key in [self.missing_key, *(k + "_missing" for k in self.secrets)]:
                for get in (self.sync_get, self.async_get):
                    try:
                        get(key)
                    except SecretsError as exc:
                        texts += [str(exc), repr(exc), repr(exc.args)]
            for key in self.secrets:
                self.sync_get(key)
        texts += logs.texts
        for value in values:
            for text in texts:
                self.assertNotIn(value.strip(), text, "a secret value leaked into a message, repr or log")

    def test_contract_concurrent_reads_agree(self) -> None:
        self.require_secrets()
        keys = list(self.secrets) * 4

        def read(key: str) -> str:
            try:
                return self.sync_get(key)
            finally:
                close_thread_connections()

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(read, keys))
        self.assertEqual(results, [self.secrets[k] for k in keys])

    def test_contract_missing_key_is_not_a_value(self) -> None:
        """``None`` or ``""`` are never answers: a missing key is an exception."""
        self.require_secrets()
        for key in self.secrets:
            value: Any = self.sync_get(key)
            self.assertIsInstance(value, str)
            self.assertTrue(value, "get_secret returned an empty value")
