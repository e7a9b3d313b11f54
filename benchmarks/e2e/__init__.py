"""``automate bench e2e``: signed webhooks at a fixed rate through the platform as deployed."""

from __future__ import annotations
