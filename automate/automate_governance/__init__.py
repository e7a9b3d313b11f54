"""Governance: secrets (backends, resolution, masking) and, later, policy and budgets."""

from __future__ import annotations
