"""The platform's tables, one module per concept, in data-path order."""

from __future__ import annotations

from automate_core.models.api import ApiToken, AuditEntry
from automate_core.models.event import Event, EventKey
from automate_core.models.execution import BulkReplay, ExecutionRun, RunMode, RunStatus, StepRun
from automate_core.models.flow import RunWait, WaitKind, WaitPattern, WaitStatus
from automate_core.models.grouping import EventGroup, GroupKind, GroupMember, GroupStatus
from automate_core.models.outbox import JobStatus, OutboxJob
from automate_core.models.security import LoginFailure, WebhookRejection
from automate_core.models.source import SignatureScheme, WebhookSource
from automate_core.models.workflow import (
    AdmissionState,
    ConcurrencySlot,
    Schedule,
    Step,
    Workflow,
    WorkflowVersion,
)

__all__ = [
    "AdmissionState",
    "ApiToken",
    "AuditEntry",
    "BulkReplay",
    "ConcurrencySlot",
    "Event",
    "EventGroup",
    "EventKey",
    "ExecutionRun",
    "GroupKind",
    "GroupMember",
    "GroupStatus",
    "JobStatus",
    "LoginFailure",
    "OutboxJob",
    "RunMode",
    "RunStatus",
    "RunWait",
    "Schedule",
    "SignatureScheme",
    "Step",
    "StepRun",
    "WaitKind",
    "WaitPattern",
    "WaitStatus",
    "WebhookRejection",
    "WebhookSource",
    "Workflow",
    "WorkflowVersion",
]
