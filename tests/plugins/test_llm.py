"""LLM providers against real servers on 127.0.0.1 speaking OpenAI chat completions and Anthropic
messages, the llm connector, and token budgets on the real database under concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from automate_connectors.llm import LLMConnector
from automate_core.exceptions import (
    ConnectorConfigError,
    ConnectorError,
    LLMAuthError,
    LLMContextTooLongError,
    LLMError,
    LLMInvalidOptionsError,
    LLMRateLimitError,
    LLMTimeoutError,
)
from automate_core.observability import metrics
from automate_governance import budgets
from automate_llm import tokens, usage
from automate_llm.providers.anthropic import AnthropicProvider
from automate_llm.providers.http import HttpChatProvider
from automate_llm.providers.openai import OpenAIProvider
from tests.plugins.servers import FakeServer, Request

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]


def openai_ok(req: Request) -> tuple[int, dict[str, str], Any]:
    body = req.json()
    text = f"hi from {body['model']}"
    return 200, {}, {
        "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }  # fmt: skip


def anthropic_ok(req: Request) -> tuple[int, dict[str, str], Any]:
    body = req.json()
    return 200, {}, {
        "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
        "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 20, "output_tokens": 4},
    }  # fmt: skip


def openai(server: FakeServer, **config: Any) -> OpenAIProvider:
    return OpenAIProvider(
        {"base_url": server.url + "/v1", "model": "gpt-test", "api_key": "sk-test", **config}
    )


def anthropic(server: FakeServer, **config: Any) -> AnthropicProvider:
    return AnthropicProvider({"base_url": server.url, "model": "claude-test", "api_key": "ak-test", **config})


async def both(provider: HttpChatProvider, options: dict[str, Any]) -> list[tuple[str, usage.Usage]]:
    """The sync and the async form of one chat, with the usage each recorded."""
    with usage.recording() as sync_usage:
        sync_text = await asyncio.to_thread(provider.chat, MESSAGES, options)
    with usage.recording() as async_usage:
        async_text = await provider.achat(MESSAGES, options)
    return [(sync_text, sync_usage), (async_text, async_usage)]


async def test_openai_speaks_chat_completions(server: FakeServer) -> None:
    server.route("POST", "/v1/chat/completions", openai_ok)
    results = await both(openai(server), {"temperature": 0.2, "max_tokens": 50})
    assert results[0][0] == results[1][0] == "hi from gpt-test"
    for _, used in results:
        assert (used.input, used.output, used.model) == (12, 3, "gpt-test")
    req = server.requests[0]
    assert req.headers["authorization"] == "Bearer sk-test"
    # max_completion_tokens: reasoning models refuse the older max_tokens
    assert req.json() == {
        "model": "gpt-test", "messages": MESSAGES, "max_completion_tokens": 50, "temperature": 0.2
    }  # fmt: skip


async def test_anthropic_speaks_messages(server: FakeServer) -> None:
    server.route("POST", "/v1/messages", anthropic_ok)
    results = await both(anthropic(server), {"stop": "END"})
    assert results[0][0] == results[1][0] == "hi there"
    assert (results[1][1].input, results[1][1].output) == (20, 4)
    req = server.requests[0]
    assert req.headers["x-api-key"] == "ak-test" and req.headers["anthropic-version"] == "2023-06-01"
    assert req.json() == {
        "model": "claude-test", "max_tokens": 1024, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hi"}], "stop_sequences": ["END"],
    }  # fmt: skip


@pytest.mark.parametrize("make", [openai, anthropic])
@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "retryable", "retry_after"),
    [
        (401, {"error": {"message": "Incorrect API key", "type": "authentication_error"}}, {}, LLMAuthError,
         False, None),
        (429, {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}, {"Retry-After": "12"},
         LLMRateLimitError, True, 12.0),
        (500, {"error": {"message": "boom", "type": "api_error"}}, {}, LLMError, True, None),
        (529, {"error": {"message": "Overloaded", "type": "overloaded_error"}}, {}, LLMError, True, None),
        (400, {"error": {"message": "This model's maximum context length is 8192 tokens",
                         "code": "context_length_exceeded"}}, {}, LLMContextTooLongError, False, None),
        (400, {"error": {"type": "invalid_request_error", "message": "prompt is too long: 300000 tokens"}},
         {}, LLMContextTooLongError, False, None),
        (400, {"error": {"message": "temperature out of range"}}, {}, LLMError, False, None),
    ],
)  # fmt: skip
async def test_error_answers_map_to_typed_errors_in_both_forms(
    server: FakeServer, make: Any, status: int, body: Any, headers: dict[str, str], error: type[LLMError],
    retryable: bool, retry_after: float | None,
) -> None:  # fmt: skip
    for path in ("/v1/chat/completions", "/v1/messages"):
        server.reply("POST", path, status, body, **headers)
    provider = make(server)
    for call in (
        lambda: asyncio.to_thread(provider.chat, MESSAGES, {}),
        lambda: provider.achat(MESSAGES, {}),
    ):
        with pytest.raises(error) as caught:
            await call()
        assert type(caught.value) is error
        assert caught.value.retryable is retryable and caught.value.retry_after == retry_after
        assert "sk-test" not in str(caught.value) and "ak-test" not in str(caught.value)


@pytest.mark.parametrize("make", [openai, anthropic])
async def test_timeouts_are_retryable(server: FakeServer, make: Any) -> None:
    server.delay = 1.0
    provider = make(server, timeout=0.2)
    with pytest.raises(LLMTimeoutError) as caught:
        await provider.achat(MESSAGES, {})
    assert caught.value.retryable
    with pytest.raises(LLMTimeoutError):
        await asyncio.to_thread(provider.chat, MESSAGES, {})


async def test_bad_options_and_messages_are_refused_before_any_request(server: FakeServer) -> None:
    provider = openai(server)
    with pytest.raises(LLMInvalidOptionsError, match="unknown options"):
        await provider.achat(MESSAGES, {"temprature": 1})
    with pytest.raises(LLMInvalidOptionsError, match="user message"):
        await provider.achat([{"role": "system", "content": "x"}], {})
    with pytest.raises(LLMInvalidOptionsError, match="no model"):
        await OpenAIProvider({"base_url": server.url}).achat(MESSAGES, {})
    assert server.requests == []


def test_count_tokens_estimate_is_documented_and_monotone() -> None:
    assert tokens.estimate("") == 0
    assert tokens.estimate("a b c d e f") == 6  # words win for short words
    assert tokens.estimate("x" * 400) == 100  # four characters a token
    assert tokens.count("hello world " * 50) >= tokens.count("hello")
    assert OpenAIProvider().count_tokens("hello there") > 0


# --- the llm connector ------------------------------------------------------------------------


CTX: dict[str, Any] = {"run_id": None, "workflow": "wf", "step": "ask", "trace_id": "t", "dry_run": False}


async def test_llm_connector_returns_text_usage_and_counts_tokens(server: FakeServer, settings: Any) -> None:
    settings.AUTOMATE_LLM_PROVIDERS = {"openai": {"base_url": server.url + "/v1", "model": "gpt-test"}}
    server.route("POST", "/v1/chat/completions", openai_ok)
    before = metrics.llm_tokens.labels("openai", "input")._value.get()
    out = await LLMConnector().aexecute(
        "chat", {"provider": "openai", "prompt": "hello", "system": "Be brief.", "max_tokens": 64}, CTX
    )
    assert out == {"text": "hi from gpt-test", "usage": {"input": 12, "output": 3, "estimated": False},
                   "model": "gpt-test", "provider": "openai"}  # fmt: skip
    assert metrics.llm_tokens.labels("openai", "input")._value.get() == before + 12
    assert server.requests[0].json()["max_completion_tokens"] == 64


async def test_llm_connector_maps_provider_errors(server: FakeServer, settings: Any) -> None:
    settings.AUTOMATE_LLM_PROVIDERS = {"openai": {"base_url": server.url + "/v1", "model": "m"}}
    server.reply(
        "POST", "/v1/chat/completions", 429, {"error": {"message": "slow down"}}, **{"Retry-After": "3"}
    )
    with pytest.raises(ConnectorError) as caught:
        await LLMConnector().aexecute("chat", {"provider": "openai", "prompt": "x"}, CTX)
    assert caught.value.retryable and caught.value.retry_after == 3.0
    with pytest.raises(ConnectorConfigError, match="No plugin 'nope'"):
        await LLMConnector().aexecute("chat", {"provider": "nope", "prompt": "x"}, CTX)
    with pytest.raises(ConnectorError, match="either 'prompt' or 'messages'"):
        await LLMConnector().aexecute("chat", {"provider": "echo"}, CTX)


# --- budgets on the real database -------------------------------------------------------------


@pytest.mark.usefixtures("live_db")
async def test_concurrent_calls_cannot_overshoot_a_budget(settings: Any) -> None:
    """Twenty calls race for a global budget that fits exactly five reservations of 100 tokens."""
    settings.AUTOMATE_LLM_BUDGETS = {"global": 500, "period": "total"}

    async def one() -> bool:
        try:
            res = await budgets.reserve(provider="echo", model="", workflow="wf", run_id=None, tokens=100)
        except LLMError:
            return False
        await asyncio.sleep(0.05)  # the call in flight holds its reservation
        await budgets.settle(res, input=60, output=40)
        return True

    results = await asyncio.gather(*(one() for _ in range(20)))
    assert sum(results) == 5
    assert await budgets.usage("global", "", "") == (500, 0)


@pytest.mark.usefixtures("live_db")
async def test_settle_charges_reported_usage_and_release_gives_back(settings: Any) -> None:
    settings.AUTOMATE_LLM_BUDGETS = {"workflow": 1000, "run": 300, "period": "total"}
    res = await budgets.reserve(provider="echo", model="", workflow="wf", run_id=7, tokens=250)
    assert await budgets.usage("run", "7") == (0, 250)
    with pytest.raises(LLMError, match="this run's budget of 300"):
        await budgets.reserve(provider="echo", model="", workflow="wf", run_id=7, tokens=100)
    assert await budgets.usage("workflow", "wf", "") == (0, 250)  # the refused call reserved nothing
    await budgets.settle(res, input=30, output=20)
    await budgets.settle(res, input=30, output=20)  # idempotent
    assert await budgets.usage("run", "7") == (50, 0)
    res2 = await budgets.reserve(provider="echo", model="", workflow="wf", run_id=7, tokens=200)
    await budgets.release(res2)
    assert await budgets.usage("workflow", "wf", "") == (50, 0)


@pytest.mark.usefixtures("live_db")
async def test_llm_step_over_budget_is_not_made(settings: Any) -> None:
    settings.AUTOMATE_LLM_BUDGETS = {"workflows": {"wf": 100}, "period": "day"}
    with pytest.raises(ConnectorError, match="workflow 'wf'") as caught:
        await LLMConnector().aexecute("chat", {"provider": "echo", "prompt": "hi", "max_tokens": 500}, CTX)
    assert not caught.value.retryable
    out = await LLMConnector().aexecute("chat", {"provider": "echo", "prompt": "hi", "max_tokens": 50}, CTX)
    assert out["text"] == "hi" and out["usage"]["estimated"] is False
    used, reserved = await budgets.usage("workflow", "wf")
    assert used == out["usage"]["input"] + out["usage"]["output"] and reserved == 0


@pytest.mark.usefixtures("live_db")
async def test_stale_reservations_are_charged_their_estimate(settings: Any) -> None:
    settings.AUTOMATE_LLM_BUDGETS = {"global": 1000, "period": "total"}
    await budgets.reserve(provider="echo", model="", workflow="wf", run_id=None, tokens=300)
    assert await budgets.release_stale(older_than=3600) == 0  # still fresh
    assert await budgets.release_stale(older_than=0) == 1
    assert await budgets.usage("global", "", "") == (300, 0)


@pytest.mark.usefixtures("live_db")
async def test_workers_close_stale_reservations_on_their_own(settings: Any) -> None:
    """A reservation left by a worker that died mid-call is charged by any running worker."""
    from automate_core.worker.pool import WorkerOptions, WorkerPool
    from tests.helpers import eventually
    from tests.worker.conftest import running

    settings.AUTOMATE_LLM_BUDGETS = {"global": 1000, "period": "total"}
    settings.AUTOMATE_LLM_STALE_RESERVATION_SECONDS = 0.0
    settings.AUTOMATE_RETENTION_INTERVAL = 0.1
    await budgets.reserve(provider="echo", model="", workflow="wf", run_id=None, tokens=300)
    options = WorkerOptions.from_settings(poll_interval=0.1, rescue_interval=0.2, shutdown_timeout=2.0)
    async with running(WorkerPool(options)):
        await eventually(lambda: async_to_sync(budgets.usage)("global", "", "") == (300, 0), within=10)


async def test_openai_sends_the_older_field_to_servers_configured_for_it(server: FakeServer) -> None:
    server.route("POST", "/v1/chat/completions", openai_ok)
    await openai(server, max_tokens_field="max_tokens").achat(MESSAGES, {"max_tokens": 20})
    body = server.requests[0].json()
    assert body["max_tokens"] == 20 and "max_completion_tokens" not in body


async def test_async_chats_reuse_one_connection(server: FakeServer) -> None:
    server.route("POST", "/v1/chat/completions", openai_ok)
    provider = openai(server)
    for _ in range(3):
        await provider.achat(MESSAGES, {})
    assert len({r.client_port for r in server.requests}) == 1
