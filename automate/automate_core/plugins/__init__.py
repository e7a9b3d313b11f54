"""Stage 6, plugins: entry-point registries and the one way sync plugin code is called."""

from __future__ import annotations
