"""Rendering a control's key from the event, and how a period reads in a message."""

from __future__ import annotations

from typing import Any

from automate_core.execution import templating

MAX_KEY_LENGTH = 200


def render_key(template: str, context: dict[str, Any]) -> str:
    """The key rendered from the event; TemplateError when it fails (a failed run, never a default)."""
    if not template:
        return ""
    value = templating.render(template, context)
    return ("" if value is None else str(value))[:MAX_KEY_LENGTH]


def period_text(seconds: float) -> str:
    """``3600`` → ``1h``, ``90`` → ``1m30s``, ``0.5`` → ``0.5s``."""
    if seconds < 1 or seconds != int(seconds):
        return f"{seconds:g}s"
    left, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts)
