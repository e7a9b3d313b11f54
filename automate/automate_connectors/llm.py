"""``llm``: one chat completion through an LLM provider, within the token budgets.

Action ``chat``. Params: ``provider`` (an LLM provider code, default ``echo``), ``model``,
``prompt`` (one user message) or ``messages`` (``[{"role", "content"}]``), ``system``,
``max_tokens`` (default ``AUTOMATE_LLM_DEFAULT_MAX_TOKENS``; always sent, so the output cannot
exceed what was reserved), ``temperature``, ``api_key`` (e.g. ``{{ secret("OPENAI_API_KEY") }}``),
and ``options`` for any other provider option.

Returns ``{"text", "usage": {"input", "output", "estimated"}, "model", "provider"}``: the usage the
provider reported (``estimated`` when it reported none and local counts were used), recorded with
the step and counted in ``automate_llm_tokens_total``. Before the call the estimate is reserved in
the budgets (:mod:`automate_governance.budgets`); a call that would exceed one fails without being
made (not retryable). Provider errors keep their meaning: rate limits and timeouts are retryable,
with the server's ``Retry-After``; authentication and context-length errors are not.
"""

from __future__ import annotations

from typing import Any, ClassVar

from automate_connectors.adapters.base import (
    ConnectorAdapter,
    ConnectorConfigError,
    ConnectorError,
)
from automate_connectors.calls import check_call
from automate_core.conf import settings
from automate_core.exceptions import BudgetExceededError, LLMError, LLMTimeoutError, PluginError
from automate_core.observability import metrics
from automate_core.plugins import registry
from automate_llm import tokens, usage

_PARAMS = {
    "provider",
    "model",
    "prompt",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "api_key",
    "options",
}


def _messages(params: dict) -> list[dict[str, Any]]:
    messages = params.get("messages")
    prompt = params.get("prompt")
    if (messages is None) == (prompt is None):
        raise ConnectorError("llm: give either 'prompt' or 'messages'.", retryable=False)
    if prompt is not None:
        messages = [{"role": "user", "content": str(prompt)}]
    if not isinstance(messages, list) or not messages:
        raise ConnectorError("llm: 'messages' must be a non-empty list.", retryable=False)
    if params.get("system"):
        messages = [{"role": "system", "content": str(params["system"])}, *messages]
    return list(messages)


class LLMConnector(ConnectorAdapter):
    code = "llm"
    name = "LLM chat"
    actions: ClassVar[tuple[str, ...]] = ("chat",)
    supports_dry_run = True

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        check_call("llm", action, "chat", params, _PARAMS)
        code = str(params.get("provider") or "echo")
        try:
            provider = registry.llm_providers().get(code)
        except PluginError as exc:
            raise ConnectorConfigError(f"llm: {exc}") from exc
        messages = _messages(params)
        max_tokens = params.get("max_tokens")
        if max_tokens is None:
            max_tokens = int(settings.LLM_DEFAULT_MAX_TOKENS)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0:
            raise ConnectorError("llm: max_tokens must be a positive integer.", retryable=False)
        options: dict[str, Any] = dict(params.get("options") or {})
        options["max_tokens"] = max_tokens
        for key in ("model", "temperature", "api_key"):
            if params.get(key) is not None:
                options[key] = params[key]
        model = str(options.get("model", ""))
        prompt_tokens = tokens.count_messages(messages, provider.count_tokens)
        if context.get("dry_run"):
            return {"dry_run": True, "provider": code, "model": model, "reserve": prompt_tokens + max_tokens}
        text, used = await self._chat(provider, code, messages, options, context, prompt_tokens + max_tokens)
        used_in = used.input if used.input is not None else prompt_tokens
        used_out = used.output if used.output is not None else provider.count_tokens(text)
        metrics.llm_tokens.labels(code, "input").inc(used_in)
        metrics.llm_tokens.labels(code, "output").inc(used_out)
        return {
            "text": text,
            "usage": {"input": used_in, "output": used_out, "estimated": not used.reported},
            "model": used.model or model,
            "provider": code,
        }

    @staticmethod
    async def _chat(
        provider: Any, code: str, messages: list, options: dict[str, Any], context: dict, estimate: int
    ) -> tuple[str, usage.Usage]:
        from automate_governance import budgets

        try:
            reservation = await budgets.reserve(
                provider=code,
                model=str(options.get("model", "")),
                workflow=str(context.get("workflow", "")),
                run_id=context.get("run_id"),
                tokens=estimate,
            )
        except BudgetExceededError as exc:
            raise ConnectorError(str(exc), retryable=False) from exc
        charged = False
        try:
            with usage.recording() as used:
                text = await provider.achat(messages, options)
            if not isinstance(text, str):
                raise ConnectorError(f"llm: provider {code!r} returned {type(text).__name__}, not text.")
            prompt_tokens = estimate - int(options["max_tokens"])
            await budgets.settle(
                reservation,
                input=used.input if used.input is not None else prompt_tokens,
                output=used.output if used.output is not None else provider.count_tokens(text),
                estimated=not used.reported,
            )
            charged = True
            return text, used
        except LLMTimeoutError as exc:
            await budgets.settle(reservation, input=estimate, output=0, estimated=True)  # it may have run
            charged = True
            raise ConnectorError(str(exc), retryable=True, retry_after=exc.retry_after) from exc
        except LLMError as exc:
            await budgets.release(reservation)
            charged = True
            raise ConnectorError(
                str(exc), retryable=exc.retryable, retry_after=exc.retry_after, status_code=exc.status_code
            ) from exc
        finally:
            if not charged:  # cancelled (step timeout) or an unexpected error: keep the estimate
                await budgets.settle(reservation, input=estimate, output=0, estimated=True)
