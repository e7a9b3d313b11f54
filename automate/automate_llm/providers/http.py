"""Shared machinery of the HTTP LLM providers (``openai``, ``anthropic``): one request builder and
one answer parser per protocol, used by both the sync ``chat`` and the native async ``achat``, so
the two forms cannot drift apart.

Configuration, per call: ``options`` (``model``, ``api_key``, ``timeout``, sampling options), then
``AUTOMATE_LLM_PROVIDERS[<code>]`` (``base_url``, ``api_key``, ``model``, ``timeout``), then the
provider's environment variable for the key (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``). The base
URL comes from settings only: it is the operator's choice, not a workflow's.

HTTP answers become typed errors: 401/403 ``LLMAuthError``; 429 ``LLMRateLimitError`` with the
server's ``Retry-After``; a context-length refusal ``LLMContextTooLongError``; other 4xx
``LLMError`` (not retryable); 5xx and 529 ``LLMError`` (retryable); no answer in time
``LLMTimeoutError``.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
import threading
import weakref
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from automate_core import masking
from automate_core.conf import settings
from automate_core.observability import tracing
from automate_llm import tokens
from automate_llm.providers.base import (
    LLMAuthError,
    LLMContextTooLongError,
    LLMError,
    LLMInvalidOptionsError,
    LLMProvider,
    LLMRateLimitError,
    LLMTimeoutError,
)

#: Options every HTTP provider accepts besides its sampling options.
COMMON_OPTIONS = frozenset({"model", "api_key", "timeout", "max_tokens", "temperature", "top_p", "stop"})


@dataclass(frozen=True, slots=True)
class Call:
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    timeout: float


class HttpChatProvider(LLMProvider):
    """An LLM provider that speaks one JSON-over-HTTP chat protocol."""

    default_base_url: ClassVar[str] = ""
    api_key_env: ClassVar[str] = ""
    extra_options: ClassVar[frozenset[str]] = frozenset()
    #: Words in a 400 answer that mean "the prompt does not fit the context window".
    context_markers: ClassVar[tuple[str, ...]] = (
        "context_length_exceeded", "maximum context length", "context length", "context window",
        "prompt is too long", "too many tokens",
    )  # fmt: skip

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self._config = config

    def config(self, name: str, default: Any = None) -> Any:
        config = (
            self._config if self._config is not None else (settings.LLM_PROVIDERS or {}).get(self.code, {})
        )
        value = config.get(name)
        return default if value in (None, "") else value

    def count_tokens(self, text: str) -> int:
        return tokens.count(text)

    # -- the protocol ------------------------------------------------------------------------

    @abstractmethod
    def build(self, messages: list, options: dict[str, Any]) -> Call:
        """The HTTP request for a chat (pure: no I/O)."""

    @abstractmethod
    def parse(self, data: Any) -> tuple[str, int | None, int | None, str]:
        """``(text, input_tokens, output_tokens, model)`` from a successful answer's JSON."""

    # -- shared steps ------------------------------------------------------------------------

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        unknown = set(options) - COMMON_OPTIONS - self.extra_options
        if unknown:
            allowed = ", ".join(sorted(COMMON_OPTIONS | self.extra_options))
            raise LLMInvalidOptionsError(
                f"{self.code}: unknown options {sorted(unknown)}; allowed: {allowed}."
            )
        if not (options.get("model") or self.config("model")):
            raise LLMInvalidOptionsError(
                f"{self.code}: no model; give options.model or "
                f"AUTOMATE_LLM_PROVIDERS[{self.code!r}]['model']."
            )
        max_tokens = options.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens <= 0):
            raise LLMInvalidOptionsError(f"{self.code}: max_tokens must be a positive integer.")
        return options

    def api_key(self, options: dict[str, Any]) -> str:
        return str(options.get("api_key") or self.config("api_key") or os.environ.get(self.api_key_env, ""))

    def base_url(self) -> str:
        return str(self.config("base_url", self.default_base_url)).rstrip("/")

    def timeout(self, options: dict[str, Any]) -> float:
        return float(options.get("timeout") or self.config("timeout", 60.0))

    def error_for(self, response: httpx.Response) -> LLMError:
        status = response.status_code
        try:
            detail = response.json()
        except ValueError:
            detail = response.text
        message = masking.masker.cut(_message(detail)[:4096], 300)  # masked before it is cut
        what = f"{self.code}: the server answered {status}: {message}"
        if status in (401, 403):
            return LLMAuthError(what, status_code=status)
        if status == 429:
            from automate_connectors.httpclient import retry_after

            return LLMRateLimitError(what, retry_after=retry_after(response), status_code=status)
        lowered = message.lower()
        if status in (400, 413, 422) and any(marker in lowered for marker in self.context_markers):
            return LLMContextTooLongError(what, status_code=status)
        return LLMError(what, retryable=status >= 500 or status == 408, status_code=status)

    def finish(self, response: httpx.Response) -> str:
        if response.status_code >= 300:
            raise self.error_for(response)
        try:
            text, used_in, used_out, model = self.parse(response.json())
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(
                f"{self.code}: unexpected answer ({type(exc).__name__}: {exc}).", retryable=True
            ) from exc
        self.record_usage(input=used_in, output=used_out, model=model)
        return text

    def chat(self, messages: list, options: dict) -> str:
        call = self.build(messages, self.check_options(dict(options)))
        try:
            response = _sync_client().post(
                call.url,
                headers={**tracing.outgoing_headers(), **call.headers},
                json=call.body,
                timeout=call.timeout,
            )
        except httpx.TimeoutException as exc:
            raise LLMTimeoutError(f"{self.code}: no answer within {call.timeout:g}s.") from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"{self.code}: {type(exc).__name__}: {exc}", retryable=True) from exc
        return self.finish(response)

    async def achat(self, messages: list, options: dict) -> str:
        call = self.build(messages, self.check_options(dict(options)))
        try:
            response = await _async_client().post(
                call.url,
                headers={**tracing.outgoing_headers(), **call.headers},
                json=call.body,
                timeout=call.timeout,
            )
        except httpx.TimeoutException as exc:
            raise LLMTimeoutError(f"{self.code}: no answer within {call.timeout:g}s.") from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"{self.code}: {type(exc).__name__}: {exc}", retryable=True) from exc
        return self.finish(response)


# Clients kept per process (and per event loop for the async one): every chat to a provider reuses
# its pooled TCP and TLS connections. Cookies are refused: calls must not share state.
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)
_sync_lock = threading.Lock()
_sync: list[httpx.Client] = []
# httpx's request log prints each URL: masked and without its query, as for the connectors
masking.guard_library_loggers("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2")


def _no_cookies() -> httpx.Cookies:
    return httpx.Cookies(
        http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    )


def _async_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = httpx.AsyncClient(trust_env=False, cookies=_no_cookies())
    return client


def _sync_client() -> httpx.Client:
    with _sync_lock:
        if not _sync:
            _sync.append(httpx.Client(trust_env=False, cookies=_no_cookies()))
        return _sync[0]


def _message(detail: Any) -> str:
    if isinstance(detail, dict):
        error = detail.get("error", detail)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("code") or error.get("type") or error)
        return str(error)
    return str(detail)


def validate_messages(code: str, messages: list) -> list[dict[str, str]]:
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise LLMInvalidOptionsError(f"{code}: messages[{i}] must be {{'role': ..., 'content': '...'}}.")
        role = message.get("role", "user")
        if role not in ("system", "user", "assistant"):
            raise LLMInvalidOptionsError(f"{code}: messages[{i}].role must be system, user or assistant.")
        out.append({"role": role, "content": message["content"]})
    if not any(m["role"] == "user" for m in out):
        raise LLMInvalidOptionsError(f"{code}: the chat needs at least one user message.")
    return out
