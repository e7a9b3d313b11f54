"""Benchmarks of Django Automate (run from a source checkout; not shipped in the wheel)."""

from __future__ import annotations
