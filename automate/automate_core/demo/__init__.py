"""The demo definitions loaded by `automate up`."""

from __future__ import annotations
