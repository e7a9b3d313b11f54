"""``LLMProviderContractTest``: the checks every LLM provider must pass."""

from __future__ import annotations

from typing import Any, ClassVar

from automate_core.exceptions import LLMError
from automate_core.plugins.registry import LLM_PROVIDERS
from automate_llm import usage
from automate_llm.providers.base import LLMProvider
from automate_testing.contracts._base import ContractTest, no_blocking_sleep, no_io, run, unguarded


class LLMProviderContractTest(ContractTest):
    """Subclass, set ``provider_cls``; make ``make_provider()`` answer offline (a local server, a
    fake transport, or a provider that needs no network).

    * ``messages`` / ``options``: a chat that succeeds.
    * ``invalid_options``: options ``chat`` must refuse with an ``LLMError`` before any request
      (unchecked until declared: the guide does not ask a provider to refuse options).

    Optional check, beyond the guide (``contract_opt_in = {...}``):

    * ``invalid_options_not_retryable``: those refusals say ``retryable=False``
      (``LLMInvalidOptionsError``).
    """

    __test__ = False
    _suite_base = True
    _plugin_attr = "provider_cls"
    _group = LLM_PROVIDERS
    _identity_declared = False
    provider_cls: ClassVar[type[LLMProvider] | None] = None
    messages: ClassVar[list[dict[str, str]]] = [{"role": "user", "content": "Say hello"}]
    options: ClassVar[dict[str, Any]] = {}
    invalid_options: ClassVar[list[dict[str, Any]]] = []

    def make_provider(self) -> LLMProvider:
        return self.plugin_cls()  # type: ignore[no-any-return]

    def sync_chat(self, provider: LLMProvider, messages: list, options: dict) -> tuple[Any, usage.Usage]:
        with usage.recording() as used:
            if type(provider).plugin_mode == "coroutine":
                return run(provider.chat(messages, options)), used
            return provider.chat(messages, options), used

    def async_chat(self, provider: LLMProvider, messages: list, options: dict) -> tuple[Any, usage.Usage]:
        async def go() -> Any:
            with usage.recording() as used:
                method = unguarded(type(provider).achat)
                return await method(provider, messages, options), used

        with no_blocking_sleep():
            return run(go())  # type: ignore[no-any-return]

    # -- the checks ---------------------------------------------------------------------------

    def test_contract_instantiates_without_io(self) -> None:
        with no_io():
            provider = self.make_provider()
        self.assertIsInstance(provider, LLMProvider)

    def test_contract_chat_returns_text_in_both_forms(self) -> None:
        provider = self.make_provider()
        text, sync_used = self.sync_chat(provider, list(self.messages), dict(self.options))
        atext, async_used = self.async_chat(provider, list(self.messages), dict(self.options))
        self.assertIsInstance(text, str, "chat must return the answer's text (a str)")
        self.assertIsInstance(atext, str, "achat must return the answer's text (a str)")
        self.assertEqual(text, atext, "chat and achat must give the same answer")
        self.assertEqual((sync_used.input, sync_used.output), (async_used.input, async_used.output),
                         "chat and achat must report the same usage")  # fmt: skip
        for used in (sync_used, async_used):
            for value in (used.input, used.output):
                self.assertTrue(value is None or (isinstance(value, int) and value >= 0),
                                f"reported usage must be a non-negative int, not {value!r}")  # fmt: skip

    def test_contract_count_tokens(self) -> None:
        """A positive int for text, none or few for "", more for more text, and no network."""
        provider = self.make_provider()
        with no_io():
            one, many, empty = (provider.count_tokens(t) for t in ("hello", "hello world " * 100, ""))
        for value in (one, many, empty):
            self.assertIsInstance(value, int)
            self.assertNotIsInstance(value, bool)
        self.assertGreater(one, 0)
        self.assertGreaterEqual(many, one)
        self.assertLessEqual(empty, 2)

    def test_contract_invalid_options_are_llm_errors(self) -> None:
        if not self.invalid_options:
            self.skipTest("declare invalid_options to check that chat refuses them")
        self.invalid_options_errors()

    def test_contract_optional_invalid_options_not_retryable(self) -> None:
        if not self.invalid_options:
            self.fail("declare invalid_options for this check")
        for error in self.invalid_options_errors():
            self.assertFalse(error.retryable, "invalid options cannot succeed on retry")

    def invalid_options_errors(self) -> list[LLMError]:
        provider = self.make_provider()
        errors: list[LLMError] = []
        for options in self.invalid_options:
            for form in (self.sync_chat, self.async_chat):
                with self.subTest(options=options, form=form.__name__), no_io():
                    try:
                        form(provider, list(self.messages), dict(options))
                    except LLMError as exc:
                        errors.append(exc)
                        continue
                    except Exception as exc:
                        self.fail(f"raised {type(exc).__name__}: {exc}; raise an LLMError subclass instead.")
                    self.fail(f"options {options!r} were accepted")
        return errors
