"""Peers measured on the same database as our worker, side by side (``bench outbox --compare-peer``)."""

from __future__ import annotations
