"""Test kit for Django Automate plugin authors (and for the platform's own tests)."""

from __future__ import annotations
