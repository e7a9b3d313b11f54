"""The API's request and response bodies (pydantic, through django-ninja): the OpenAPI's schemas.

Request bodies refuse unknown fields (``extra="forbid"``): a misspelt field is a 400 naming it,
not a silently ignored option.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field


class Strict(Schema):
    """A request body: no unknown fields, no coercion (``false`` is not ``0``, ``"1"`` not ``1``)."""

    model_config = ConfigDict(extra="forbid", strict=True)


JobId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Error(Schema):
    """Every refusal: a stable code to act on, and a message for people."""

    error: str = Field(examples=["missing_scope"])
    detail: str


# --- events ---------------------------------------------------------------------------------


class EventIn(Strict):
    source: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    type: str = Field(min_length=1, max_length=200)
    payload: Any = Field(description="Any JSON value.")
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="A repeated key (same source) answers 200 with the original event's ids.",
    )


class EventAccepted(Schema):
    event_id: int
    trace_id: str
    status: Literal["accepted", "duplicate"]


class BatchItem(Schema):
    """One item of a batch, in the order sent: its outcome and status code."""

    index: int
    status: int = Field(description="202 accepted, 200 duplicate, 400 or 403 refused.")
    event_id: int | None = None
    trace_id: str | None = None
    error: str | None = None
    detail: str | None = None


class BatchAccepted(Schema):
    items: list[BatchItem]


class EventOut(Schema):
    id: int
    source: str
    type: str
    payload: Any
    idempotency_key: str | None
    trace_id: str
    received_at: datetime
    runs: list[int]


# --- runs -----------------------------------------------------------------------------------


class StepOut(Schema):
    position: int
    name: str
    connector: str
    action: str
    status: str
    attempt: int
    input: Any = None
    output: Any = None
    error: str
    started_at: datetime
    finished_at: datetime
    duration_ms: float


class RunOut(Schema):
    id: int
    workflow: str
    version: int | None
    event_id: int
    source: str | None = None
    event_type: str | None = None
    status: str
    mode: str
    parent: int | None
    attempt: int
    error: str
    trace_id: str
    started_at: datetime
    finished_at: datetime | None


class RunDetail(RunOut):
    steps: list[StepOut]


class RunPage(Schema):
    items: list[RunOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end.")


class ReplayIn(Strict):
    mode: Literal["original", "current", "resume", "edited"] = "current"
    payload: Any = Field(default=None, description="The edited payload (mode 'edited' only).")


class QueuedRun(Schema):
    run_id: int
    job_id: int | None
    mode: str
    parent: int


class Cancelled(Schema):
    run_id: int
    status: str


# --- jobs -----------------------------------------------------------------------------------


class JobOut(Schema):
    id: int
    kind: str
    status: str
    event_id: int | None
    source: str | None
    event_type: str | None
    attempts: int
    last_error: str
    updated_at: datetime
    replayed_as: list[int]


class JobPage(Schema):
    items: list[JobOut]
    next_cursor: str | None


class JobReplayIn(Strict):
    ids: list[JobId] = Field(default_factory=list, max_length=10000)
    source: str | None = Field(default=None, max_length=100)
    event_type: str | None = Field(default=None, max_length=200, description="* is a wildcard.")
    kind: Literal["event", "task"] | None = None
    error: str | None = Field(default=None, max_length=500)
    since: str | None = Field(default=None, description="ISO date-time, or an age: 90m, 2h, 7d.")
    until: str | None = None
    all: bool = Field(default=False, description="Replay every dead job (an empty filter needs it).")
    dry_run: bool = Field(default=False, description="Only count what would be replayed.")


class JobReplayOut(Schema):
    matched: int = Field(description="Dead jobs matching the filter and not replayed yet.")
    replayed: list[int] = Field(description="The new jobs' ids (empty for a dry run).")
    dry_run: bool


# --- workflows ------------------------------------------------------------------------------


class VersionOut(Schema):
    number: int
    author: str
    comment: str
    created_at: datetime
    current: bool


class WorkflowOut(Schema):
    name: str
    description: str
    enabled: bool
    current_version: int | None
    trigger: dict[str, str]


class WorkflowDetail(WorkflowOut):
    definition: dict[str, Any] | None
    versions: list[VersionOut]


class DefinitionsIn(Strict):
    """A file in the ``automate load`` format, as JSON (or send YAML as application/yaml)."""

    sources: list[dict[str, Any]] | None = None
    workflows: list[dict[str, Any]] | None = None
    schedules: list[dict[str, Any]] | None = None


class LoadOut(Schema):
    dry_run: bool
    counts: dict[str, int]
    diff: dict[str, str] = Field(description="Per workflow, the unified diff of its file (empty: unchanged).")


class RollbackIn(Strict):
    to: int = Field(ge=1, le=2**31 - 1, description="The version number to return to.")


class Toggled(Schema):
    name: str
    enabled: bool


# --- secrets, sources, schedules ------------------------------------------------------------


class SecretIn(Strict):
    value: str = Field(min_length=1, max_length=65536)


class SecretStored(Schema):
    name: str
    stored: bool


class SourceOut(Schema):
    slug: str
    name: str
    scheme: str
    secret_ref: str
    enabled: bool
    config: dict[str, Any]


class ScheduleOut(Schema):
    name: str
    cron: str
    timezone: str
    source: str
    event_type: str
    enabled: bool
    next_fire_at: datetime | None
    last_fired_at: datetime | None
