"""Cron schedules that emit events through the outbox (fired by the workers)."""

from __future__ import annotations
