"""LLM providers: chat completions for workflow steps, behind one contract."""

from __future__ import annotations
