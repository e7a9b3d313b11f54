"""Stage 4, rules: which active workflows an event triggers."""

from __future__ import annotations
