"""Stage 3, worker: claims batches of outbox jobs and runs them concurrently."""

from __future__ import annotations
