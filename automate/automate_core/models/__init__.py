"""The platform's tables, one module per concept, in data-path order."""

from __future__ import annotations

from automate_core.models.event import Event
from automate_core.models.execution import ExecutionRun, RunStatus, StepRun
from automate_core.models.outbox import JobStatus, OutboxJob
from automate_core.models.source import SignatureScheme, WebhookSource
from automate_core.models.workflow import Step, Workflow

__all__ = [
    "Event",
    "ExecutionRun",
    "JobStatus",
    "OutboxJob",
    "RunStatus",
    "SignatureScheme",
    "Step",
    "StepRun",
    "WebhookSource",
    "Workflow",
]
