"""The benchmark's connector: async, does nothing, returns a small output (recorded in StepRun)."""

from __future__ import annotations

from typing import Any, ClassVar

from automate_connectors.adapters.base import ConnectorAdapter


class NoopConnector(ConnectorAdapter):
    code = "noop"
    name = "Does nothing (benchmarks)"
    actions: ClassVar[tuple[str, ...]] = ("run",)

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        return {"ok": True}
