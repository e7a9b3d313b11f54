"""``log``: writes a message to the platform's log. Handy for demos and for tracing a workflow."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError, UnknownActionError

logger = logging.getLogger("automate.connectors.log")

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class LogConnector(ConnectorAdapter):
    code = "log"
    name = "Log a message"
    actions: ClassVar[tuple[str, ...]] = tuple(_LEVELS)
    supports_dry_run = True

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        level = _LEVELS.get(action)
        if level is None:
            raise UnknownActionError(f"log has no action {action!r}; use one of {', '.join(_LEVELS)}.")
        message = params.get("message")
        if not isinstance(message, str):
            raise ConnectorError("log needs a 'message' string parameter.", retryable=False)
        if not context.get("dry_run"):
            logger.log(level, "%s", message, extra={"trace_id": context.get("trace_id", "")})
        return {"logged": message, "level": action}
