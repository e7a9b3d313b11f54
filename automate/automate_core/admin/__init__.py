"""The admin, one module per concept (registered on import)."""

from __future__ import annotations

from automate_core.admin import events, outbox, runs, sources, workflows

__all__ = ["events", "outbox", "runs", "sources", "workflows"]
