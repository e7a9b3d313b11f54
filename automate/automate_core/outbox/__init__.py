"""Stage 2, outbox: the durable queue in PostgreSQL (see models/outbox.py for the state machine)."""

from __future__ import annotations
