"""``automate_client``: a Python client of the Django Automate HTTP API (docs/api.md).

Depends on httpx only; install it on its own with ``pip install ./clients/python``.
"""

from __future__ import annotations

from automate_client._calls import Retry
from automate_client.client import AsyncClient, Client
from automate_client.errors import (
    ApiError,
    AutomateClientError,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    TransportError,
    Unauthenticated,
)
from automate_client.models import (
    BatchItem,
    Event,
    EventAccepted,
    Job,
    JobReplay,
    LoadResult,
    QueuedRun,
    Run,
    Schedule,
    Source,
    Step,
    Version,
    Workflow,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "AutomateClientError",
    "BatchItem",
    "Client",
    "Conflict",
    "Event",
    "EventAccepted",
    "InvalidRequest",
    "Job",
    "JobReplay",
    "LoadResult",
    "NotFound",
    "PermissionDenied",
    "QueuedRun",
    "RateLimited",
    "Retry",
    "Run",
    "Schedule",
    "ServerError",
    "Source",
    "Step",
    "TransportError",
    "Unauthenticated",
    "Version",
    "Workflow",
]
