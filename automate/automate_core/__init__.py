"""Django Automate's core: the data path from a webhook to a connector's side effect.

The stages, in the order an event travels (one sub-package each):

1. ``ingest``     a signed webhook (or ``emit()``) becomes an ``Event`` and an ``OutboxJob`` (one commit)
2. ``outbox``     the durable queue in PostgreSQL: claim, complete, retry, dead letters
3. ``worker``     asyncio workers that claim batches and run them
4. ``rules``      which workflows an event triggers
5. ``execution``  runs a workflow's steps: templates, connectors, run records
6. ``plugins``    entry-point registries and the thread offload for sync plugins
"""

from __future__ import annotations

#: The one version of the distribution ``django-automate`` (pyproject.toml reads it from here, so
#: ``importlib.metadata.version("django-automate")`` of an installed copy says the same).
__version__ = "0.1.0"

__all__ = ["__version__"]
