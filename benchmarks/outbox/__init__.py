"""``automate bench outbox``: how fast the workers drain the outbox. See docs/benchmarks/outbox.md."""

from __future__ import annotations
