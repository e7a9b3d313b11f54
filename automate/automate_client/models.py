"""Typed results of the API, as frozen dataclasses built from its JSON."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _build[T](cls: type[T], data: dict[str, Any], **converted: Any) -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in data.items() if k in names}  # fields added later are ignored
    values.update(converted)
    return cls(**values)


@dataclass(frozen=True, slots=True)
class EventAccepted:
    event_id: int
    trace_id: str
    duplicate: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventAccepted:
        return cls(data["event_id"], data["trace_id"], data.get("status") == "duplicate")


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One event of a batch: ``status`` 202 (accepted), 200 (duplicate) or a refusal's code."""

    index: int
    status: int
    event_id: int | None = None
    trace_id: str | None = None
    error: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (200, 202)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchItem:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    source: str
    type: str
    payload: Any
    idempotency_key: str | None
    trace_id: str
    received_at: datetime
    runs: list[int]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        return _build(cls, data, received_at=_time(data["received_at"]))


@dataclass(frozen=True, slots=True)
class Step:
    position: int
    name: str
    connector: str
    action: str
    status: str
    attempt: int
    input: Any
    output: Any
    error: str
    started_at: datetime
    finished_at: datetime
    duration_ms: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        return _build(cls, data, started_at=_time(data["started_at"]), finished_at=_time(data["finished_at"]))


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    workflow: str
    version: int | None
    event_id: int
    status: str
    mode: str
    parent: int | None
    attempt: int
    error: str
    trace_id: str
    started_at: datetime
    finished_at: datetime | None
    source: str | None = None
    event_type: str | None = None
    steps: list[Step] = field(default_factory=list)  # only from get_run()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        return _build(
            cls,
            data,
            started_at=_time(data["started_at"]),
            finished_at=_time(data.get("finished_at")),
            steps=[Step.from_dict(s) for s in data.get("steps") or []],
        )


@dataclass(frozen=True, slots=True)
class QueuedRun:
    run_id: int
    job_id: int | None
    mode: str
    parent: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueuedRun:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class Job:
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return _build(cls, data, updated_at=_time(data["updated_at"]))


@dataclass(frozen=True, slots=True)
class JobReplay:
    matched: int
    replayed: list[int]
    dry_run: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobReplay:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class Version:
    number: int
    author: str
    comment: str
    created_at: datetime
    current: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Version:
        return _build(cls, data, created_at=_time(data["created_at"]))


@dataclass(frozen=True, slots=True)
class Workflow:
    name: str
    description: str
    enabled: bool
    current_version: int | None
    trigger: dict[str, str]
    definition: dict[str, Any] | None = None  # only from get_workflow()
    versions: list[Version] = field(default_factory=list)  # only from get_workflow()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Workflow:
        return _build(cls, data, versions=[Version.from_dict(v) for v in data.get("versions") or []])


@dataclass(frozen=True, slots=True)
class LoadResult:
    dry_run: bool
    counts: dict[str, int]
    diff: dict[str, str]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadResult:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class Source:
    slug: str
    name: str
    scheme: str
    secret_ref: str
    enabled: bool
    config: dict[str, Any]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    cron: str
    timezone: str
    source: str
    event_type: str
    enabled: bool
    next_fire_at: datetime | None
    last_fired_at: datetime | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        return _build(
            cls,
            data,
            next_fire_at=_time(data.get("next_fire_at")),
            last_fired_at=_time(data.get("last_fired_at")),
        )
