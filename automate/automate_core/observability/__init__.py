"""Observability: Prometheus metrics, structured logs with trace ids, health endpoints."""

from __future__ import annotations
