"""The HTTP API under ``/api/v1/`` (django-ninja): events, runs, jobs, workflows, secrets.

One module per concept: ``app`` (the ``NinjaAPI`` and its one error shape), ``auth`` (Bearer
tokens, scopes, rate limits), ``schemas`` (bodies), ``common`` (cursors, audit), and a router
each for ``events``, ``runs``, ``jobs``, ``workflows``, ``secrets`` and ``sources`` (with
schedules). Mount it with ``path("api/v1/", include("automate_core.api.urls"))``; the guide is
docs/api.md.
"""

from __future__ import annotations
