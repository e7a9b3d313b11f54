"""How the platform calls plugins: sync code off the event loop in a bounded pool, context carried,
database connections closed, and whatever escapes a plugin wrapped in the contract's error type."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Any

import pytest

from automate_connectors.adapters.base import ConnectorAdapter
from automate_core.exceptions import ConnectorError, ConnectorTimeout, LLMError, SecretsBackendUnavailable
from automate_governance.secrets.interfaces import SecretsBackend
from automate_llm.providers.base import LLMProvider

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class Sleeper(ConnectorAdapter):
    code, name = "sleeper", "Sleeps (sync)"
    active = 0
    peak = 0
    lock = threading.Lock()

    def execute(self, action: str, params: dict, context: dict) -> Any:
        with self.lock:
            type(self).active += 1
            type(self).peak = max(type(self).peak, type(self).active)
        try:
            time.sleep(params.get("seconds", 0.3))
        finally:
            with self.lock:
                type(self).active -= 1
        return {"thread": threading.current_thread().name, "request_id": request_id.get()}


async def test_a_sleeping_sync_plugin_does_not_block_the_event_loop() -> None:
    """While a sync plugin sleeps one second, the loop keeps serving a 10 ms ticker. A blocked loop
    would tick once or twice; a free one about a hundred times (we ask for twenty, a wide margin
    for a busy machine)."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    out = await Sleeper().aexecute("sleep", {"seconds": 1.0}, {})
    done.set()
    await task
    assert out["thread"] != threading.current_thread().name
    assert ticks >= 20, f"the event loop ticked only {ticks} times while a sync plugin slept"


async def test_context_variables_reach_the_plugin_thread() -> None:
    request_id.set("req-42")
    out = await Sleeper().aexecute("sleep", {"seconds": 0}, {})
    assert out["request_id"] == "req-42"


def test_the_pool_is_bounded_by_the_setting(settings: Any) -> None:
    settings.AUTOMATE_THREAD_POOL_SIZE = 2
    Sleeper.peak = 0

    async def many() -> None:  # a fresh event loop gets a limiter of the configured size
        await asyncio.gather(*(Sleeper().aexecute("sleep", {"seconds": 0.1}, {}) for _ in range(6)))

    asyncio.run(many())
    assert Sleeper.peak == 2


async def test_step_timeout_cancels_the_wait_for_a_sync_plugin() -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await Sleeper().aexecute("sleep", {"seconds": 1.0}, {})
    assert Sleeper.active == 1  # the caller got control back while the thread still sleeps


@pytest.mark.usefixtures("live_db")
async def test_django_connections_are_closed_around_sync_plugin_calls() -> None:
    seen: list[Any] = []

    class UsesOrm(ConnectorAdapter):
        code, name = "uses_orm", "Uses the ORM"

        def execute(self, action: str, params: dict, context: dict) -> Any:
            from django.contrib.auth.models import User
            from django.db import connection

            seen.append(connection)
            return {"users": User.objects.count()}

    assert (await UsesOrm().aexecute("count", {}, {}))["users"] >= 0
    assert seen[0].connection is None  # closed when the call ended, not left open in the pool thread


# --- errors escaping plugins ----------------------------------------------------------------------


class Buggy(ConnectorAdapter):
    code, name = "buggy", "Buggy"

    def execute(self, action: str, params: dict, context: dict) -> Any:
        return params["missing"]


class NativeBuggy(ConnectorAdapter):
    code, name = "native_buggy", "Native buggy"

    def execute(self, action: str, params: dict, context: dict) -> Any:
        raise NotImplementedError

    async def aexecute(self, action: str, params: dict, context: dict) -> Any:
        if action == "timeout":
            raise TimeoutError
        empty: dict[str, Any] = {}
        return empty["missing"]


async def test_stray_exceptions_become_connector_errors_with_their_cause() -> None:
    for adapter in (Buggy(), NativeBuggy()):
        with pytest.raises(ConnectorError, match="unexpected KeyError") as caught:
            await adapter.aexecute("go", {}, {})
        assert isinstance(caught.value.__cause__, KeyError) and caught.value.retryable
    with pytest.raises(ConnectorTimeout):
        await NativeBuggy().aexecute("timeout", {}, {})


async def test_stray_exceptions_of_secrets_backends_do_not_carry_their_message() -> None:
    class Sloppy(SecretsBackend):
        code, name = "sloppy", "Sloppy"

        def get_secret(self, key: str) -> str:
            raise ValueError("could not parse 'hunter2-password' in the store")

    with pytest.raises(SecretsBackendUnavailable) as caught:
        await Sloppy().aget_secret("X")
    assert "hunter2" not in str(caught.value) and "ValueError" in str(caught.value)


async def test_stray_exceptions_of_llm_providers_become_llm_errors() -> None:
    class Flaky(LLMProvider):
        code, name = "flaky", "Flaky"

        async def chat(self, messages: list, options: dict) -> str:  # type: ignore[override]
            raise ConnectionResetError("peer reset")

        def count_tokens(self, text: str) -> int:
            return 1

    with pytest.raises(LLMError, match="ConnectionResetError") as caught:
        await Flaky().achat([{"role": "user", "content": "x"}], {})
    assert caught.value.retryable
