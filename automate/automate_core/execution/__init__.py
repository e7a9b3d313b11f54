"""Stage 5, execution: runs a workflow's steps and records what happened."""

from __future__ import annotations
