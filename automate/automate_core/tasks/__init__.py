"""Django's tasks framework on the outbox: ``@task`` functions run on Django Automate's workers.

``TASKS = {"default": {"BACKEND": "automate_core.tasks.backend.OutboxTaskBackend"}}`` and a
project's tasks get the outbox's leases, retries with backoff, dead letters, replay and admin.
See ``backend`` (enqueue, results) and ``runner`` (how a worker runs one).
"""

from __future__ import annotations
