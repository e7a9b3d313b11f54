"""Helpers shared by the workflow commands: JSON arguments and run formatting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from automate_core.exceptions import WorkflowError


def payload_argument(text: str | None, path: str | None) -> Any:
    """A JSON payload given inline (``--payload '{"a": 1}'``) or as a file (``--payload-file``)."""
    if text is not None and path is not None:
        raise WorkflowError("Give --payload or --payload-file, not both.")
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise WorkflowError(f"The payload is not valid JSON: {exc}") from exc


def compact(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
